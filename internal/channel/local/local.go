// Package local is the local terminal channel: the embedded default, so the
// assistant can be used with no phone at all. `nanoclaw send` and
// `nanoclaw chat` reach it through the daemon's control socket.
//
// A local chat's id is "local:<folder>" ("local:main"); the folder is a group
// folder name (store.ValidateFolder). Messages come in through Deliver,
// which hands them to the host's Handler synchronously, so when it
// returns without error the message is stored (durable before acknowledged),
// and returns what the handler said became of it.
//
// Everything the host does in a local chat — message stored, typing, reply,
// run finished — becomes an Event published to the chat's subscribers.
// Publishing never blocks: a subscriber whose buffer is full is sent a final
// "lagged" event and its channel is closed (see Subscribe). Replies sent while
// nobody is subscribed are not kept by the channel.
//
// A draft may carry files: they become the message's attachments, their
// kind sniffed from their content. Files the assistant sends are written
// into a host-only directory (WithFiles) and announced by a file event with
// their path; reactions and quoted replies are events too.
package local

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Name is the channel's short name.
const Name = "local"

// Prefix starts every local chat id.
const Prefix = "local:"

// MainChat is the local main group's chat id, the channel's Self.
const MainChat = Prefix + "main"

// MaxTextBytes is the longest message Deliver accepts (finding 9: input is
// capped at the boundary, before it is stored).
const MaxTextBytes = 64 << 10

// MaxSenderRunes is the longest sender name.
const MaxSenderRunes = 64

// MaxIDBytes is the longest message id a client may choose.
const MaxIDBytes = 64

// ErrNotConnected reports a Deliver before Connect gave the channel a handler.
var ErrNotConnected = errors.New("the local channel is not connected to the host yet")

// ErrClosed reports use of a closed channel.
var ErrClosed = errors.New("the local channel is closed")

// ErrInProgress reports a Deliver of a message id that another Deliver of
// the same chat is storing at this moment.
var ErrInProgress = errors.New("a message with this id is being stored right now")

// Draft is a message typed at the terminal, before the host stores it.
type Draft struct {
	Chat   string // "local:<folder>"
	Sender string // display name; DefaultSender when empty
	Text   string
	// ID is the message id; empty means a new random one. A client that
	// retries after a failure (the daemon was killed, say) gives the same
	// id each time, so a message the first attempt stored is not stored
	// twice: the store ignores a second message with the same id.
	ID string
	// Files are attached to the message (at most MaxFiles); with files,
	// Text is their caption and may be empty.
	Files []DraftFile
	// ReplyTo is the id of the message of the same chat this one replies
	// to; "" for none.
	ReplyTo string
}

// Validate checks a draft before anything is stored; the error names the
// field at fault. An empty sender or id is valid: Deliver fills it in.
func (d Draft) Validate() error {
	if d.Chat == "" {
		return fmt.Errorf("chat: required, like %q", MainChat)
	}
	if _, err := ParseChat(d.Chat); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	if d.Sender != "" {
		if err := ValidateSender(d.Sender); err != nil {
			return fmt.Errorf("sender: %w", err)
		}
	}
	if d.Text != "" || len(d.Files) == 0 {
		if err := ValidateText(d.Text); err != nil {
			return fmt.Errorf("text: %w", err)
		}
	}
	if d.ID != "" {
		if err := ValidateID(d.ID); err != nil {
			return fmt.Errorf("id: %w", err)
		}
	}
	if d.ReplyTo != "" {
		if err := ValidateID(d.ReplyTo); err != nil {
			return fmt.Errorf("reply_to: %w", err)
		}
	}
	if err := validateFiles(d.Files); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	return nil
}

// validateSize checks the draft's files against the media limit max: each
// file, and all of them together.
func (d Draft) validateSize(max int64) error {
	var total int64
	for i, f := range d.Files {
		if n := int64(len(f.Data)); n > max {
			return fmt.Errorf("files: file %d (%q) of %d bytes: %w (%d bytes)", i+1, f.Name, n, channel.ErrTooLarge, max)
		}
		total += int64(len(f.Data))
	}
	if total > max {
		return fmt.Errorf("files: %d bytes together: %w (%d bytes for one message's files)", total, channel.ErrTooLarge, max)
	}
	return nil
}

// Channel is the local terminal channel. Create it with New; it is safe for
// concurrent use.
type Channel struct {
	log       *slog.Logger
	mediaMax  int64
	filesDir  string        // "": SendFile fails
	retention time.Duration // of the files in filesDir; 0: kept

	// life is handed to the handler instead of Deliver's ctx: the router may
	// tie work started by a message to it, and a client that hangs up must
	// not cancel that. It ends with Close.
	life context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	handler channel.Handler
	closed  bool
	chats   map[string]time.Time               // chat id → last activity
	subs    map[string]map[chan Event]struct{} // chat id → its subscribers' channels
	storing map[string]bool                    // chat + NUL + id of the messages being delivered
}

