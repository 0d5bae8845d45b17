package router

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A flood of 5 000 waiting messages in one chat becomes one prompt within
// both caps, with a note of what was left out (finding 9).
func TestCatchUpOfAFloodStaysWithinCaps(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	g := store.Group{Folder: "flood", Name: "Flood", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()}
	if err := st.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	const chat = "local:flood"
	if err := st.BindChat(ctx, chat, "flood"); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for i := range 5000 {
		text := fmt.Sprintf("message %d %s", i, strings.Repeat("x", i%300))
		if i == 4999 {
			text = "@Andy summarise please"
		}
		if _, _, err := st.AddMessage(ctx, store.Message{ChatJID: chat, ID: fmt.Sprint(i), Sender: "u", SenderName: "User",
			Content: text, Timestamp: at}); err != nil {
			t.Fatal(err)
		}
	}
	caps := Caps{MaxMessages: 50, MaxBytes: 32 << 10, MaxMessageBytes: 4096}
	r := New(Options{Store: st, Caps: caps, MaxConcurrent: 1})
	work, err := r.pending(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(work) != 1 {
		t.Fatalf("%d chats with work, want 1", len(work))
	}
	p := work[0].prompt
	if len(p.Text) > caps.MaxBytes || p.Kept > caps.MaxMessages {
		t.Errorf("prompt of %d bytes and %d messages is over the caps", len(p.Text), p.Kept)
	}
	if p.Kept+p.Omitted != 5000 || !strings.HasPrefix(p.Text, fmt.Sprintf("[%d older messages were left out", p.Omitted)) {
		t.Errorf("kept %d, omitted %d, note: %.80q", p.Kept, p.Omitted, p.Text)
	}
	if !strings.Contains(p.Text, "@Andy summarise please</message>\n</messages>") {
		t.Error("the newest (triggering) message is not the last in the prompt")
	}
	latest, _ := st.LatestSeq(ctx, chat)
	if work[0].upTo != latest {
		t.Errorf("the prompt covers up to %d, want the newest message %d", work[0].upTo, latest)
	}
}

func TestUntriggeredMessagesWaitForTheTrigger(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	g := store.Group{Folder: "quiet", Name: "Quiet", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()}
	st.PutGroup(ctx, g)
	st.BindChat(ctx, "local:quiet", "quiet")
	r := New(Options{Store: st, Caps: Caps{MaxMessages: 50, MaxBytes: 1 << 20, MaxMessageBytes: 4096}, MaxConcurrent: 1})
	st.AddMessage(ctx, store.Message{ChatJID: "local:quiet", ID: "1", Sender: "u", SenderName: "U", Content: "hey @Andy", Timestamp: time.Now()})
	if work, _ := r.pending(ctx, g); len(work) != 0 {
		t.Fatalf("a message without the trigger at its start made work: %+v", work)
	}
	st.AddMessage(ctx, store.Message{ChatJID: "local:quiet", ID: "2", Sender: "u", SenderName: "U", Content: "@andy now", Timestamp: time.Now()})
	work, _ := r.pending(ctx, g)
	if len(work) != 1 || !strings.Contains(work[0].prompt.Text, "hey @Andy") {
		t.Fatalf("the trigger should bring the earlier message along: %+v", work)
	}
	// The assistant's own messages never come back as input.
	st.AddMessage(ctx, store.Message{ChatJID: "local:quiet", ID: "3", Sender: "Andy", SenderName: "Andy", Content: "Andy: @Andy loop?", Timestamp: time.Now(), FromMe: true, IsBot: true})
	work, _ = r.pending(ctx, g)
	if strings.Contains(work[0].prompt.Text, "loop?") {
		t.Error("the assistant's own message became input")
	}
}
