package local

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
)

var quiet = slog.New(slog.DiscardHandler)

// inject delivers text from sender to chat with a new id.
func inject(ctx context.Context, c *Channel, chat, sender, text string) (Event, error) {
	return c.Deliver(ctx, Draft{Chat: chat, Sender: sender, Text: text})
}

func connected(t *testing.T) (*Channel, *channeltest.Handler) {
	t.Helper()
	c := New(quiet)
	t.Cleanup(func() { c.Close() })
	r := &channeltest.Handler{}
	if err := c.Connect(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return c, r
}

func TestDeliverStoresSynchronously(t *testing.T) {
	c, r := connected(t)
	events, cancel := c.Subscribe("local:main")
	defer cancel()
	before := time.Now()
	d, err := inject(context.Background(), c, "local:main", "alice", "hello there")
	if err != nil {
		t.Fatal(err)
	}
	// Deliver returned: the handler has the message already.
	msgs := r.Messages()
	if len(msgs) != 1 || msgs[0].ID != d.ID || !msgs[0].Timestamp.Equal(d.Time) {
		t.Fatalf("handler got %+v, Deliver returned %+v", msgs, d)
	}
	m := msgs[0]
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(m.ID) {
		t.Errorf("id %q is not 16 hex digits", m.ID)
	}
	if m.ChatJID != "local:main" || m.Sender != "local:alice" || m.SenderName != "alice" ||
		m.Text != "hello there" || !m.IsGroup || !m.FromMe || m.Timestamp.Before(before) || time.Since(m.Timestamp) > time.Minute {
		t.Errorf("message %+v", m)
	}
	if d.Type != EventStored || d.Seq != 1 || !d.WillAnswer || d.Chat != "local:main" {
		t.Errorf("Deliver returned %+v", d)
	}
	// The stored event reached the subscriber before Deliver returned.
	select {
	case ev := <-events:
		if ev.Type != EventStored || ev.ID != m.ID || ev.Seq != 1 || !ev.WillAnswer || ev.Chat != "local:main" {
			t.Errorf("event %+v", ev)
		}
	default:
		t.Fatal("no stored event buffered when Deliver returned")
	}
	d2, err := inject(context.Background(), c, "local:main", "alice", "again")
	if err != nil || d2.ID == m.ID {
		t.Fatalf("second Deliver: %v, id %q (first %q)", err, d2.ID, m.ID)
	}
}

func TestDeliverAnnouncesNewChatsOnce(t *testing.T) {
	c, r := connected(t)
	for range 2 {
		if _, err := inject(context.Background(), c, "local:work", "bob", "hi"); err != nil {
			t.Fatal(err)
		}
	}
	var announced []string
	for _, chat := range r.Chats() {
		announced = append(announced, chat.JID)
	}
	if strings.Join(announced, ",") != "local:main,local:work" {
		t.Errorf("OnChat calls %v, want main at Connect, then work once", announced)
	}
	chats, _ := c.Chats(context.Background())
	if len(chats) != 2 || chats[0].JID != "local:main" || chats[1].JID != "local:work" || chats[1].Name != "work" || !chats[1].IsGroup {
		t.Errorf("Chats = %+v", chats)
	}
}

func TestDeliverDefaultsSender(t *testing.T) {
	c, r := connected(t)
	if _, err := inject(context.Background(), c, "local:main", "", "hi"); err != nil {
		t.Fatal(err)
	}
	if m := r.Messages()[0]; m.SenderName != DefaultSender() || ValidateSender(m.SenderName) != nil {
		t.Errorf("sender %q, default %q", m.SenderName, DefaultSender())
	}
}

func TestDeliverRejects(t *testing.T) {
	cases := []struct{ chat, sender, text, id, want string }{
		{"main", "a", "hi", "", "not a local chat"},
		{"whatsapp:main", "a", "hi", "", "not a local chat"},
		{"local:", "a", "hi", "", "empty name"},
		{"local:Main", "a", "hi", "", "not allowed"},
		{"local:global", "a", "hi", "", "reserved"},
		{"local:../x", "a", "hi", "", "not allowed"},
		{"local:main", "a\nb", "hi", "", "not printable"},
		{"local:main", "a\tb", "hi", "", "not printable"},
		{"local:main", strings.Repeat("x", 65), "hi", "", "at most 64"},
		{"local:main", " a", "hi", "", "space"},
		{"local:main", "a\xffb", "hi", "", "UTF-8"},
		{"local:main", "a", "", "", "empty message"},
		{"local:main", "a", " \n\t", "", "empty message"},
		{"local:main", "a", strings.Repeat("x", MaxTextBytes+1), "", "at most 65536"},
		{"local:main", "a", "bad \xff", "", "UTF-8"},
		{"local:main", "a", "nul \x00", "", "NUL"},
		{"local:main", "a", "hi", "has space", "message id"},
		{"local:main", "a", "hi", strings.Repeat("x", 65), "message id"},
		{"local:main", "a", "hi", "ünï", "message id"},
		{"local:main", "a", "hi", "a/b", "message id"},
	}
	c, r := connected(t)
	for _, tc := range cases {
		_, err := c.Deliver(context.Background(), Draft{Chat: tc.chat, Sender: tc.sender, Text: tc.text, ID: tc.id})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Deliver(%q, %q, %.20q, id %q): %v, want error with %q", tc.chat, tc.sender, tc.text, tc.id, err, tc.want)
		}
	}
	if n := len(r.Messages()); n != 0 {
		t.Errorf("rejected messages reached the handler: %d", n)
	}
	// The limits themselves are allowed.
	if _, err := inject(context.Background(), c, "local:main", strings.Repeat("é", 64), strings.Repeat("x", MaxTextBytes)); err != nil {
		t.Errorf("largest message and sender: %v", err)
	}
}

