package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// routerWorld is a router on a real store with fake agents and a fake channel.
type routerWorld struct {
	st     *store.Store
	r      *Router
	agents *fakeAgents
	ch     *fakeChannel
	cancel context.CancelFunc
	n      int
}

func newRouterWorld(t testing.TB, idle time.Duration) *routerWorld {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir()+"/db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st.PutGroup(ctx, store.Group{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()})
	st.BindChat(ctx, "local:main", "main")
	w := &routerWorld{st: st, agents: newFakeAgents(), ch: &fakeChannel{}}
	chats := NewChannels(st, "Andy", nil)
	chats.Add(w.ch)
	w.r = New(Options{Store: st, Agents: w.agents, AssistantName: "Andy", MaxConcurrent: 3, IdleTimeout: idle,
		Caps: Caps{MaxMessages: 50, MaxBytes: 32 << 10, MaxMessageBytes: 4096}, Channels: chats})
	runCtx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	done := make(chan struct{})
	go func() { w.r.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return w
}

func (w *routerWorld) say(text string) {
	w.n++
	w.r.OnMessage(context.Background(), w.ch, channel.Message{ChatJID: "local:main", ID: fmt.Sprint("in", w.n),
		Sender: "me", SenderName: "Me", Text: text, Timestamp: time.Now()})
}

func TestFollowUpsGoIntoTheWarmAgent(t *testing.T) {
	w := newRouterWorld(t, time.Minute)
	w.say("first")
	<-w.agents.prompt
	w.say("second")
	<-w.agents.prompt
	if n := w.agents.starts.Load(); n != 1 {
		t.Errorf("%d agent starts for two messages to a warm group, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sent := w.ch.Texts()
		if len(sent) == 2 && sent[0] == "Andy: ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replies sent: %+v", sent)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkRouteCold: inbound message → agent start, for an idle group.
// BenchmarkRouteWarm: inbound message → prompt into the warm agent.
// Both are routing alone (store, trigger, queue, prompt): no container.
func BenchmarkRouteCold(b *testing.B) {
	w := newRouterWorld(b, time.Nanosecond) // the agent closes at once: every message is cold
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		w.say("hello")
		total += (<-w.agents.started).Sub(start)
		<-w.agents.prompt
		<-w.agents.closed // the group's worker idled out
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-start")
}

func BenchmarkRouteWarm(b *testing.B) {
	w := newRouterWorld(b, time.Hour)
	w.say("warm up")
	<-w.agents.prompt
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		w.say("hello")
		total += (<-w.agents.prompt).Sub(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-prompt")
}

// BenchmarkStoreMessages: inbound messages stored per second (the real
// store, a registered chat, through the router's OnMessage).
func BenchmarkStoreMessages(b *testing.B) {
	st, err := store.Open(context.Background(), b.TempDir()+"/db", store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	st.PutGroup(ctx, store.Group{Folder: "quiet", Name: "Q", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()})
	st.BindChat(ctx, "local:quiet", "quiet")
	r := New(Options{Store: st, Agents: newFakeAgents(), AssistantName: "Andy", MaxConcurrent: 1})
	ch := &fakeChannel{}
	i := 0
	start := time.Now()
	for b.Loop() {
		i++
		if _, err := r.OnMessage(ctx, ch, channel.Message{ChatJID: "local:quiet", ID: fmt.Sprint(i), Sender: "u", SenderName: "U",
			Text: "just chatting, no trigger", Timestamp: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
