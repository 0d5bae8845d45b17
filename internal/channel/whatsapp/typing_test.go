package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// presences records what SetTyping sends, and when.
type presences struct {
	mu    sync.Mutex
	start time.Time
	sent  []string
	err   error
}

func (p *presences) send(_ context.Context, to types.JID, state types.ChatPresence) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, fmt.Sprintf("%s %s %s", time.Since(p.start), to.User, state))
	return p.err
}

func (p *presences) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sent
	p.sent = nil
	return s
}

// connectedBare is a connected channel with no whatsmeow client: enough for
// typing, and made inside a synctest bubble so that its goroutines are the
// bubble's.
func connectedBare(p *presences) *Channel {
	life, stop := context.WithCancel(context.Background())
	return &Channel{log: quiet, limit: channel.NewSendLimit(0, 0), presence: p.send, life: life, stop: stop, connected: true}
}

// "typing…" shown stays shown: WhatsApp lets it lapse, so it is sent again
// every 8 s by one goroutine per chat, until cleared; cleared, nothing is
// sent after the "paused".
func TestTypingIsRenewedUntilCleared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &presences{start: time.Now()}
		c := connectedBare(p)
		ctx := context.Background()
		bob, grp := bobPN.String(), group.String()
		if err := c.SetTyping(ctx, bob, true); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := c.SetTyping(ctx, bob, true); err != nil { // shown again: no second renewer
			t.Fatal(err)
		}
		time.Sleep(19 * time.Second)
		if err := c.SetTyping(ctx, bob, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		want := []string{
			"0s 4915112345678 composing",
			"1s 4915112345678 composing",
			"8s 4915112345678 composing",
			"16s 4915112345678 composing",
			"20s 4915112345678 paused",
		}
		if got := p.take(); !slices.Equal(got, want) {
			t.Errorf("sent\n%q\nwant\n%q", got, want)
		}

		// A failed renewal does not stop the next; Close stops them all.
		if err := c.SetTyping(ctx, grp, true); err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		p.err = errors.New("websocket not connected")
		p.mu.Unlock()
		time.Sleep(17 * time.Second)
		c.Close()
		time.Sleep(time.Minute)
		want = []string{
			"1m20s 120363025246125486 composing",
			"1m28s 120363025246125486 composing",
			"1m36s 120363025246125486 composing",
		}
		if got := p.take(); !slices.Equal(got, want) {
			t.Errorf("sent\n%q\nwant\n%q", got, want)
		}
		if err := c.SetTyping(ctx, grp, true); err == nil {
			t.Error("SetTyping after Close succeeded")
		}
	})
}

// The first "typing…" failing is reported, and starts no renewal.
func TestTypingFailureStartsNoRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &presences{start: time.Now(), err: errors.New("not logged in")}
		c := connectedBare(p)
		if err := c.SetTyping(context.Background(), bobPN.String(), true); err == nil {
			t.Fatal("SetTyping succeeded")
		}
		time.Sleep(time.Minute)
		if got := p.take(); len(got) != 1 {
			t.Errorf("sent %q, want the one attempt", got)
		}
		c.Close()
	})
}
