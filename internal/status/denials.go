package status

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Denials keeps the egress destinations the gateway refused as events of
// the group's trace, for `status`. A container that hammers a refused
// address must not flood the store: a destination is recorded at most once
// a minute, and a group's refusals at most once a second.
type Denials struct {
	st  *store.Store
	log *slog.Logger

	mu   sync.Mutex
	last map[string]time.Time // folder, or folder + " " + target → last recorded
}

// NewDenials records refusals in st.
func NewDenials(st *store.Store, log *slog.Logger) *Denials {
	return &Denials{st: st, log: cmp.Or(log, slog.Default()), last: make(map[string]time.Time)}
}

// Record is the gateway's OnDenied.
func (d *Denials) Record(folder, target, reason string) {
	now := time.Now()
	d.mu.Lock()
	key := folder + " " + target
	if now.Sub(d.last[folder]) < time.Second || now.Sub(d.last[key]) < time.Minute {
		d.mu.Unlock()
		return
	}
	if len(d.last) > 10_000 { // forget the old ones rather than grow
		for k, t := range d.last {
			if now.Sub(t) >= time.Minute {
				delete(d.last, k)
			}
		}
	}
	d.last[folder], d.last[key] = now, now
	d.mu.Unlock()
	e := store.Event{At: now, Folder: folder, Kind: store.EventDenied, Detail: target + ": " + reason}
	if err := d.st.AddEvents(context.Background(), e); err != nil {
		d.log.Warn("keep trace", "group", folder, "err", err)
	}
}
