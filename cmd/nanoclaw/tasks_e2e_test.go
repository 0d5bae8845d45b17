package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// taskModel is a fake model that reacts to what it is asked: it schedules,
// lists and inspects tasks through the real MCP tools, and answers every
// tool result with "done: <the result>", so replies show the host's answers.
func taskModel(due time.Time, foreignID *string) fakeapi.Turn {
	return fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
		if res := r.ToolResults(); len(res) > 0 {
			return fakeapi.Text("done: " + res[0].Content)
		}
		text := r.LastUserText()
		switch {
		case strings.Contains(text, "[Scheduled task"):
			return fakeapi.ToolUse("mcp__nanoclaw__send_message", map[string]any{"text": "TASK-FIRED"})
		case strings.Contains(text, "please schedule"):
			return fakeapi.ToolUse("mcp__nanoclaw__schedule_task", map[string]any{
				"prompt": "remind-marker: water the plants", "schedule_type": "once",
				"schedule_value": due.Format(time.RFC3339), "context_mode": "group"})
		case strings.Contains(text, "bad cron"):
			return fakeapi.ToolUse("mcp__nanoclaw__schedule_task", map[string]any{
				"prompt": "never", "schedule_type": "cron", "schedule_value": "* * *"})
		case strings.Contains(text, "bad mode"):
			return fakeapi.ToolUse("mcp__nanoclaw__schedule_task", map[string]any{
				"prompt": "never", "schedule_type": "interval", "schedule_value": "3600000", "context_mode": "sideways"})
		case strings.Contains(text, "past once"):
			return fakeapi.ToolUse("mcp__nanoclaw__schedule_task", map[string]any{
				"prompt": "never", "schedule_type": "once", "schedule_value": "2020-01-01T00:00:00"})
		case strings.Contains(text, "steal"):
			return fakeapi.ToolUse("mcp__nanoclaw__cancel_task", map[string]any{"task_id": *foreignID})
		case strings.Contains(text, "list please"):
			return fakeapi.ToolUse("mcp__nanoclaw__list_tasks", map[string]any{})
		}
		return fakeapi.Text("hello")
	})
}

