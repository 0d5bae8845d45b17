package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

func TestParseChatJID(t *testing.T) {
	good := []string{"15550001111@s.whatsapp.net", "4242@lid", "120363025246125486@g.us", "15550001111-1600000000@g.us"}
	for _, s := range good {
		j, err := ParseChatJID(s)
		if err != nil || j.String() != s {
			t.Errorf("ParseChatJID(%q) = %v, %v", s, j, err)
		}
	}
	bad := []string{"", "15550001111", "@s.whatsapp.net", "1555@", "15550001111:3@s.whatsapp.net", "abc@s.whatsapp.net",
		"status@broadcast", "123@newsletter", "local:main", "1@g.us@g.us", "1-2-3@g.us", "+1555@s.whatsapp.net"}
	for _, s := range bad {
		if _, err := ParseChatJID(s); err == nil {
			t.Errorf("ParseChatJID(%q) accepted", s)
		}
	}
	c := &Channel{}
	if !c.Owns("120363025246125486@g.us") || c.Owns("local:main") {
		t.Error("Owns wrong")
	}
}

func TestSendValidates(t *testing.T) {
	c := newPaired(t, nil)
	ctx := context.Background()
	for _, tc := range []struct{ jid, text, want string }{
		{"local:main", "hi", "USER@SERVER"},
		{"1555:2@s.whatsapp.net", "hi", "digits"},
		{ownPN.String(), " \n", "empty text"},
		{ownPN.String(), "hi", "not connected"},
	} {
		ids, err := c.Send(ctx, tc.jid, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) || ids != nil {
			t.Errorf("Send(%q, %q) = %v, %v; want error containing %q", tc.jid, tc.text, ids, err, tc.want)
		}
	}
	if err := c.SetTyping(ctx, "nope", true); err == nil {
		t.Error("SetTyping accepted a bad id")
	}
	if _, err := c.Chats(ctx); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("Chats while not connected = %v", err)
	}
}

// R9: every part sent to a chat waits for its turn in the chat's send limit:
// a flood is slowed to the limit, never dropped, and the waiting ends with
// the caller's context.
func TestSendKeepsToTheChatLimit(t *testing.T) {
	c := newPaired(t, nil)
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	synctest.Test(t, func(t *testing.T) {
		c.limit = channel.NewSendLimit(20, 5)
		start := time.Now()
		var sent []time.Duration
		c.send = func(ctx context.Context, to types.JID, msg *waE2E.Message) (whatsmeow.SendResponse, error) {
			sent = append(sent, time.Since(start))
			return whatsmeow.SendResponse{ID: fmt.Sprint("id", len(sent))}, nil
		}
		ctx := context.Background()
		for i := range 6 {
			if _, err := c.Send(ctx, bobPN.String(), fmt.Sprint("message ", i)); err != nil {
				t.Fatal(err)
			}
		}
		// A long text is several WhatsApp messages: each part takes a turn.
		ids, err := c.Send(ctx, bobPN.String(), strings.Repeat("word ", MaxMessageRunes/5+10))
		if err != nil || len(ids) != 2 {
			t.Fatalf("long text: %v, %v", ids, err)
		}
		want := []time.Duration{0, 0, 0, 0, 0, 3 * time.Second, 6 * time.Second, 9 * time.Second}
		if !slices.Equal(sent, want) {
			t.Errorf("parts went at %v, want %v", sent, want)
		}
		if err := c.CheckSend(bobPN.String()); err == nil {
			t.Error("CheckSend: no limit reported after the flood")
		}
		// Another chat has its own budget.
		before := time.Now()
		if _, err := c.Send(ctx, ownPN.String(), "hi me"); err != nil || time.Since(before) != 0 {
			t.Errorf("another chat waited %s (%v)", time.Since(before), err)
		}
		// A caller that stops waiting gets an error, and nothing is sent.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		n := len(sent)
		if _, err := c.Send(cctx, bobPN.String(), "one more"); !errors.Is(err, context.DeadlineExceeded) || len(sent) != n {
			t.Errorf("Send with a short deadline = %v, sent %d more", err, len(sent)-n)
		}
	})
}
