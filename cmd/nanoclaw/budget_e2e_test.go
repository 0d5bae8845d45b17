package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Through the real daemon, Claude Code and the fake model: a budget of a
// few hundred tokens lets the group's first run finish (the call that
// crosses it completes) and stops its second with the documented
// message, while another group keeps working; the group's chat is told
// once that it pauses, the owner once in main which budget it was; and a
// scheduled task of the group is skipped, logged, not run.
func TestBudgetStopsAGroupNotTheOthers(t *testing.T) {
	w := newWorld(t, "podman")
	w.register("family", true)
	w.register("work", true)
	// A task of family, due once the first run has spent the budget.
	due := time.Now().Add(25 * time.Second)
	func() {
		st, err := store.Open(context.Background(), filepath.Join(w.home, ".nanoclaw", "store", "nanoclaw.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.CreateTaskWithin(context.Background(), store.Task{ID: "digest", Folder: "family", ChatJID: "local:family",
			Prompt: "send the digest", ScheduleType: store.ScheduleOnce, ScheduleValue: due.UTC().Format(time.RFC3339), Timezone: "UTC",
			ContextMode: store.ContextIsolated, Status: store.TaskActive, NextRun: &due, CreatedAt: time.Now()}, store.TaskCaps{}); err != nil {
			t.Fatal(err)
		}
	}()
	w.start()
	defer w.stop()
	if out, errOut, code := w.nanoclaw("groups", "set", "family", "day_tokens=300"); code != 0 {
		t.Fatalf("groups set day_tokens: %d %s%s", code, out, errOut)
	}

	w.fake.Script(fakeapi.Text("first answer"))
	out, errOut, code := w.nanoclaw("send", "--group", "family", "--sender", "Bob", "--wait", "@Andy hello")
	if code != 0 || !strings.Contains(out, "Andy: first answer") {
		t.Fatalf("the run that crosses the budget: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	before := len(w.fake.MainRequests())
	out, errOut, _ = w.nanoclaw("send", "--group", "family", "--sender", "Bob", "--wait", "@Andy again")
	if strings.Contains(out, "Andy: first answer") || !strings.Contains(out+errOut, "group family's daily budget of 300 tokens is reached") {
		t.Errorf("the second run of family:\nstdout: %s\nstderr: %s", out, errOut)
	}
	if n := len(w.fake.MainRequests()); n != before {
		t.Errorf("%d model calls of family went upstream over its budget", n-before)
	}

	w.fake.Script(fakeapi.Text("work goes on"))
	if out, errOut, code := w.nanoclaw("send", "--group", "work", "--sender", "Ann", "--wait", "@Andy status?"); code != 0 || !strings.Contains(out, "Andy: work goes on") {
		t.Fatalf("another group: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// The task's due time passes: skipped, logged, no model call.
	calls := len(w.fake.MainRequests())
	var runs []store.TaskRun
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		st, err := store.Open(context.Background(), filepath.Join(w.home, ".nanoclaw", "store", "nanoclaw.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		runs, _ = st.TaskRuns(context.Background(), "digest", 0)
		st.Close()
		if len(runs) > 0 {
			break
		}
		time.Sleep(time.Second)
	}
	if len(runs) != 1 || runs[0].Status != store.RunSkipped || !strings.Contains(runs[0].Error, "budget") {
		t.Errorf("the task's runs: %+v", runs)
	}
	if n := len(w.fake.MainRequests()); n != calls {
		t.Errorf("the over-budget group's task made %d model calls", n-calls)
	}

	// Told once: the group's chat that it pauses, the owner in main which
	// budget.
	st, err := store.Open(context.Background(), filepath.Join(w.home, ".nanoclaw", "store", "nanoclaw.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for chat, text := range map[string]string{
		"local:family": "I have used this chat's model budget for now",
		"local:main":   "group family's daily budget of 300 tokens is reached",
	} {
		var n int
		for _, o := range sentTexts(t, st, chat) {
			if strings.Contains(o, text) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s was told %d times %q, want once", chat, n, text)
		}
	}
}

// sentTexts are the assistant's messages sent to chat.
func sentTexts(t *testing.T, st *store.Store, chat string) []string {
	t.Helper()
	rows, err := st.DB().Query(`SELECT content FROM outbox WHERE chat_jid = ? AND sent_at IS NOT NULL`, chat)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}
