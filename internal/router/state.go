package router

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/status"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// The states of a group's worker, as `status` shows them; a group in none of
// them is idle.
const (
	StateQueued  = "queued"  // it has work and waits for a place
	StateRunning = "running" // its agent is starting or answering
	StateWarm    = "warm"    // its container waits for more messages
)

// states tracks each busy group's state (status.GroupState).
type states struct {
	mu sync.Mutex
	m  map[string]status.GroupState
}

// set records folder's state; "" means idle. Queued is set only on an idle
// group: a busy worker takes the new work itself.
func (s *states) set(folder, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, busy := s.m[folder]
	switch {
	case state == "":
		delete(s.m, folder)
	case state == StateQueued && busy:
	case cur.State != state:
		if s.m == nil {
			s.m = make(map[string]status.GroupState)
		}
		s.m[folder] = status.GroupState{State: state, Since: time.Now()}
	}
}

// States returns the busy groups' states; a group not in it is idle.
func (r *Router) States() map[string]status.GroupState {
	r.states.mu.Lock()
	defer r.states.mu.Unlock()
	return maps.Clone(r.states.m)
}

// Load returns how many groups' agents run, the cap, and the groups waiting
// for a place, oldest first.
func (r *Router) Load() (running, limit int, waiting []string) {
	return r.q.Load()
}

// notify queues folder's worker for work.
func (r *Router) notify(folder string) {
	r.states.set(folder, StateQueued)
	r.q.Notify(folder)
}

// trace records a step of a group's way for `status --group`.
func (r *Router) trace(ctx context.Context, folder, chat string, seq int64, kind store.EventKind, format string, args ...any) {
	keepTrace(ctx, r.st, r.log, store.Event{Folder: folder, Chat: chat, Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

// keepTrace stores steps of the trace. The trace is for the owner's eyes
// only: failing to keep it is logged, never fatal.
func keepTrace(ctx context.Context, st *store.Store, log *slog.Logger, evs ...store.Event) {
	if err := st.AddEvents(context.WithoutCancel(ctx), evs...); err != nil {
		log.Warn("keep trace", "group", evs[0].Folder, "err", err)
	}
}
