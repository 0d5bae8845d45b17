package router

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// kinds are the kinds of the events of folder, oldest first.
func kinds(t *testing.T, st *store.Store, folder string) ([]store.EventKind, []store.Event) {
	t.Helper()
	evs, err := st.Events(context.Background(), folder, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ks []store.EventKind
	for _, e := range evs {
		ks = append(ks, e.Kind)
	}
	return ks, evs
}

// waitFor polls cond for a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The trace says, step by step, what became of a message: answered in main
// (and the group stays warm), kept as context without the trigger, or
// failed with the agent's start error.
func TestTraceTellsWhyAndStatesFollowTheWorker(t *testing.T) {
	ctx := context.Background()
	w := newRouterWorld(t, time.Minute)
	w.say("hello")
	want := []store.EventKind{store.EventStored, store.EventQueued, store.EventStarted, store.EventPrompted, store.EventReplied}
	waitFor(t, "main's trace", func() bool { ks, _ := kinds(t, w.st, "main"); return slices.Equal(ks, want) })
	waitFor(t, "main warm", func() bool { return w.r.States()["main"].State == StateWarm })
	if _, evs := kinds(t, w.st, "main"); evs[0].Detail != "from Me <me>" || evs[0].Seq == 0 || !strings.Contains(evs[4].Detail, "delivered") {
		t.Errorf("trace details: %+v", evs)
	}
	if running, limit, waiting := w.r.Load(); running != 1 || limit != 3 || len(waiting) != 0 {
		t.Errorf("Load = %d, %d, %v", running, limit, waiting)
	}

	w.st.PutGroup(ctx, store.Group{Folder: "quiet", Name: "Quiet", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()})
	w.st.BindChat(ctx, "local:quiet", "quiet")
	if st, _ := w.r.OnMessage(ctx, w.ch, channel.Message{ChatJID: "local:quiet", ID: "q1", Sender: "u", Text: "hi all", Timestamp: time.Now()}); st.WillAnswer {
		t.Fatal("an untriggered message will be answered")
	}
	ks, evs := kinds(t, w.st, "quiet")
	if !slices.Equal(ks, []store.EventKind{store.EventStored, store.EventIgnored}) || !strings.Contains(evs[1].Detail, "starts with @Andy") {
		t.Fatalf("untriggered message's trace: %+v", evs)
	}
	if _, busy := w.r.States()["quiet"]; busy {
		t.Error("a group with nothing to answer is not idle")
	}

	w.agents.fail = errors.New("no image localhost/nanoclaw-agent")
	w.r.OnMessage(ctx, w.ch, channel.Message{ChatJID: "local:quiet", ID: "q2", Sender: "u", Text: "@Andy help", Timestamp: time.Now()})
	waitFor(t, "the failed start in the trace", func() bool { ks, _ := kinds(t, w.st, "quiet"); return slices.Contains(ks, store.EventFailed) })
	_, evs = kinds(t, w.st, "quiet")
	if last := evs[len(evs)-1]; !strings.Contains(last.Detail, "cannot start the agent: no image") {
		t.Errorf("failure detail = %q", last.Detail)
	}
	waitFor(t, "quiet idle again", func() bool { _, busy := w.r.States()["quiet"]; return !busy })
}
