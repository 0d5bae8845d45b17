// Package channel is the one interface every chat service adapter
// implements (WhatsApp, the local terminal, later others): connect, push
// inbound events to the host, send text, show typing, list the chats the
// account is in, and say who it is. What not every service can do (files,
// reactions, quoted replies) are the optional interfaces FileSender,
// Reactor and Quoter.
//
// Adapters know nothing of the router, and take only their chat ids' rules
// from the store (R14): they turn the service's events into Message and
// ChatInfo values and hand them to a Handler.
package channel

import (
	"context"
	"errors"
	"io"
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
	// ReplyTo is the id of the message of the same chat this one replies
	// to, "" for none; QuoteSender is the sender id of that message, as the
	// sender's app claims it ("" when unknown). The host looks the message
	// up itself to tell whether it was the assistant's.
	ReplyTo     string
	QuoteSender string
	// MentionsSelf marks a message that @-mentions the account itself, as
	// the service marks mentions (not as the text reads).
	MentionsSelf bool
	// Attachments are the media the message carries. The host fetches each
	// into the group's folder, bounded, before it stores the message; a
	// caption is the message's Text.
	Attachments []Attachment
}

// MediaKind is what an attachment is, as the service labels it.
type MediaKind string

// The media kinds.
const (
	KindImage    MediaKind = "image"
	KindSticker  MediaKind = "sticker"
	KindVoice    MediaKind = "voice" // a voice note, recorded in the chat app
	KindAudio    MediaKind = "audio" // an audio file
	KindVideo    MediaKind = "video"
	KindDocument MediaKind = "document" // any other file: PDF, text, archive…
)

// Attachment is one media item of an inbound message, as the adapter saw
// it. Everything but Fetch is the sender's app's claim.
type Attachment struct {
	Kind     MediaKind
	MIME     string // e.g. "image/jpeg"; "" when the service does not say
	Size     int64  // claimed size in bytes; 0 when unknown
	FileName string // the sender's name for a document: shown, never used as a path
	// Fetch writes the media to w: at most max bytes, or it stops and
	// returns an error wrapping ErrTooLarge. It may be called once.
	Fetch func(ctx context.Context, w io.Writer, max int64) error
}

// ErrMaybeSent marks a send that failed after the request left: the
// service may have delivered it. The host does not send it again (that
// could answer twice): it counts it as sent, and traces the doubt.
var ErrMaybeSent = errors.New("the connection broke after the message left: it may have arrived")

// ErrTooLarge is the error of an Attachment's Fetch for media larger than
// the host's limit.
var ErrTooLarge = errors.New("larger than the media limit")

// MessageRef names a message of a chat, for a reaction or a quote.
type MessageRef struct {
	ID     string // the message's id
	Sender string // its sender's id ("" for the account's own)
	FromMe bool   // sent from the account itself
	Text   string // its text, for a quote's preview; may be ""
}

// File is a file the assistant sends: the host detected Kind and MIME from
// its content.
type File struct {
	Name    string    // the file's base name, shown with a document
	MIME    string    // e.g. "application/pdf"
	Kind    MediaKind // image, audio, video or document: how it is sent
	Data    []byte
	Caption string // "" for none
}

// FileSender is a channel that can send files.
type FileSender interface {
	// SendFile sends f to chat jid and returns the id of the message it
	// became. A channel that cannot send f's kind as such sends it as a
	// document.
	SendFile(ctx context.Context, jid string, f File) (string, error)
}

// Reactor is a channel that can put a reaction on a message.
type Reactor interface {
	// React sets the account's reaction to message to on chat jid to emoji;
	// "" removes it.
	React(ctx context.Context, jid string, to MessageRef, emoji string) error
}

// Quoter is a channel that can send a reply quoting a message.
type Quoter interface {
	// SendQuoting is Send, with the first message it becomes quoting q.
	SendQuoting(ctx context.Context, jid, text string, q MessageRef) ([]string, error)
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
// is bound to). WillAnswer says whether it starts a run. Taken is set when
// the host took the message itself, so no run starts: the owner's answer
// to an egress question, and Taken is what the host told the chat of it.
type Stored struct {
	Seq        int64
	WillAnswer bool
	Taken      string
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
	// SetTyping shows or clears "typing…" in a chat; best effort. Shown, it
	// stays until cleared: a channel whose service lets the indicator lapse
	// renews it itself.
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
