// Package channel is the one interface every chat service adapter
// implements (WhatsApp, the local terminal, later others): connect, push
// inbound events to the host, send text, show typing, list the chats the
// account is in, and say who it is.
//
// Adapters know nothing of the router, and take only their chat ids' rules
// from the store (R14): they turn the service's events into Message and
// ChatInfo values and hand them to a Handler.
package channel

import (
	"context"
	"time"
)

// Message is one inbound chat message, as the adapter understood it.
type Message struct {
	// ChatJID is the chat's id in the adapter's own form
	// ("123@s.whatsapp.net", "456@g.us", "local:main").
	ChatJID string
	// ID is the message id, unique within the chat; a redelivery carries
	// the same id, so the store can ignore it.
	ID string
	// Sender is the sender's id as the service authenticated it
	// ("4915112345678@s.whatsapp.net"): no participant can choose another's.
	Sender string
	// SenderName is the display name the sender chose, or the id when none
	// is known: anyone can call themselves anything.
	SenderName string
	// Text is what the sender wrote, image/video captions included.
	Text string
	// Quote is the text of the message this one replies to, one line and
	// short, as the sender's app claims it (it may be made up); "" when the
	// message is no reply. It is kept apart from Text so the trigger is
	// matched on what the sender wrote.
	Quote     string
	Timestamp time.Time
	// FromMe marks messages the owner sent: from the account itself
	// (another device, or the assistant's own replies echoed back), or
	// typed at the owner's local terminal. No participant can set it.
	FromMe  bool
	IsGroup bool
}

// ChatInfo is what a channel knows of a chat, for group discovery.
type ChatInfo struct {
	JID          string
	Name         string
	IsGroup      bool
	LastActivity time.Time
}

// Stored is what became of an inbound message. Seq is its position in its
// chat when it was stored now; 0 when nothing new was stored (a
// redelivery, the echo of the assistant's own message, or a chat no group
// is bound to). WillAnswer says whether it starts a run.
type Stored struct {
	Seq        int64
	WillAnswer bool
}

// Handler receives a channel's events. OnMessage returns only when the
// message is stored: a channel that acknowledges messages to its service
// must do so after OnMessage returns (durable before acknowledged).
type Handler interface {
	OnMessage(ctx context.Context, ch Channel, m Message) (Stored, error)
	OnChat(ctx context.Context, ch Channel, c ChatInfo)
}

// Channel is one chat service connection.
type Channel interface {
	// Name is the channel's short name ("whatsapp", "local").
	Name() string
	// Owns reports whether a chat id belongs to this channel.
	Owns(jid string) bool
	// Connect starts the connection and event delivery to h; it returns
	// once connected, or with an error saying what the user should do
	// (for example: pair again). Reconnection after that is the channel's
	// own business.
	Connect(ctx context.Context, h Handler) error
	// Send sends text to a chat and returns the ids of the messages it
	// became (a long text may be split), so the host can recognise its
	// own messages when the service echoes them back.
	Send(ctx context.Context, jid, text string) ([]string, error)
	// SetTyping shows or clears "typing…" in a chat; best effort.
	SetTyping(ctx context.Context, jid string, typing bool) error
	// Chats lists the chats the account is in, with names.
	Chats(ctx context.Context) ([]ChatInfo, error)
	// Self is the account's own chat id (its self-chat), or "" when not
	// connected.
	Self() string
	// Close disconnects.
	Close() error
}

// Observer is implemented by channels that show the host's progress to
// their user (the local terminal): the router tells them when a run for a
// chat ended.
type Observer interface {
	// RunDone: a run answered chat jid's messages up to position upTo, or
	// failed with err (then nothing was marked answered).
	RunDone(jid string, upTo int64, err error)
}
