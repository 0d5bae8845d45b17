package local

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
)

// The local channel passes the suite every channel passes.
func TestConformance(t *testing.T) {
	channeltest.Conformance(t, &service{acked: map[string]bool{}})
}

// service is the local channel's "service" for the conformance suite: the
// terminal user's messages come in through Deliver, as `nanoclaw send`
// brings them, and what the host sends is read from a subscription to the
// chat's events, as `nanoclaw chat` reads it.
type service struct {
	ch     *Channel
	t      *testing.T // the suite's: deliveries outlive the check that started them
	inbox  chan func()
	dialog sync.WaitGroup

	mu    sync.Mutex
	n     int
	acked map[string]bool
	out   []channeltest.Outbound
}

var _ channeltest.Explainer = (*service)(nil)

func (s *service) Channel(t *testing.T) channel.Channel {
	s.t = t
	s.ch = New(quiet, WithFiles(t.TempDir(), 0))
	events, cancel := s.ch.Subscribe(MainChat)
	// One goroutine delivers the messages in the order they were sent, as
	// one terminal does; Inbound does not wait for it.
	s.inbox = make(chan func(), 100)
	s.dialog.Go(func() {
		for deliver := range s.inbox {
			deliver()
		}
	})
	s.dialog.Go(func() {
		for ev := range events {
			s.record(ev)
		}
	})
	t.Cleanup(func() {
		close(s.inbox)
		cancel()
		s.dialog.Wait()
	})
	return s.ch
}

// record turns an event of the chat into what the service received.
func (s *service) record(ev Event) {
	o := channeltest.Outbound{Chat: ev.Chat}
	switch ev.Type {
	case EventReply:
		o.Kind, o.Text, o.ReplyTo = channeltest.OutText, ev.Text, ev.ReplyTo
	case EventTyping:
		o.Kind, o.Typing = channeltest.OutTyping, ev.Typing
	case EventReaction:
		o.Kind, o.Target, o.Emoji = channeltest.OutReaction, ev.ID, ev.Emoji
	case EventFile:
		data, err := os.ReadFile(ev.Path)
		if err != nil {
			s.t.Errorf("the file event's file: %v", err)
		}
		o.Kind, o.Text = channeltest.OutFile, ev.Text
		o.File = &channel.File{Name: ev.Name, MIME: ev.MIME, Kind: channel.MediaKind(ev.Kind), Data: data}
	case EventLagged:
		s.t.Errorf("the suite's subscription fell behind: %s", ev.Error)
		return
	default: // stored, done: the host's progress, not something sent
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = append(s.out, o)
}

func (s *service) Supports(f channeltest.Feature) bool {
	switch f {
	case channeltest.Media, channeltest.Replies, channeltest.Typing, channeltest.Reactions, channeltest.Acks:
		return true
	}
	return false
}

func (s *service) WhyNot(f channeltest.Feature) string {
	switch f {
	case channeltest.Mentions:
		return "the owner types at their own terminal; there is nobody to @-mention"
	case channeltest.RateLimits:
		return "the channel is the daemon's own; no service answers floods"
	case channeltest.Reconnect:
		return "the channel lives in the daemon's process; each send and chat is its own connection to the control socket"
	case channeltest.Revocation:
		return "the control socket is the owner's by its file mode; there is no credential to revoke"
	}
	return "the suite asked about a feature it has"
}

// Chat: local chats are all groups (a folder's chat); there are no direct
// chats.
func (s *service) Chat(group bool) string {
	if group {
		return MainChat
	}
	return ""
}

func (s *service) Inbound(t *testing.T, in channeltest.Inbound) string {
	t.Helper()
	if in.MentionsSelf {
		t.Fatal("the local channel has no mentions")
	}
	s.mu.Lock()
	s.n++
	id := fmt.Sprintf("in-%d", s.n)
	s.mu.Unlock()
	d := Draft{Chat: in.Chat, Sender: "alice", Text: in.Text, ID: id, ReplyTo: in.ReplyTo}
	if m := in.Media; m != nil {
		d.Files = []DraftFile{{Name: cmp.Or(m.FileName, "photo.jpg"), Data: m.Data}}
	}
	s.inbox <- func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Deliver returning is the acknowledgement: `nanoclaw send`
		// reports the message stored only then.
		if _, err := s.ch.Deliver(ctx, d); err != nil {
			s.t.Errorf("deliver %s: %v", id, err)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.acked[id] = true
	}
	return id
}

func (s *service) Acked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id]
}

func (s *service) Outbound() []channeltest.Outbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.out)
}

// MaxText: a reply goes whole, however long, as one event.
func (s *service) MaxText() int { return 0 }

func (s *service) RateLimit(int, time.Duration) { panic("the local channel has no rate limits") }
func (s *service) Drop()                        { panic("the local channel has no connection to drop") }
func (s *service) Revoke()                      { panic("the local channel has no credential") }
