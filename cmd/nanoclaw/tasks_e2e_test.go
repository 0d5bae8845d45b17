package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
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
	if out := ask("beta", "list please"); strings.Contains(out, "remind-marker") || !strings.Contains(out, "done: []") {
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
		sent, _ := st.SentTo(context.Background(), "local:alpha")
		fired := false
		for _, o := range sent {
			fired = fired || o.Content == "Andy: TASK-FIRED"
		}
		runs, _ := st.TaskRuns(context.Background(), taskID, 10)
		if fired && len(runs) > 0 { // send_message comes mid-run; the run is logged at its end
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task's message never reached alpha's chat\n%s", w.d.raw.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tasks, _ := st.ListTasks(context.Background(), "")
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
