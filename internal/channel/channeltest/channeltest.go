// Package channeltest is for tests: a channel that serves every chat and
// records what is sent to it, and a handler that records what a channel
// hands it.
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

// Handler is a channel.Handler that records what it is given. OnMessage
// stores each message at the next position, after Seq, to be answered; or,
// while Err is set, stores nothing and fails with Err. Set Err and Seq only
// while no message is being handled.
type Handler struct {
	Err error
	Seq int64 // the position of the last message stored

	mu    sync.Mutex
	msgs  []channel.Message
	chats []channel.ChatInfo
}

func (h *Handler) OnMessage(_ context.Context, _ channel.Channel, m channel.Message) (channel.Stored, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Err != nil {
		return channel.Stored{}, h.Err
	}
	h.msgs = append(h.msgs, m)
	h.Seq++
	return channel.Stored{Seq: h.Seq, WillAnswer: true}, nil
}

func (h *Handler) OnChat(_ context.Context, _ channel.Channel, c channel.ChatInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.chats = append(h.chats, c)
}

// Messages returns the messages stored so far.
func (h *Handler) Messages() []channel.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs)
}

// Chats returns the chats announced so far, in order.
func (h *Handler) Chats() []channel.ChatInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.chats)
}

var _ channel.Handler = (*Handler)(nil)
