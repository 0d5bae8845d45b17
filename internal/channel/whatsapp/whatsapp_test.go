package whatsapp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
)

// deadEnd is an HTTP client whose every connection is refused; it counts the
// attempts.
func deadEnd(t *testing.T) (*http.Client, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return redirect(addr)
}

// blackhole is an HTTP client whose connections are accepted and never
// answered, like a network that drops packets.
func blackhole(t *testing.T) (*http.Client, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return redirect(l.Addr().String())
}

// redirect sends every dial to addr.
func redirect(addr string) (*http.Client, *atomic.Int32) {
	var dials atomic.Int32
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, "tcp", addr)
		},
	}}, &dials
}

// newPaired returns a channel on a database holding a paired account.
func newPaired(t *testing.T, hc *http.Client) *Channel {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "nanoclaw.db"), nil)
	pairDevice(t, st)
	c, err := New(context.Background(), st.DB(), Options{Logger: quiet, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnectWithoutPairing(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "nanoclaw.db"), nil)
	c, err := New(context.Background(), st.DB(), Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	err = c.Connect(context.Background(), &channeltest.Handler{})
	if !errors.Is(err, ErrNotPaired) || !strings.Contains(err.Error(), "nanoclaw pair whatsapp") {
		t.Fatalf("Connect = %v, want ErrNotPaired naming the pair command", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Connect took %s without a session", time.Since(start))
	}
	if c.Self() != "" {
		t.Errorf("Self = %q before connecting", c.Self())
	}
}

// Without network, Connect gives up when its context ends, and then nothing
// keeps retrying behind it.
func TestConnectGivesUpWhenUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		net  func(*testing.T) (*http.Client, *atomic.Int32)
	}{{"refused", deadEnd}, {"blackhole", blackhole}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hc, dials := tc.net(t)
			c := newPaired(t, hc)
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.Connect(ctx, &channeltest.Handler{})
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "cannot reach WhatsApp") {
				t.Fatalf("Connect = %v, want a 'cannot reach WhatsApp' error", err)
			}
			if took > 6*time.Second {
				t.Errorf("Connect took %s with a 2.5s context", took)
			}
			if dials.Load() == 0 {
				t.Fatal("Connect never dialled: the test network was not used")
			}
			if c.Self() != "" {
				t.Errorf("Self = %q while not connected", c.Self())
			}
			// whatsmeow's retry delay grows by 2 s per failure: had a retry
			// loop survived, it would dial again within 5 s.
			before := dials.Load()
			t.Logf("%d dials before Connect gave up after %s", before, took.Round(time.Millisecond))
			if tc.name == "refused" && before < 2 {
				t.Errorf("%d dials: whatsmeow's own retry (InitialAutoReconnect) did not run", before)
			}
			time.Sleep(5 * time.Second)
			if after := dials.Load(); after != before {
				t.Errorf("%d more dials after Connect gave up: something keeps retrying", after-before)
			}
			done := make(chan struct{})
			go func() { c.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close hangs")
			}
			if _, err := c.Send(context.Background(), ownPN.String(), "x"); err == nil {
				t.Error("Send after Close succeeded")
			}
		})
	}
}

// Messages reach the handler inside whatsmeow's event handler, and a failure
// to store one is reported back so that whatsmeow does not acknowledge it.
func TestMessagesAreStoredBeforeTheyAreAcknowledged(t *testing.T) {
	c := newPaired(t, nil)
	rec := &channeltest.Handler{}
	c.handler = rec

	evt := msgEvent(types.MessageInfo{
		MessageSource: types.MessageSource{Chat: ownLID, Sender: withDevice(ownLID, 4), IsFromMe: true},
	}, &waE2E.Message{Conversation: proto.String("what's on today?")})
	if ack := c.handleEvent(evt); !ack {
		t.Fatal("stored message not acknowledged")
	}
	got := rec.Messages() // already there: delivery was synchronous
	if len(got) != 1 {
		t.Fatalf("handler got %d messages when the event handler returned", len(got))
	}
	if got[0].ChatJID != ownPN.String() || got[0].Sender != ownPN.String() || !got[0].FromMe || got[0].SenderName != "Me" {
		t.Errorf("self-chat message by LID converted to %+v", got[0])
	}

	fromBob := types.MessageSource{Chat: bobPN, Sender: bobPN}
	for _, tc := range []struct {
		name    string
		handler *channeltest.Handler // nil: none set
		evt     *events.Message
		wantAck bool // an ignored message is acknowledged, or WhatsApp would redeliver it forever
	}{
		{"storing fails", &channeltest.Handler{Err: errors.New("disk full")},
			msgEvent(types.MessageInfo{MessageSource: fromBob, ID: "X2"}, &waE2E.Message{Conversation: proto.String("hi")}), false},
		{"a reaction is ignored", &channeltest.Handler{},
			msgEvent(types.MessageInfo{MessageSource: fromBob}, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍")}}), true},
		{"no handler to store it", nil, evt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.handler = nil // not a nil *Handler, which would be a handler
			if tc.handler != nil {
				c.handler = tc.handler
			}
			if ack := c.handleEvent(tc.evt); ack != tc.wantAck {
				t.Errorf("acknowledged = %v, want %v", ack, tc.wantAck)
			}
			if tc.handler != nil && len(tc.handler.Messages()) != 0 {
				t.Errorf("handler stored %+v", tc.handler.Messages())
			}
		})
	}
}

func TestChatNamesReachTheHandler(t *testing.T) {
	c := newPaired(t, nil)
	rec := &channeltest.Handler{}
	c.handler = rec
	c.handleEvent(&events.PushName{JID: bobLID, JIDAlt: bobPN, NewPushName: "Bob"})
	c.handleEvent(&events.GroupInfo{JID: group, Name: &types.GroupName{Name: "Family"}})
	c.handleEvent(&events.GroupInfo{JID: group}) // a topic change: no name
	c.handleEvent(&events.JoinedGroup{GroupInfo: types.GroupInfo{JID: types.NewJID("1203", types.GroupServer), GroupName: types.GroupName{Name: "Book club"}}})
	want := []channel.ChatInfo{
		{JID: "4915112345678@s.whatsapp.net", Name: "Bob"},
		{JID: "120363025246125486@g.us", Name: "Family", IsGroup: true},
		{JID: "1203@g.us", Name: "Book club", IsGroup: true},
	}
	if got := rec.Chats(); !slices.Equal(got, want) {
		t.Errorf("chats %+v, want %+v", got, want)
	}
}

// A logout is final: clear errors naming the pair command, no retry.
func TestLoggedOutStops(t *testing.T) {
	c := newPaired(t, nil)
	c.handler = &channeltest.Handler{}
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	if c.Self() != ownPN.String() {
		t.Fatalf("Self = %q when connected, want %s", c.Self(), ownPN)
	}
	c.handleEvent(&events.LoggedOut{OnConnect: true, Reason: events.ConnectFailureLoggedOut})
	if c.Self() != "" {
		t.Errorf("Self = %q after logout", c.Self())
	}
	_, err := c.Send(context.Background(), ownPN.String(), "hello")
	if !errors.Is(err, ErrLoggedOut) || !strings.Contains(err.Error(), "nanoclaw pair whatsapp") {
		t.Errorf("Send after logout = %v", err)
	}
	start := time.Now()
	if err := c.Connect(context.Background(), &channeltest.Handler{}); !errors.Is(err, ErrLoggedOut) {
		t.Errorf("Connect after logout = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("Connect after logout did not fail at once")
	}
}
