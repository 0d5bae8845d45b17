package router

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Channels are the connected channels and what is sent through them: the
// router's replies and the agents' messages (the tools' send_message). They
// also know which chat each group is answering now, where its messages go.
// The wiring makes them first, for the router and the tools alike.
type Channels struct {
	st   *store.Store
	log  *slog.Logger
	name string // the assistant's, for the messages it sent

	mu      sync.Mutex
	list    []channel.Channel
	current map[string]string    // folder → chat of the prompt being answered
	heard   map[string]time.Time // channel name → when it last delivered a message
}

// ChannelStatus is what `status` shows of a channel.
type ChannelStatus struct {
	Name      string
	Account   string    // the account's own chat id; "" while not connected
	LastEvent time.Time // when it last delivered a message; zero: never since start
}

// Statuses reports each channel, in the order they were added.
func (c *Channels) Statuses() []ChannelStatus {
	c.mu.Lock()
	list := slices.Clone(c.list)
	heard := maps.Clone(c.heard)
	c.mu.Unlock()
	var out []ChannelStatus
	for _, ch := range list {
		out = append(out, ChannelStatus{Name: ch.Name(), Account: ch.Self(), LastEvent: heard[ch.Name()]})
	}
	return out
}

// heardFrom notes that ch delivered a message now.
func (c *Channels) heardFrom(ch channel.Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.heard == nil {
		c.heard = make(map[string]time.Time)
	}
	c.heard[ch.Name()] = time.Now()
}

// NewChannels makes an empty set of channels.
func NewChannels(st *store.Store, assistantName string, log *slog.Logger) *Channels {
	return &Channels{st: st, log: cmp.Or(log, slog.Default()), name: assistantName, current: make(map[string]string)}
}

// Add lets the router and the tools send through ch.
func (c *Channels) Add(ch channel.Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, ch)
}

// forChat is the channel that serves chat, nil if none.
func (c *Channels) forChat(chat string) channel.Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.list {
		if ch.Owns(chat) {
			return ch
		}
	}
	return nil
}

// Serves reports whether a channel serves chat.
func (c *Channels) Serves(chat string) bool { return c.forChat(chat) != nil }

// CheckSend reports whether the chat's send limit, if its channel has one,
// lets a message go now (R9).
func (c *Channels) CheckSend(chat string) error {
	if l, ok := c.forChat(chat).(channel.Limited); ok {
		return l.CheckSend(chat)
	}
	return nil
}

// setCurrent notes that the group in folder is answering chat now.
func (c *Channels) setCurrent(folder, chat string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current[folder] = chat
}

// CurrentChat is the chat the group in folder answered last, "" if none.
func (c *Channels) CurrentChat(folder string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current[folder]
}

// Deliver sends a kept message through its chat's channel and marks it
// sent. A failure leaves it unsent; the next start sends it.
func (c *Channels) Deliver(ctx context.Context, o store.Outgoing) bool {
	ch := c.forChat(o.ChatJID)
	if ch == nil {
		c.log.Warn("no connected channel for chat; reply kept for later", "chat", o.ChatJID)
		c.traceUnsent(ctx, o, "no channel serving the chat is connected")
		return false
	}
	ids, err := ch.Send(ctx, o.ChatJID, o.Content)
	if err != nil {
		c.log.Error("send reply; kept for later", "chat", o.ChatJID, "err", err)
		c.traceUnsent(ctx, o, "sending failed: "+err.Error())
		return false
	}
	if err := c.st.MarkSent(context.WithoutCancel(ctx), o, ids, c.name); err != nil {
		c.log.Error("mark reply sent", "chat", o.ChatJID, "err", err)
	}
	return true
}

// traceUnsent records in the group's trace that a reply is kept unsent.
func (c *Channels) traceUnsent(ctx context.Context, o store.Outgoing, why string) {
	keepTrace(ctx, c.st, c.log, store.Event{Folder: o.Folder, Chat: o.ChatJID, Kind: store.EventFailed,
		Detail: "the reply is kept, to be sent at the next start: " + why})
}

// Refresh asks every channel for the chats the account is in, and keeps
// them.
func (c *Channels) Refresh(ctx context.Context) {
	c.mu.Lock()
	chs := slices.Clone(c.list)
	c.mu.Unlock()
	for _, ch := range chs {
		list, err := ch.Chats(ctx)
		if err != nil {
			c.log.Warn("list chats", "channel", ch.Name(), "err", err)
			continue
		}
		for _, info := range list {
			c.keepChat(ctx, ch, info)
		}
	}
}

// keepChat keeps a chat's name for group discovery.
func (c *Channels) keepChat(ctx context.Context, ch channel.Channel, info channel.ChatInfo) {
	last := info.LastActivity
	if last.IsZero() {
		last = time.Unix(0, 0)
	}
	if err := c.st.UpsertChat(ctx, store.Chat{JID: info.JID, Name: info.Name, Channel: ch.Name(), IsGroup: info.IsGroup, LastActivity: last}); err != nil {
		c.log.Warn("store chat metadata", "chat", info.JID, "err", err)
	}
}
