package router

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// fakeAgents starts fakeSessions and tells when.
type fakeAgents struct {
	starts  atomic.Int64
	started chan time.Time
	prompt  chan time.Time // a time per prompt received
	closed  chan struct{}  // a value per session closed, while there is room
	fail    error          // when set, Start fails with it
}

func newFakeAgents() *fakeAgents {
	return &fakeAgents{started: make(chan time.Time, 1000), prompt: make(chan time.Time, 1000), closed: make(chan struct{}, 1000)}
}

func (f *fakeAgents) Start(ctx context.Context, g store.Group, opt agent.StartOptions) (Container, error) {
	f.starts.Add(1)
	f.started <- time.Now()
	if f.fail != nil {
		return nil, f.fail
	}
	return &fakeSession{agents: f, done: make(chan struct{})}, nil
}

type fakeSession struct {
	agents *fakeAgents
	done   chan struct{}
	once   sync.Once
}

func (s *fakeSession) Prompt(ctx context.Context, text string) (ipc.Output, error) {
	s.agents.prompt <- time.Now()
	return ipc.Output{Result: "ok"}, nil
}
func (s *fakeSession) Done() <-chan struct{} { return s.done }
func (s *fakeSession) Close(ctx context.Context) {
	s.once.Do(func() {
		close(s.done)
		select {
		case s.agents.closed <- struct{}{}:
		default:
		}
	})
}

// fakeChannel serves every chat and records what is sent.
type fakeChannel = channeltest.Recorder
