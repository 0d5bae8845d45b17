package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// terminal is a channel that shows progress, as the local one does: it
// records what is sent and how each run ended.
type terminal struct {
	fakeChannel
	mu   sync.Mutex
	done []error
}

func (c *terminal) RunDone(_ string, _ int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = append(c.done, err)
}

func (c *terminal) ends() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.done)
}

// startWith runs a router for main (chat local:main) whose only channel is
// ch and whose agents fail to start with fail.
func startWith(t *testing.T, ch channel.Channel, fail error) (*Router, *store.Store, *fakeAgents) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.PutGroup(ctx, store.Group{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()})
	st.BindChat(ctx, "local:main", "main")
	agents := newFakeAgents()
	agents.fail = fail
	chats := NewChannels(st, "Andy", nil)
	chats.Add(ch)
	r := New(Options{Store: st, Agents: agents, AssistantName: "Andy", MaxConcurrent: 3, IdleTimeout: time.Minute,
		Caps: Caps{MaxMessages: 50, MaxBytes: 32 << 10, MaxMessageBytes: 4096}, Channels: chats})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return r, st, agents
}

func say(t *testing.T, r *Router, ch channel.Channel, id, text string) int64 {
	t.Helper()
	stored, err := r.OnMessage(context.Background(), ch, channel.Message{ChatJID: "local:main", ID: id,
		Sender: "me", SenderName: "Me", Text: text, Timestamp: time.Now()})
	if err != nil || !stored.WillAnswer {
		t.Fatalf("OnMessage(%q) = %+v, %v", text, stored, err)
	}
	return stored.Seq
}

// Without a credential the owner's terminal gets the one line that says how
// to add one, as a reply, and the wait ends; the messages stay unanswered,
// so the first run with a credential answers them.
func TestNoCredentialTellsTheTerminalAndKeepsTheMessages(t *testing.T) {
	ctx := context.Background()
	term := &terminal{}
	r, st, agents := startWith(t, term, fmt.Errorf("start agent: %w", agent.ErrNoCredential))
	first := say(t, r, term, "m1", "hello")
	waitFor(t, "the run's end", func() bool { return len(term.ends()) == 1 })
	if sent := term.Texts(); !slices.Equal(sent, []string{agent.ErrNoCredential.Error()}) {
		t.Errorf("sent %q, want the credential line alone", sent)
	}
	if err := term.ends()[0]; !errors.Is(err, errAwaitsCredential) {
		t.Errorf("the run ended with %v, want %v", err, errAwaitsCredential)
	}
	if cur, err := st.Cursor(ctx, "local:main"); err != nil || cur != 0 {
		t.Errorf("cursor = %d, %v: the message is not answered, the cursor must stay", cur, err)
	}
	waitFor(t, "main idle", func() bool { _, busy := r.States()["main"]; return !busy })

	agents.fail = nil // the owner added a credential
	second := say(t, r, term, "m2", "are you there?")
	waitFor(t, "the answer", func() bool { return len(term.ends()) == 2 })
	if err := term.ends()[1]; err != nil {
		t.Fatalf("the run with a credential failed: %v", err)
	}
	if cur, err := st.Cursor(ctx, "local:main"); err != nil || cur != second || second <= first {
		t.Errorf("cursor = %d, %v; want %d, past both messages", cur, err, second)
	}
	if sent := term.Texts(); len(sent) != 2 || sent[1] != "Andy: ok" {
		t.Errorf("sent %q", sent)
	}
}

// A channel that shows no progress (WhatsApp) is told nothing; a terminal
// is told any other start failure as it was.
func TestOtherChannelsAndOtherFailuresAreNotToldTheCredentialLine(t *testing.T) {
	plain := &fakeChannel{}
	r, st, _ := startWith(t, plain, agent.ErrNoCredential)
	say(t, r, plain, "w1", "hello")
	waitFor(t, "the failed start", func() bool {
		ks, _ := kinds(t, st, "main")
		return slices.Contains(ks, store.EventFailed)
	})
	waitFor(t, "main idle", func() bool { _, busy := r.States()["main"]; return !busy })
	if sent := plain.Texts(); len(sent) != 0 {
		t.Errorf("a channel without a terminal was sent %q", sent)
	}

	term := &terminal{}
	noImage := errors.New("start agent: image localhost/nanoclaw-agent:latest is missing: run 'nanoclaw image build'")
	r, _, _ = startWith(t, term, noImage)
	say(t, r, term, "t1", "hello")
	waitFor(t, "the run's end", func() bool { return len(term.ends()) == 1 })
	if err := term.ends()[0]; err != noImage {
		t.Errorf("the run ended with %v, want %v", err, noImage)
	}
	if sent := term.Texts(); len(sent) != 0 {
		t.Errorf("sent %q for a failure that is not the credential's", sent)
	}
}
