package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestOutboxAnswerSendEcho(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	const chat = "local:family"
	seq, _, err := s.AddMessage(ctx, Message{ChatJID: chat, ID: "m1", Sender: "bob", SenderName: "Bob", Content: "@Andy hi", Timestamp: time.Now()})
	if err != nil {
		t.Fatal(err)
	}

	reply := NewOutgoing(chat, "family", "Andy: hello")
	if err := s.AnswerChat(ctx, chat, seq, &reply); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Cursor(ctx, chat); c != seq {
		t.Errorf("cursor %d, want %d", c, seq)
	}
	unsent, err := s.Unsent(ctx)
	if err != nil || len(unsent) != 1 || unsent[0].ID != reply.ID || unsent[0].Content != "Andy: hello" {
		t.Fatalf("unsent = %+v, %v", unsent, err)
	}

	if err := s.MarkSent(ctx, reply, []string{"wa-1"}, "Andy"); err != nil {
		t.Fatal(err)
	}
	if unsent, _ := s.Unsent(ctx); len(unsent) != 0 {
		t.Errorf("still unsent after MarkSent: %+v", unsent)
	}
	if err := s.MarkSent(ctx, reply, []string{"wa-1"}, "Andy"); err == nil {
		t.Error("marking the same message sent twice was accepted")
	}
	// The channel echoes our own message back: a duplicate, never input.
	_, inserted, err := s.AddMessage(ctx, Message{ChatJID: chat, ID: "wa-1", Sender: "me", SenderName: "me", Content: "Andy: hello", Timestamp: time.Now(), FromMe: true})
	if err != nil || inserted {
		t.Errorf("echo inserted=%v err=%v; want a duplicate", inserted, err)
	}
	msgs := messagesOf(t, s, chat)
	if len(msgs) != 2 || msgs[0].Seq != seq || !msgs[1].IsBot {
		t.Errorf("after the reply: %+v, want one bot message", msgs)
	}
	if sent := sentTo(t, s, chat); len(sent) != 1 || sent[0].SentAt == nil {
		t.Errorf("sent = %+v", sent)
	}
	if strings.Contains(logs.String(), "skipping") {
		t.Errorf("unexpected bad rows: %s", logs)
	}
}

func TestAnswerChatIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	const chat = "local:family"
	bad := NewOutgoing(chat, "../evil", "x") // invalid folder: nothing may change
	if err := s.AnswerChat(ctx, chat, 42, &bad); err == nil {
		t.Fatal("an invalid reply was accepted")
	}
	if c, _ := s.Cursor(ctx, chat); c != 0 {
		t.Errorf("cursor moved to %d although the reply was refused", c)
	}
	if err := s.AnswerChat(ctx, chat, 10, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AnswerChat(ctx, chat, 5, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Cursor(ctx, chat); c != 10 {
		t.Errorf("cursor %d, want 10 (never backwards)", c)
	}
}
