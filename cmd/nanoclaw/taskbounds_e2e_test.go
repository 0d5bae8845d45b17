package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// R9 end to end, the second review's task findings: a non-main group's
// agent — the real Claude Code, scripted by the fake model — schedules a
// reminder in a minute (fine), then a second once task two seconds after
// it, which the host refuses in words that reach the model; and its
// list_tasks answer is the bounded one: an object with the tasks, each
// prompt cut short.
func TestNonMainOnceTasksSpacedAndListBounded(t *testing.T) {
	w := newWorld(t, "podman", "IDLE_TIMEOUT=3s", "TASK_MIN_INTERVAL=5m")
	w.register("alpha", false)
	due := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	long := strings.Repeat("long prompt ", 1000)
	model := fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
		if res := r.ToolResults(); len(res) > 0 {
			return fakeapi.Text("done: " + res[0].Content)
		}
		once := map[string]any{"prompt": "once-marker", "schedule_type": "once", "context_mode": "isolated"}
		switch text := r.LastUserText(); {
		case strings.Contains(text, "remind me soon"):
			once["schedule_value"] = due.Format(time.RFC3339)
		case strings.Contains(text, "remind me again"):
			once["schedule_value"] = due.Add(2 * time.Second).Format(time.RFC3339)
		case strings.Contains(text, "hourly long"):
			return fakeapi.ToolUse("mcp__nanoclaw__schedule_task", map[string]any{
				"prompt": long, "schedule_type": "interval", "schedule_value": "3600000", "context_mode": "isolated"})
		case strings.Contains(text, "list please"):
			return fakeapi.ToolUse("mcp__nanoclaw__list_tasks", map[string]any{})
		default:
			return fakeapi.Text("hello")
		}
		return fakeapi.ToolUse("mcp__nanoclaw__schedule_task", once)
	})
	turns := make([]fakeapi.Turn, 40)
	for i := range turns {
		turns[i] = model
	}
	w.fake.Script(turns...)
	w.start()

	// ask sends text to alpha and returns the one tool result the model got.
	ask := func(text string) fakeapi.ToolResult {
		t.Helper()
		before := len(w.fake.MainRequests())
		if _, errOut, code := w.nanoclaw("send", "--group", "alpha", "--wait=2m", text); code != 0 {
			t.Fatalf("send %q: exit %d: %s", text, code, errOut)
		}
		var results []fakeapi.ToolResult
		for _, r := range w.fake.MainRequests()[before:] {
			results = append(results, r.ToolResults()...)
		}
		if len(results) != 1 {
			t.Fatalf("%q: %d tool results reached the model, want 1\n%s", text, len(results), w.fake.Summary())
		}
		return results[0]
	}
	if res := ask("remind me soon"); res.IsError || !strings.Contains(res.Content, `"status":"active"`) {
		t.Fatalf("a reminder in a minute: %+v", res)
	}
	res := ask("remind me again")
	for _, want := range []string{"not scheduled: once time " + due.Add(2*time.Second).Format(time.RFC3339) + " is less than 5m0s from another once task of group alpha",
		"TASK_MIN_INTERVAL=5m0s", "~/.config/nanoclaw/config"} {
		if !res.IsError || !strings.Contains(res.Content, want) {
			t.Errorf("a second once task 2 s after the first: the model got %q (error %v), want it to say %q", res.Content, res.IsError, want)
		}
	}
	if res := ask("hourly long"); res.IsError {
		t.Fatalf("an hourly task with a long prompt: %+v", res)
	}
	res = ask("list please")
	var list ipc.TaskList
	if err := json.Unmarshal([]byte(res.Content), &list); err != nil || res.IsError {
		t.Fatalf("list_tasks answered %q (%v)", res.Content, err)
	}
	if len(list.Tasks) != 2 || list.More != 0 {
		t.Fatalf("list_tasks: %d tasks, %d more; want the 2 stored", len(list.Tasks), list.More)
	}
	for _, task := range list.Tasks {
		if len(task.Prompt) > ipc.ListPromptBytes {
			t.Errorf("list_tasks gave a prompt of %d bytes, want at most %d", len(task.Prompt), ipc.ListPromptBytes)
		}
	}
	st := w.openStore()
	defer st.Close()
	if tasks, _, _ := st.ListTasksPage(context.Background(), store.TaskQuery{Folder: "alpha", Finished: true, Limit: 1000}); len(tasks) != 2 {
		t.Errorf("%d tasks stored for alpha, want 2", len(tasks))
	}
}