var (
	_ channel.Channel    = (*Channel)(nil)
	_ channel.Observer   = (*Channel)(nil)
	_ channel.FileSender = (*Channel)(nil)
	_ channel.Reactor    = (*Channel)(nil)
	_ channel.Quoter     = (*Channel)(nil)
)

// New makes a local channel; logger nil means slog.Default(). Without
// options its media limit is DefaultMediaMaxBytes and it cannot send files.
func New(logger *slog.Logger, opts ...Option) *Channel {
	life, stop := context.WithCancel(context.Background())
	c := &Channel{
		log:      cmp.Or(logger, slog.Default()).With("channel", Name),
		mediaMax: DefaultMediaMaxBytes,
		life:     life,
		stop:     stop,
		chats:    make(map[string]time.Time),
		subs:     make(map[string]map[chan Event]struct{}),
		storing:  make(map[string]bool),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// JID is the chat id of a group folder's local chat.
func JID(folder string) string { return Prefix + folder }

// ParseChat checks a local chat id and returns its folder.
func ParseChat(jid string) (folder string, err error) {
	folder, ok := strings.CutPrefix(jid, Prefix)
	if !ok {
		return "", fmt.Errorf("chat %q is not a local chat (want %s<folder>, like %s)", jid, Prefix, MainChat)
	}
	if err := store.ValidateFolder(folder); err != nil { // finding 5
		return "", fmt.Errorf("chat %q: %w", jid, err)
	}
	return folder, nil
}

// ValidateSender checks a sender's display name: 1-64 printable characters
// of valid UTF-8, no newline or other control character, no space at either
// end. It goes into the prompt as the message's author.
func ValidateSender(name string) error {
	if name == "" {
		return errors.New("empty sender name")
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("sender name %q is not valid UTF-8", name)
	}
	if n := utf8.RuneCountInString(name); n > MaxSenderRunes {
		return fmt.Errorf("sender name of %d characters: at most %d", n, MaxSenderRunes)
	}
	for i, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("sender name %q: character %q at byte %d is not printable", name, r, i)
		}
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("sender name %q starts or ends with a space", name)
	}
	return nil
}

// ValidateText checks a message text: valid UTF-8, not blank, no NUL byte,
// at most MaxTextBytes bytes (finding 9).
func ValidateText(text string) error {
	if len(text) > MaxTextBytes {
		return fmt.Errorf("message of %d bytes: at most %d (64 KiB)", len(text), MaxTextBytes)
	}
	if !utf8.ValidString(text) {
		return errors.New("message is not valid UTF-8")
	}
	if strings.IndexByte(text, 0) >= 0 {
		return errors.New("message contains a NUL byte")
	}
	if strings.TrimSpace(text) == "" {
		return errors.New("empty message")
	}
	return nil
}

// ValidateID checks a client-chosen message id: 1-64 ASCII letters, digits,
// '.', '_', ':' or '-'.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("empty message id")
	}
	if len(id) > MaxIDBytes {
		return fmt.Errorf("message id of %d bytes: at most %d", len(id), MaxIDBytes)
	}
	for i, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._:-", r)) {
			return fmt.Errorf("message id %q: character %q at byte %d is not allowed (use letters, digits, '.', '_', ':' and '-')", id, r, i)
		}
	}
	return nil
}

// DefaultSender is the name of the user running this process, the sender
// name when none is given; "user" when it cannot be found or is unusable.
func DefaultSender() string {
	var name string
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if ValidateSender(name) != nil {
		name = os.Getenv("USER")
	}
	if ValidateSender(name) != nil {
		name = "user"
	}
	return name
}

// Name returns "local".
func (c *Channel) Name() string { return Name }

// Owns reports whether jid is a local chat id.
func (c *Channel) Owns(jid string) bool { return strings.HasPrefix(jid, Prefix) }

// Connect keeps h as the receiver of injected messages and announces the
// main chat to it. It returns at once.
func (c *Channel) Connect(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return errors.New("local channel: nil handler")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.handler = h
	c.chats[MainChat] = time.Now()
	c.mu.Unlock()
	h.OnChat(c.life, c, chatInfo(MainChat, time.Now()))
	return nil
}