func TestScheduledTaskRunsOnTimeInItsGroup(t *testing.T) {
	w := newWorld(t, "podman", "IDLE_TIMEOUT=3s")
	w.register("alpha", false)
	w.register("beta", false)
	due := time.Now().Add(12 * time.Second).Truncate(time.Second)
	var taskID string
	turns := make([]fakeapi.Turn, 200)
	for i := range turns {
		turns[i] = taskModel(due, &taskID)
	}
	w.fake.Script(turns...)
	w.start()

	ask := func(group, text string) string {
		t.Helper()
		out, errOut, code := w.nanoclaw("send", "--group", group, "--wait=2m", text)
		if code != 0 {
			t.Fatalf("send to %s: exit %d: %s", group, code, errOut)
		}
		return out
	}
	out := ask("alpha", "please schedule a reminder")
	var info struct {
		ID     string `json:"id"`
		Group  string `json:"group"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Andy: done:"))), &info); err != nil || info.Group != "alpha" || info.Status != "active" {
		t.Fatalf("schedule_task answered %q (%v)", out, err)
	}
	taskID = info.ID

	// Another non-main group does not see it, and cannot touch it.
	if out := ask("beta", "list please"); strings.Contains(out, "remind-marker") || !strings.Contains(out, `done: {"tasks":[]}`) {
		t.Errorf("beta's list_tasks shows alpha's task: %q", out)
	}
	if out := ask("beta", "steal it"); !strings.Contains(out, `task "`+taskID+`" not found`) {
		t.Errorf("beta cancelling alpha's task: %q, want not found", out)
	}
	// Main sees every group's tasks.
	if out := ask("main", "list please"); !strings.Contains(out, "remind-marker") {
		t.Errorf("main's list_tasks does not show the task: %q", out)
	}
	// Invalid values come back as tool errors, and nothing is stored. (Asked
	// in beta, so alpha is free when its task comes due.)
	for text, want := range map[string]string{"bad cron": "5 fields", "bad mode": "context", "past once": "past"} {
		if out := ask("beta", text); !strings.Contains(out, want) {
			t.Errorf("%s: %q, want an error mentioning %q", text, out, want)
		}
	}

	// At its time the task runs in alpha's container, and its send_message
	// reaches alpha's chat.
	st := w.openStore()
	defer st.Close()
	deadline := due.Add(30 * time.Second)
	for {
		fired := slices.Contains(sentTo(t, st, "local:alpha"), "Andy: TASK-FIRED")
		runs, _ := st.TaskRuns(context.Background(), taskID, 10)
		if fired && len(runs) > 0 { // send_message comes mid-run; the run is logged at its end
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task's message never reached alpha's chat\n%s", w.d.raw.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tasks, _, _ := st.ListTasksPage(context.Background(), store.TaskQuery{Finished: true, Limit: 1000})
	if len(tasks) != 1 {
		t.Fatalf("%d tasks stored, want 1 (the invalid ones must not be): %+v", len(tasks), tasks)
	}
	if tasks[0].Status != "completed" {
		t.Errorf("the once task is %s after its run, want completed", tasks[0].Status)
	}
	runs, _ := st.TaskRuns(context.Background(), taskID, 10)
	if len(runs) != 1 || runs[0].Status != "success" {
		t.Fatalf("runs %+v, want one success", runs)
	}
	if late := runs[0].StartedAt.Sub(due); late < 0 || late > time.Second {
		t.Errorf("the task started %v after its time, want at most 1s", late)
	}
	t.Logf("task started %v after its due time", runs[0].StartedAt.Sub(due))

	// The CLI, through the daemon, then on the database with the daemon down.
	out, errOut, code := w.nanoclaw("tasks", "show", taskID)
	if code != 0 || !strings.Contains(out, "status:    completed") || !strings.Contains(out, "success") {
		t.Errorf("tasks show: exit %d\n%s%s", code, out, errOut)
	}
	w.stop()
	out, errOut, code = w.nanoclaw("tasks", "list", "--all")
	if code != 0 || !strings.Contains(out, taskID) || !strings.Contains(errOut, "not running") {
		t.Errorf("tasks list with the daemon down: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := w.nanoclaw("tasks", "pause", "nosuchtask"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("tasks pause of an unknown id: exit %d, %s", code, errOut)
	}
}

// R9 end to end: a non-main group's agent — the real Claude Code, scripted
// by the fake model — asks for an every-minute task (as an interval and as a
// cron expression) and for more tasks than its cap. Each refusal reaches the
// model word for word as an error tool result, and nothing is stored.
func TestNonMainGroupTaskLimitsReachTheModel(t *testing.T) {
	w := newWorld(t, "podman", "IDLE_TIMEOUT=3s", "TASK_MAX_ACTIVE=2")
	w.register("alpha", false)
	model := fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
		if res := r.ToolResults(); len(res) > 0 {
			return fakeapi.Text("done: " + res[0].Content)
		}
		args := map[string]any{"prompt": "limit-marker", "schedule_type": "interval", "schedule_value": "3600000", "context_mode": "isolated"}
		text := r.LastUserText()
		switch {
		case strings.Contains(text, "every minute"):
			args["schedule_value"] = "60000"
		case strings.Contains(text, "cron minute"):
			args["schedule_type"], args["schedule_value"] = "cron", "* * * * *"
		case !strings.Contains(text, "hourly"):
			return fakeapi.Text("hello")
		}
		return fakeapi.ToolUse("mcp__nanoclaw__schedule_task", args)
	})
	turns := make([]fakeapi.Turn, 40)
	for i := range turns {
		turns[i] = model
	}
	w.fake.Script(turns...)
	w.start()

	const hint = "the nanoclaw config file (~/.config/nanoclaw/config, KEY=VALUE lines), then restart nanoclaw"
	tooOften := ". A non-main group's tasks may run at most every 5m0s (TASK_MIN_INTERVAL=5m0s): choose a longer interval, or ask the owner to lower TASK_MIN_INTERVAL in " + hint
	for _, tc := range []struct{ ask, want string }{
		{"every minute please", "not scheduled: interval must be at least 300000 ms (5m0s), got 60000" + tooOften},
		{"cron minute please", `not scheduled: cron expression "* * * * *" runs as often as every 1m0s; the shortest allowed interval is 5m0s` + tooOften},
		{"hourly one", ""},
		{"hourly two", ""},
		{"hourly three", "not scheduled: group alpha already has 2 scheduled tasks (active, paused, or with a run waiting or running), the most a non-main group's agent may schedule (TASK_MAX_ACTIVE=2). " +
			"Cancel a task that is no longer needed (cancel_task), or ask the owner to raise TASK_MAX_ACTIVE in " + hint},
	} {
		before := len(w.fake.MainRequests())
		out, errOut, code := w.nanoclaw("send", "--group", "alpha", "--wait=2m", tc.ask)
		if code != 0 {
			t.Fatalf("send %q: exit %d: %s", tc.ask, code, errOut)
		}
		// The tool result Claude Code sent back to the model.
		var results []fakeapi.ToolResult
		for _, r := range w.fake.MainRequests()[before:] {
			results = append(results, r.ToolResults()...)
		}
		if len(results) != 1 {
			t.Fatalf("%q: %d tool results reached the model, want 1\n%s", tc.ask, len(results), w.fake.Summary())
		}
		res := results[0]
		if tc.want == "" {
			if res.IsError || !strings.Contains(res.Content, `"status":"active"`) {
				t.Errorf("%q: tool result %+v, want the scheduled task", tc.ask, res)
			}
			continue
		}
		if !res.IsError || !strings.Contains(res.Content, tc.want) {
			t.Errorf("%q: the model got\n  %q (error %v)\nwant the host's refusal\n  %q", tc.ask, res.Content, res.IsError, tc.want)
		}
		if !strings.Contains(out, "not scheduled") {
			t.Errorf("%q: the reply does not pass the refusal on: %q", tc.ask, out)
		}
	}
	st := w.openStore()
	defer st.Close()
	if tasks, _, _ := st.ListTasksPage(context.Background(), store.TaskQuery{Folder: "alpha", Finished: true, Limit: 1000}); len(tasks) != 2 {
		t.Errorf("%d tasks stored for alpha, want the 2 within its cap", len(tasks))
	}
}

// sentTo returns the texts sent to chat, oldest first, as the outbox
// recorded them.
func sentTo(t *testing.T, st *store.Store, chat string) []string {
	t.Helper()
	rows, err := st.DB().Query(`SELECT content FROM outbox WHERE chat_jid = ? AND sent_at IS NOT NULL ORDER BY sent_at, rowid`, chat)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sent []string
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, text)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sent
}
