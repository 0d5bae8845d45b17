package router

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// fakeAgents starts fakeSessions and tells when.
type fakeAgents struct {
	starts  atomic.Int64
	started chan time.Time
	prompt  chan time.Time // a time per prompt received
	closed  chan struct{}  // a value per session closed, while there is room
}

func newFakeAgents() *fakeAgents {
	return &fakeAgents{started: make(chan time.Time, 1000), prompt: make(chan time.Time, 1000), closed: make(chan struct{}, 1000)}
}

func (f *fakeAgents) Start(ctx context.Context, g store.Group, opt agent.StartOptions) (Container, error) {
	f.starts.Add(1)
	f.started <- time.Now()
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

// fakeChannel records what is sent.
type fakeChannel struct {
	mu   sync.Mutex
	sent []string
	n    atomic.Int64
}

func (c *fakeChannel) Name() string                                         { return "fake" }
func (c *fakeChannel) Owns(jid string) bool                                 { return true }
func (c *fakeChannel) Connect(ctx context.Context, h channel.Handler) error { return nil }
func (c *fakeChannel) SetTyping(context.Context, string, bool) error        { return nil }
func (c *fakeChannel) Chats(context.Context) ([]channel.ChatInfo, error)    { return nil, nil }
func (c *fakeChannel) Self() string                                         { return "" }
func (c *fakeChannel) Close() error                                         { return nil }
func (c *fakeChannel) Send(ctx context.Context, jid, text string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, text)
	return []string{fmt.Sprintf("sent-%d", c.n.Add(1))}, nil
}

// texts returns what was sent so far.
func (c *fakeChannel) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}