// Deliver hands one message from the terminal user to the handler and
// returns when the handler is done with it, with the message's stored
// event. Seq 0 in it means the handler stored nothing new: a message with
// this id was already stored, or the chat is not a registered group (with a
// random id, only the latter); only a message stored now is published. A
// chat seen for the first time is announced to the handler (OnChat) first.
// The handler gets the channel's own context, not ctx: the router may tie
// work the message starts to it, and a client that hangs up must not cancel
// that.
func (c *Channel) Deliver(ctx context.Context, d Draft) (Event, error) {
	if err := cmp.Or(d.Validate(), d.validateSize(c.mediaMax), ctx.Err()); err != nil {
		return Event{}, err
	}
	if d.Sender == "" {
		d.Sender = DefaultSender()
	}
	d.ID = cmp.Or(d.ID, newID())
	now := time.Now()
	m := channel.Message{
		ChatJID:    d.Chat,
		ID:         d.ID,
		Sender:     Prefix + d.Sender,
		SenderName: d.Sender,
		Text:       d.Text,
		Timestamp:  now,
		// Only the owner reaches the local channel (the control socket is
		// theirs alone), so every message here is the owner's (R18).
		FromMe:  true,
		IsGroup: true,
		ReplyTo: d.ReplyTo,
	}
	for _, f := range d.Files {
		m.Attachments = append(m.Attachments, attachment(f))
	}
	key := d.Chat + "\x00" + d.ID

	c.mu.Lock()
	h, closed := c.handler, c.closed
	_, seen := c.chats[d.Chat]
	busy := c.storing[key]
	ok := h != nil && !closed && !busy
	if ok {
		c.chats[d.Chat] = now
		c.storing[key] = true
	}
	c.mu.Unlock()
	switch {
	case closed:
		return Event{}, ErrClosed
	case h == nil:
		return Event{}, ErrNotConnected
	case busy:
		return Event{}, fmt.Errorf("message %s in %s: %w", d.ID, d.Chat, ErrInProgress)
	}
	defer func() {
		c.mu.Lock()
		delete(c.storing, key)
		c.mu.Unlock()
	}()
	if !seen {
		h.OnChat(c.life, c, chatInfo(d.Chat, now))
	}
	stored, err := h.OnMessage(c.life, c, m)
	if err != nil {
		return Event{}, fmt.Errorf("store message %s in %s: %w", d.ID, d.Chat, err)
	}
	ev := Event{Type: EventStored, Chat: d.Chat, ID: d.ID, Seq: stored.Seq, WillAnswer: stored.WillAnswer, Taken: stored.Taken, Time: now}
	if ev.Seq != 0 {
		c.publish(ev)
	}
	c.log.Debug("local message delivered", "chat", d.Chat, "id", d.ID, "sender", d.Sender,
		"bytes", len(d.Text), "files", len(d.Files), "seq", ev.Seq)
	return ev, nil
}

// Send publishes a reply event to the chat's subscribers and returns its id.
func (c *Channel) Send(ctx context.Context, jid, text string) ([]string, error) {
	return c.send(jid, text, "")
}

// send publishes a reply, quoting message replyTo unless it is "".
func (c *Channel) send(jid, text, replyTo string) ([]string, error) {
	if _, err := ParseChat(jid); err != nil {
		return nil, err
	}
	if !c.touch(jid) {
		return nil, ErrClosed
	}
	id := newID()
	if c.publish(Event{Type: EventReply, Chat: jid, ID: id, Text: text, ReplyTo: replyTo}) == 0 {
		c.log.Debug("local reply has no viewer", "chat", jid, "id", id)
	}
	return []string{id}, nil
}

// touch records activity in chat jid; false when the channel is closed.
func (c *Channel) touch(jid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.chats[jid] = time.Now()
	}
	return !c.closed
}

// isClosed reports whether Close was called.
func (c *Channel) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// SetTyping publishes a typing event to the chat's subscribers.
func (c *Channel) SetTyping(ctx context.Context, jid string, typing bool) error {
	if _, err := ParseChat(jid); err != nil {
		return err
	}
	c.publish(Event{Type: EventTyping, Chat: jid, Typing: typing})
	return nil
}

// RunDone implements channel.Observer: it publishes a done event.
func (c *Channel) RunDone(jid string, upTo int64, err error) {
	ev := Event{Type: EventDone, Chat: jid, UpTo: upTo}
	if err != nil {
		ev.Error = err.Error()
	}
	c.publish(ev)
}

// Chats lists the local chats seen since the channel was made, by id.
func (c *Channel) Chats(ctx context.Context) ([]channel.ChatInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]channel.ChatInfo, 0, len(c.chats))
	for _, jid := range slices.Sorted(maps.Keys(c.chats)) {
		out = append(out, chatInfo(jid, c.chats[jid]))
	}
	return out, nil
}

// Self returns the main chat's id, "local:main".
func (c *Channel) Self() string { return MainChat }

// Close drops the handler and ends every subscription (their channels close
// without a further event). It is idempotent.
func (c *Channel) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.handler = nil
	c.stop()
	for jid, set := range c.subs {
		for ch := range set {
			c.remove(jid, ch)
		}
	}
	return nil
}

func chatInfo(jid string, t time.Time) channel.ChatInfo {
	return channel.ChatInfo{JID: jid, Name: strings.TrimPrefix(jid, Prefix), IsGroup: true, LastActivity: t}
}

// newID is a random 16-hex-digit message id.
func newID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand's documented contract since Go 1.24)
	return hex.EncodeToString(b[:])
}