func TestDeliverNotConnectedClosedAndFailing(t *testing.T) {
	c := New(nil)
	if _, err := inject(context.Background(), c, "local:main", "a", "hi"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("before Connect: %v", err)
	}
	r := &channeltest.Handler{Err: errors.New("disk full")}
	c.Connect(context.Background(), r)
	if _, err := inject(context.Background(), c, "local:main", "a", "hi"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("handler failure: %v", err)
	}
	c.Close()
	if _, err := inject(context.Background(), c, "local:main", "a", "hi"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := c.Connect(context.Background(), r); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect after Close: %v", err)
	}
}

func TestDeliverHandsChannelContextToHandler(t *testing.T) {
	c := New(nil)
	var got context.Context
	h := handlerFunc(func(ctx context.Context, m channel.Message) error { got = ctx; return nil })
	c.Connect(context.Background(), h)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := inject(ctx, c, "local:main", "a", "hi"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if got.Err() != nil {
		t.Error("the handler's context ended with the caller's: work the message started would be cancelled by a client hanging up")
	}
	c.Close()
	if got.Err() == nil {
		t.Error("the handler's context outlives Close")
	}
	if _, err := inject(ctx, c, "local:main", "a", "hi"); err == nil {
		t.Error("Deliver with a cancelled context succeeded")
	}
}

// handlerFunc is a handler that stores nothing new (an unregistered chat, or
// a duplicate id) unless f fails.
type handlerFunc func(context.Context, channel.Message) error

func (f handlerFunc) OnMessage(ctx context.Context, _ channel.Channel, m channel.Message) (channel.Stored, error) {
	return channel.Stored{}, f(ctx, m)
}
func (handlerFunc) OnChat(context.Context, channel.Channel, channel.ChatInfo) {}

func TestIdentity(t *testing.T) {
	c := New(nil)
	if c.Name() != "local" || c.Self() != "local:main" || !c.Owns("local:x") || c.Owns("x@g.us") || c.Owns("localx") {
		t.Error("identity methods")
	}
	if JID("work") != "local:work" {
		t.Error("JID")
	}
	if f, err := ParseChat("local:work-2"); err != nil || f != "work-2" {
		t.Errorf("ParseChat = %q, %v", f, err)
	}
}

func TestDeliverReportsWhatTheHandlerDid(t *testing.T) {
	c, r := connected(t)
	d, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Sender: "a", Text: "hi", ID: "client-id:1"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Seq != 1 || !d.WillAnswer || d.ID != "client-id:1" || r.Messages()[0].ID != "client-id:1" {
		t.Errorf("delivered %+v", d)
	}

	// A handler that stores nothing (unregistered chat, or a duplicate id).
	c2 := New(quiet)
	defer c2.Close()
	c2.Connect(context.Background(), handlerFunc(func(context.Context, channel.Message) error { return nil }))
	d, err = c2.Deliver(context.Background(), Draft{Chat: "local:main", Text: "hi"})
	if err != nil || d.Seq != 0 || d.WillAnswer || d.ID == "" {
		t.Errorf("nothing stored: %+v %v", d, err)
	}
}

func TestDeliverSameIDConcurrently(t *testing.T) {
	c := New(quiet)
	defer c.Close()
	inside, release := make(chan struct{}), make(chan struct{})
	c.Connect(context.Background(), handlerFunc(func(ctx context.Context, m channel.Message) error {
		close(inside)
		<-release
		return nil
	}))
	first := make(chan error, 1)
	go func() {
		_, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Text: "hi", ID: "x"})
		first <- err
	}()
	<-inside
	if _, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Text: "hi", ID: "x"}); !errors.Is(err, ErrInProgress) {
		t.Errorf("second Deliver of a pending id: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Error(err)
	}
}
