// Package channeltest is for tests: a channel that serves every chat and
// records what is sent to it.
package channeltest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// Recorder is a channel.Channel that owns every chat, sends nowhere and
// keeps the text of every Send.
type Recorder struct {
	mu   sync.Mutex
	sent []string
}

func (c *Recorder) Name() string                                      { return "fake" }
func (c *Recorder) Owns(string) bool                                  { return true }
func (c *Recorder) Connect(context.Context, channel.Handler) error    { return nil }
func (c *Recorder) SetTyping(context.Context, string, bool) error     { return nil }
func (c *Recorder) Chats(context.Context) ([]channel.ChatInfo, error) { return nil, nil }
func (c *Recorder) Self() string                                      { return "" }
func (c *Recorder) Close() error                                      { return nil }

// Send records text and answers one message id, "sent-N".
func (c *Recorder) Send(_ context.Context, _, text string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, text)
	return []string{fmt.Sprintf("sent-%d", len(c.sent))}, nil
}

// Texts returns what was sent so far.
func (c *Recorder) Texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sent)
}

var _ channel.Channel = (*Recorder)(nil)
