package tools

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/router"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// limitedChannel sends through a SendLimit, as the WhatsApp channel does.
type limitedChannel struct {
	fakeChannel
	limit *channel.SendLimit
}

func (c *limitedChannel) Send(ctx context.Context, jid, text string) ([]string, error) {
	if err := c.limit.Wait(ctx, jid); err != nil {
		return nil, err
	}
	return c.fakeChannel.Send(ctx, jid, text)
}

func (c *limitedChannel) CheckSend(jid string) error { return c.limit.Check(jid) }

// R9: a non-main agent's send_message beyond the chat's limit is refused
// with an error that tells the model how long to wait, and nothing of it
// is kept to be sent later; a reply at the same moment waits for its turn
// and is sent, never dropped.
func TestSendMessageKeepsToTheChatLimit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	const chat = "120363025246125486@g.us"
	st.PutGroup(ctx, store.Group{Folder: "family", Name: "Family", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()})
	st.BindChat(ctx, chat, "family")
	family := gateway.Caller{Folder: "family"}
	send := json.RawMessage(`{"text":"still working"}`)

	synctest.Test(t, func(t *testing.T) {
		ch := &limitedChannel{limit: channel.NewSendLimit(20, 5)}
		chats := router.NewChannels(st, "Andy", nil)
		chats.Add(ch)
		r := New(Options{Store: st, Chats: chats, AssistantName: "Andy"})
		for i := range 5 {
			if _, err := r.Call(ctx, family, "send_message", send); err != nil {
				t.Fatalf("send_message %d of the burst: %v", i+1, err)
			}
		}
		_, err := r.Call(ctx, family, "send_message", send)
		if err == nil || !strings.Contains(err.Error(), "(20 messages a minute, 5 at once) is reached: wait 3s before sending again") {
			t.Fatalf("send_message over the limit: %v", err)
		}
		if n := len(ch.Texts()); n != 5 {
			t.Errorf("%d messages sent, want the burst of 5", n)
		}
		if unsent, _ := st.Unsent(ctx); len(unsent) != 0 {
			t.Errorf("the refused message was kept to be sent later: %+v", unsent)
		}

		// A reply is not refused: it waits for the chat's next turn.
		start := time.Now()
		reply := store.NewOutgoing(chat, "family", "Andy: the answer")
		if err := st.Enqueue(ctx, reply); err != nil {
			t.Fatal(err)
		}
		if !chats.Deliver(ctx, reply) || time.Since(start) != 3*time.Second {
			t.Errorf("the reply was not delivered after its 3 s wait (waited %s)", time.Since(start))
		}
		// Once its turn has come, send_message works again.
		time.Sleep(3 * time.Second)
		if _, err := r.Call(ctx, family, "send_message", send); err != nil {
			t.Errorf("send_message after waiting: %v", err)
		}
		if n := len(ch.Texts()); n != 7 {
			t.Errorf("%d messages sent, want 7", n)
		}
	})
}
