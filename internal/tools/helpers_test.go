package tools

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fakeChannel serves every chat and records what is sent.
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
func (c *fakeChannel) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

func (c *fakeChannel) Send(ctx context.Context, jid, text string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, text)
	return []string{fmt.Sprintf("sent-%d", c.n.Add(1))}, nil
}
