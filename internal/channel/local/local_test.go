package local

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// recorder is a handler that records what it is given; OnMessage reports the
// message stored through the channel's Observer, as the router does.
type recorder struct {
	mu    sync.Mutex
	msgs  []channel.Message
	chats []string
	err   error
	seq   int64
}

func (r *recorder) OnMessage(ctx context.Context, ch channel.Channel, m channel.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, m)
	r.seq++
	ch.(channel.Observer).Stored(m.ChatJID, m.ID, r.seq, true)
	return nil
}

func (r *recorder) OnChat(ctx context.Context, ch channel.Channel, c channel.ChatInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chats = append(r.chats, c.JID)
}

var quiet = slog.New(slog.DiscardHandler)

func connected(t *testing.T) (*Channel, *recorder) {
	t.Helper()
	c := New(quiet)
	t.Cleanup(func() { c.Close() })
	r := &recorder{}
	if err := c.Connect(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return c, r
}

func TestInjectStoresSynchronously(t *testing.T) {
	c, r := connected(t)
	events, cancel := c.Subscribe("local:main")
	defer cancel()
	before := time.Now()
	m, err := c.Inject(context.Background(), "local:main", "alice", "hello there")
	if err != nil {
		t.Fatal(err)
	}
	// Inject returned: the handler has the message already.
	if len(r.msgs) != 1 || r.msgs[0] != m {
		t.Fatalf("handler got %+v, Inject returned %+v", r.msgs, m)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(m.ID) {
		t.Errorf("id %q is not 16 hex digits", m.ID)
	}
	if m.ChatJID != "local:main" || m.Sender != "local:alice" || m.SenderName != "alice" ||
		m.Text != "hello there" || !m.IsGroup || !m.FromMe || m.Timestamp.Before(before) || time.Since(m.Timestamp) > time.Minute {
		t.Errorf("message %+v", m)
	}
	// The Observer call inside OnMessage reached the subscriber before Inject returned.
	select {
	case ev := <-events:
		if ev.Type != EventStored || ev.ID != m.ID || ev.Seq != 1 || !ev.WillAnswer || ev.Chat != "local:main" {
			t.Errorf("event %+v", ev)
		}
	default:
		t.Fatal("no stored event buffered when Inject returned")
	}
	m2, err := c.Inject(context.Background(), "local:main", "alice", "again")
	if err != nil || m2.ID == m.ID {
		t.Fatalf("second inject: %v, id %q (first %q)", err, m2.ID, m.ID)
	}
}

func TestInjectAnnouncesNewChatsOnce(t *testing.T) {
	c, r := connected(t)
	for range 2 {
		if _, err := c.Inject(context.Background(), "local:work", "bob", "hi"); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(r.chats, ",") != "local:main,local:work" {
		t.Errorf("OnChat calls %v, want main at Connect, then work once", r.chats)
	}
	chats, _ := c.Chats(context.Background())
	if len(chats) != 2 || chats[0].JID != "local:main" || chats[1].JID != "local:work" || chats[1].Name != "work" || !chats[1].IsGroup {
		t.Errorf("Chats = %+v", chats)
	}
}

func TestInjectDefaultsSender(t *testing.T) {
	c, _ := connected(t)
	m, err := c.Inject(context.Background(), "local:main", "", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if m.SenderName != DefaultSender() || ValidateSender(m.SenderName) != nil {
		t.Errorf("sender %q, default %q", m.SenderName, DefaultSender())
	}
}

func TestInjectRejects(t *testing.T) {
	cases := []struct{ chat, sender, text, want string }{
		{"main", "a", "hi", "not a local chat"},
		{"whatsapp:main", "a", "hi", "not a local chat"},
		{"local:", "a", "hi", "empty name"},
		{"local:Main", "a", "hi", "not allowed"},
		{"local:global", "a", "hi", "reserved"},
		{"local:../x", "a", "hi", "not allowed"},
		{"local:main", "a\nb", "hi", "not printable"},
		{"local:main", "a\tb", "hi", "not printable"},
		{"local:main", strings.Repeat("x", 65), "hi", "at most 64"},
		{"local:main", " a", "hi", "space"},
		{"local:main", "a\xffb", "hi", "UTF-8"},
		{"local:main", "a", "", "empty message"},
		{"local:main", "a", " \n\t", "empty message"},
		{"local:main", "a", strings.Repeat("x", MaxTextBytes+1), "at most 65536"},
		{"local:main", "a", "bad \xff", "UTF-8"},
		{"local:main", "a", "nul \x00", "NUL"},
	}
	c, r := connected(t)
	for _, tc := range cases {
		_, err := c.Inject(context.Background(), tc.chat, tc.sender, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Inject(%q, %q, %.20q): %v, want error with %q", tc.chat, tc.sender, tc.text, err, tc.want)
		}
	}
	if len(r.msgs) != 0 {
		t.Errorf("rejected messages reached the handler: %d", len(r.msgs))
	}
	// The limits themselves are allowed.
	if _, err := c.Inject(context.Background(), "local:main", strings.Repeat("é", 64), strings.Repeat("x", MaxTextBytes)); err != nil {
		t.Errorf("largest message and sender: %v", err)
	}
}

func TestInjectNotConnectedClosedAndFailing(t *testing.T) {
	c := New(nil)
	if _, err := c.Inject(context.Background(), "local:main", "a", "hi"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("before Connect: %v", err)
	}
	r := &recorder{err: errors.New("disk full")}
	c.Connect(context.Background(), r)
	if _, err := c.Inject(context.Background(), "local:main", "a", "hi"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("handler failure: %v", err)
	}
	c.Close()
	if _, err := c.Inject(context.Background(), "local:main", "a", "hi"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := c.Connect(context.Background(), r); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect after Close: %v", err)
	}
}

func TestInjectHandsChannelContextToHandler(t *testing.T) {
	c := New(nil)
	var got context.Context
	h := handlerFunc(func(ctx context.Context, m channel.Message) error { got = ctx; return nil })
	c.Connect(context.Background(), h)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := c.Inject(ctx, "local:main", "a", "hi"); err != nil {
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
	if _, err := c.Inject(ctx, "local:main", "a", "hi"); err == nil {
		t.Error("Inject with a cancelled context succeeded")
	}
}

type handlerFunc func(context.Context, channel.Message) error

func (f handlerFunc) OnMessage(ctx context.Context, _ channel.Channel, m channel.Message) error {
	return f(ctx, m)
}
func (handlerFunc) OnChat(context.Context, channel.Channel, channel.ChatInfo) {}

func TestSubscribersGetTheirChatsEvents(t *testing.T) {
	c, _ := connected(t)
	main, cancelMain := c.Subscribe("local:main")
	defer cancelMain()
	other, cancelOther := c.Subscribe("local:other")
	defer cancelOther()

	ctx := context.Background()
	c.Stored("local:main", "m1", 7, false)
	if err := c.SetTyping(ctx, "local:main", true); err != nil {
		t.Fatal(err)
	}
	ids, err := c.Send(ctx, "local:main", "Andy: hi")
	if err != nil || len(ids) != 1 || len(ids[0]) != 16 {
		t.Fatalf("Send: %v %v", ids, err)
	}
	c.SetTyping(ctx, "local:main", false)
	c.RunDone("local:main", 7, nil)
	c.RunDone("local:main", 8, errors.New("container died"))

	want := []Event{
		{Type: EventStored, Chat: "local:main", ID: "m1", Seq: 7},
		{Type: EventTyping, Chat: "local:main", Typing: true},
		{Type: EventReply, Chat: "local:main", ID: ids[0], Text: "Andy: hi"},
		{Type: EventTyping, Chat: "local:main"},
		{Type: EventDone, Chat: "local:main", UpTo: 7},
		{Type: EventDone, Chat: "local:main", UpTo: 8, Error: "container died"},
	}
	for i, w := range want {
		got := <-main
		if got.Time.IsZero() {
			t.Errorf("event %d has no time", i)
		}
		got.Time = time.Time{}
		if got != w {
			t.Errorf("event %d = %+v, want %+v", i, got, w)
		}
	}
	select {
	case ev := <-other:
		t.Errorf("other chat's subscriber got %+v", ev)
	default:
	}
	if _, err := c.Send(ctx, "123@g.us", "x"); err == nil {
		t.Error("Send to a WhatsApp chat succeeded")
	}
	if err := c.SetTyping(ctx, "local:BAD", true); err == nil {
		t.Error("SetTyping to a bad chat succeeded")
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	c, _ := connected(t)
	slow, cancelSlow := c.Subscribe("local:main") // never read until the end
	defer cancelSlow()
	fast, cancelFast := c.Subscribe("local:main")
	defer cancelFast()

	// Publish in batches and drain the fast subscriber between them, so it
	// never falls behind however slow the machine; the slow one never reads.
	const batch, batches = SubscriberBuffer / 2, 6
	for range batches {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range batch {
				c.Send(context.Background(), "local:main", "reply")
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			go func() { // unblock the publisher, so that cleanup can Close
				for range slow {
				}
			}()
			t.Fatal("publishing blocked on a subscriber that does not read")
		}
		for i := range batch {
			if ev := <-fast; ev.Type != EventReply {
				t.Fatalf("fast subscriber's event %d: %+v", i, ev)
			}
		}
	}
	// The slow one got its buffer's worth, then lagged, then its channel closed.
	var events []Event
	for ev := range slow {
		events = append(events, ev)
	}
	if len(events) != SubscriberBuffer+1 {
		t.Fatalf("slow subscriber got %d events, want %d", len(events), SubscriberBuffer+1)
	}
	last := events[len(events)-1]
	if last.Type != EventLagged || !strings.Contains(last.Error, "behind") {
		t.Errorf("last event %+v, want lagged", last)
	}
	if c.Subscribers("local:main") != 1 {
		t.Errorf("subscribers = %d, want the fast one only", c.Subscribers("local:main"))
	}
	cancelSlow() // harmless after the cut-off
}

func TestCancelAndClose(t *testing.T) {
	c, _ := connected(t)
	a, cancelA := c.Subscribe("local:main")
	b, _ := c.Subscribe("local:main")
	cancelA()
	cancelA()
	if _, ok := <-a; ok {
		t.Error("cancelled subscription still open")
	}
	if c.Subscribers("local:main") != 1 {
		t.Errorf("subscribers = %d after cancel", c.Subscribers("local:main"))
	}
	c.Close()
	c.Close()
	if _, ok := <-b; ok {
		t.Error("subscription open after Close")
	}
	d, cancelD := c.Subscribe("local:main")
	if _, ok := <-d; ok {
		t.Error("subscription after Close is open")
	}
	cancelD()
}

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

func TestEventCovers(t *testing.T) {
	cases := []struct {
		ev   Event
		seq  int64
		want bool
	}{
		{Event{Type: EventDone, UpTo: 5}, 5, true},
		{Event{Type: EventDone, UpTo: 6}, 5, true},
		{Event{Type: EventDone, UpTo: 4}, 5, false},
		{Event{Type: EventDone, UpTo: 4, Error: "x"}, 5, false},
		{Event{Type: EventDone, Error: "x"}, 5, true},
		{Event{Type: EventReply, UpTo: 9}, 5, false},
	}
	for _, tc := range cases {
		if got := tc.ev.Covers(tc.seq); got != tc.want {
			t.Errorf("%+v.Covers(%d) = %v", tc.ev, tc.seq, got)
		}
	}
}

func TestDeliverReportsWhatTheHandlerDid(t *testing.T) {
	c, r := connected(t)
	d, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Sender: "a", Text: "hi", ID: "client-id:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Reported || d.Seq != 1 || !d.WillAnswer || d.Message.ID != "client-id:1" || r.msgs[0].ID != "client-id:1" {
		t.Errorf("delivered %+v", d)
	}

	// A handler that stores nothing (unregistered chat, or a duplicate id).
	c2 := New(quiet)
	defer c2.Close()
	c2.Connect(context.Background(), handlerFunc(func(context.Context, channel.Message) error { return nil }))
	d, err = c2.Deliver(context.Background(), Draft{Chat: "local:main", Text: "hi"})
	if err != nil || d.Reported || d.Seq != 0 || d.Message.ID == "" {
		t.Errorf("unreported: %+v %v", d, err)
	}

	for _, id := range []string{"has space", strings.Repeat("x", 65), "ünï", "a/b"} {
		if _, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Text: "hi", ID: id}); err == nil || !strings.Contains(err.Error(), "message id") {
			t.Errorf("id %q: %v", id, err)
		}
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
