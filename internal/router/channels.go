package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
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

	// spool is where the agents' files wait to be sent (the tools' copies),
	// maxFile how large one may be; retry the pause before a failed send
	// is tried again (doubling).
	spool   string
	maxFile int64
	retry   time.Duration

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
	return &Channels{st: st, log: cmp.Or(log, slog.Default()), name: assistantName, current: make(map[string]string),
		retry: 2 * time.Second}
}

// Spool tells Deliver where the files the agents send wait (the send_file
// tool's copies), and how large one may be.
func (c *Channels) Spool(dir string, maxBytes int64) { c.spool, c.maxFile = dir, maxBytes }

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

// deliverAttempts is how often Deliver tries a send before it gives up.
const deliverAttempts = 3

// errCannot marks a send that trying again cannot help.
type errCannot struct{ error }

// Deliver sends a kept message through its chat's channel and marks it
// sent. A send that fails is tried again, twice, after a pause; then the
// message is given up (store.MarkFailed): traced, and told to its group's
// next run, as it is when ctx's deadline passes first. With no channel for
// the chat connected, or when ctx is cancelled (nanoclaw is stopping), it
// stays unsent: the next start sends it.
func (c *Channels) Deliver(ctx context.Context, o store.Outgoing) bool {
	ch := c.forChat(o.ChatJID)
	if ch == nil {
		c.log.Warn("no connected channel for chat; reply kept for later", "chat", o.ChatJID)
		c.traceUnsent(ctx, o, "no channel serving the chat is connected")
		return false
	}
	var ids []string
	var err error
	for attempt := range deliverAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(c.retry << (attempt - 1)):
			}
		}
		if ctx.Err() != nil {
			err = cmp.Or(err, ctx.Err())
			break
		}
		ids, err = c.send(ctx, ch, o)
		if _, cannot := err.(errCannot); err == nil || cannot {
			break
		}
		if !errors.Is(err, channel.ErrMaybeSent) && len(ids) > 0 {
			// Some of it went (a long text's first parts, a file without the
			// rest of its caption): sent again from the start, those would
			// arrive twice. Given up, and the agent told.
			err = fmt.Errorf("only part of it arrived (%d messages): %w", len(ids), err)
			break
		}
		if errors.Is(err, channel.ErrMaybeSent) {
			// Sent again, it could arrive twice: counted as sent.
			c.log.Warn("send may not have arrived; not sent again", "chat", o.ChatJID, "err", err)
			keepTrace(context.WithoutCancel(ctx), c.st, c.log, store.Event{Folder: o.Folder, Chat: o.ChatJID, Kind: store.EventFailed,
				Detail: "the reply may not have arrived (not sent again, so it cannot arrive twice): " + err.Error()})
			err = nil
			break
		}
		c.log.Warn("send failed", "chat", o.ChatJID, "attempt", attempt+1, "err", err)
	}
	switch {
	case err == nil:
		// Sent: marked so whatever ctx says now, or the next start would
		// send it again.
		if err := c.st.MarkSent(context.WithoutCancel(ctx), o, ids, c.name); err != nil {
			c.log.Error("mark reply sent", "chat", o.ChatJID, "err", err)
		}
		c.dropSpool(o)
		return true
	case errors.Is(ctx.Err(), context.Canceled):
		c.traceUnsent(ctx, o, "nanoclaw was stopping")
		return false
	}
	c.log.Error("send failed; given up", "chat", o.ChatJID, "err", err)
	if merr := c.st.MarkFailed(context.WithoutCancel(ctx), o.ID, err.Error()); merr != nil {
		c.log.Error("mark reply failed", "chat", o.ChatJID, "err", merr)
	}
	keepTrace(context.WithoutCancel(ctx), c.st, c.log, store.Event{Folder: o.Folder, Chat: o.ChatJID, Kind: store.EventFailed,
		Detail: "the reply could not be delivered (its agent is told at its next run): " + err.Error()})
	c.dropSpool(o)
	return false
}

// send sends o once: its file, or its text, quoting the message it
// answers where the channel can.
func (c *Channels) send(ctx context.Context, ch channel.Channel, o store.Outgoing) ([]string, error) {
	if o.File != nil {
		fs, ok := ch.(channel.FileSender)
		if !ok {
			return nil, errCannot{fmt.Errorf("the %s channel cannot send files", ch.Name())}
		}
		data, err := c.readSpool(o.File.Spool)
		if err != nil {
			return nil, errCannot{err}
		}
		id, err := fs.SendFile(ctx, o.ChatJID, channel.File{Name: o.File.Name, MIME: o.File.MIME, Kind: channel.MediaKind(o.File.Kind),
			Data: data, Caption: o.File.Caption})
		if id == "" {
			return nil, err
		}
		return []string{id}, err // the file went, perhaps not all of its caption
	}
	if q, ok := ch.(channel.Quoter); ok && o.ReplyTo != "" {
		if m, found, err := c.st.MessageByID(ctx, o.ChatJID, o.ReplyTo); err == nil && found {
			return q.SendQuoting(ctx, o.ChatJID, o.Content, channel.MessageRef{ID: m.ID, Sender: m.Sender, FromMe: m.FromMe,
				Text: sanitize.FirstLine(m.Content, 100)})
		}
	}
	return ch.Send(ctx, o.ChatJID, o.Content)
}

// readSpool reads a spooled file, at most the file limit: the host's own
// copy, in its own directory.
func (c *Channels) readSpool(name string) ([]byte, error) {
	if c.spool == "" {
		return nil, errors.New("this host keeps no files to send")
	}
	if err := store.ValidateSpoolName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(c.spool, name))
	if err != nil {
		return nil, fmt.Errorf("the file to send is gone: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, c.maxFile+1))
	if err == nil && int64(len(data)) > c.maxFile {
		err = fmt.Errorf("the file to send is larger than %d bytes", c.maxFile)
	}
	return data, err
}

// dropSpool removes o's spooled file once it is sent or given up.
func (c *Channels) dropSpool(o store.Outgoing) {
	if o.File == nil || c.spool == "" || store.ValidateSpoolName(o.File.Spool) != nil {
		return
	}
	if err := os.Remove(filepath.Join(c.spool, o.File.Spool)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("remove a sent file's copy", "file", o.File.Spool, "err", err)
	}
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
