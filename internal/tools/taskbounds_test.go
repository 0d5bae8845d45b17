package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// list calls list_tasks as who ("main" or a group's folder).
func (w *taskToolWorld) list(who string, args ipc.ListTasksArgs) ipc.TaskList {
	w.t.Helper()
	raw, _ := json.Marshal(args)
	res, err := w.r.Call(context.Background(), gateway.Caller{Folder: who, IsMain: who == "main"}, "list_tasks", raw)
	if err != nil {
		w.t.Fatalf("list_tasks as %s: %v", who, err)
	}
	b, _ := json.Marshal(res)
	var list ipc.TaskList
	if err := json.Unmarshal(b, &list); err != nil {
		w.t.Fatalf("list_tasks answered %s: %v", b, err)
	}
	return list
}

// R9: the second review's memory attack: a non-main group scheduled and
// cancelled 1 500 tasks with 16 KiB prompts (the cap counted only tasks that
// may run), then listed them all, at once, several times: the daemon went
// from 26 MB to 3.57 GB. Now finished tasks are pruned, so the loop keeps a
// bounded number of rows; and list_tasks answers at most
// ipc.ListTasksLimit tasks, active and paused ones unless all are asked
// for, newest first, with prompts cut short and how many more there are.
// get_task still shows a whole prompt.
func TestTaskToolsScheduleCancelLoopStaysBounded(t *testing.T) {
	ctx := context.Background()
	w := newTaskToolWorld(t, TaskLimits{MaxActive: 20, MaxActiveMain: 200, MinInterval: 5 * time.Minute})
	prompt := strings.Repeat("x", 16<<10-4) + "tail"
	hourly := ipc.ScheduleTaskArgs{Prompt: prompt, ScheduleType: "interval", ScheduleValue: "3600000", ContextMode: "isolated"}
	pairs := 1500
	if testing.Short() { // under the race detector: enough to pass every cap
		pairs = 300
	}
	for i := range pairs {
		task, err := w.call("alpha", "schedule_task", hourly)
		if err != nil {
			t.Fatalf("pair %d: schedule: %v", i, err)
		}
		if _, err := w.call("alpha", "cancel_task", ipc.TaskIDArgs{TaskID: task.ID}); err != nil {
			t.Fatalf("pair %d: cancel: %v", i, err)
		}
	}
	all, _, err := w.st.ListTasksPage(ctx, store.TaskQuery{Folder: "alpha", Finished: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) > store.KeepFinishedTasks+1 {
		t.Fatalf("alpha keeps %d tasks after %d schedule/cancel pairs, want at most %d", len(all), pairs, store.KeepFinishedTasks+1)
	}
	if list := w.list("alpha", ipc.ListTasksArgs{}); len(list.Tasks) != 0 || list.More != 0 {
		t.Fatalf("alpha's list shows %d tasks (%d more), want none: every one is cancelled", len(list.Tasks), list.More)
	}
	if list := w.list("alpha", ipc.ListTasksArgs{All: true}); len(list.Tasks) != len(all) || list.Tasks[0].Status != "cancelled" {
		t.Fatalf("alpha's list with all: %d tasks, want the %d kept", len(list.Tasks), len(all))
	}

	// 150 tasks that may run, from main: the list shows the newest 100 and
	// says 50 more, each prompt cut short.
	forAlpha := hourly
	forAlpha.TargetGroup = "alpha"
	var newest string
	for i := range 150 {
		task, err := w.call("main", "schedule_task", forAlpha)
		if err != nil {
			t.Fatalf("main's task %d: %v", i, err)
		}
		newest = task.ID
	}
	for _, who := range []string{"alpha", "main"} {
		list := w.list(who, ipc.ListTasksArgs{})
		if len(list.Tasks) != ipc.ListTasksLimit || list.More != 50 || list.Tasks[0].ID != newest {
			t.Fatalf("%s's list: %d tasks, %d more, first %s; want %d, 50 more, first %s", who, len(list.Tasks), list.More, list.Tasks[0].ID, ipc.ListTasksLimit, newest)
		}
		for _, task := range list.Tasks {
			if len(task.Prompt) > ipc.ListPromptBytes || !strings.HasSuffix(task.Prompt, "…") {
				t.Fatalf("%s's list: a prompt of %d bytes (%q…), want at most %d, marked cut", who, len(task.Prompt), task.Prompt[:20], ipc.ListPromptBytes)
			}
		}
	}
	if got, err := w.call("alpha", "get_task", ipc.TaskIDArgs{TaskID: newest}); err != nil || got.Prompt != prompt {
		t.Fatalf("get_task: %d bytes of prompt (%v), want the whole %d", len(got.Prompt), err, len(prompt))
	}
}

// R9: the second review's schedule: a non-main group's 19 isolated once
// tasks due within 20 s were all accepted while TASK_MIN_INTERVAL was 5m,
// so they ran back to back (and each run could schedule the next). Now the
// first is accepted — a reminder in a minute is fine — and the rest are
// refused, saying the setting; main is not held to it. update_task cannot
// move a task next to another once task either.
func TestTaskToolsOnceTasksKeepTheMinInterval(t *testing.T) {
	ctx := context.Background()
	w := newTaskToolWorld(t, TaskLimits{MaxActive: 20, MaxActiveMain: 200, MinInterval: 5 * time.Minute})
	first := time.Now().UTC().Add(time.Minute).Truncate(time.Second)
	once := func(at time.Time) ipc.ScheduleTaskArgs {
		return ipc.ScheduleTaskArgs{Prompt: "remind", ScheduleType: "once", ScheduleValue: at.Format("2006-01-02T15:04:05"), ContextMode: "isolated"}
	}
	for i := range 19 {
		_, err := w.call("alpha", "schedule_task", once(first.Add(time.Duration(i)*time.Second)))
		if i == 0 {
			if err != nil {
				t.Fatalf("a reminder in a minute: %v", err)
			}
			continue
		}
		for _, want := range []string{"not scheduled", "less than 5m0s from another once task of group alpha", "TASK_MIN_INTERVAL=5m0s",
			first.Format("2006-01-02T15:04:05"), "~/.config/nanoclaw/config"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("once task %d, %d s after the first: %v, want it to say %q", i, i, err, want)
			}
		}
	}
	if list, _, _ := w.st.ListTasksPage(ctx, store.TaskQuery{Folder: "alpha", Finished: true, Limit: 1000}); len(list) != 1 {
		t.Fatalf("%d once tasks stored, want 1", len(list))
	}
	if _, err := w.call("alpha", "schedule_task", once(first.Add(5*time.Minute))); err != nil {
		t.Errorf("a once task 5 minutes after the first: %v", err)
	}
	forAlpha := once(first.Add(time.Second))
	forAlpha.TargetGroup = "alpha"
	if _, err := w.call("main", "schedule_task", forAlpha); err != nil {
		t.Errorf("main's once task for alpha: %v", err)
	}

	task, err := w.call("alpha", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: "3600000"})
	if err != nil {
		t.Fatal(err)
	}
	kind, at := "once", first.Add(5*time.Minute+30*time.Second).Format("2006-01-02T15:04:05")
	if _, err := w.call("alpha", "update_task", ipc.UpdateTaskArgs{TaskID: task.ID, ScheduleType: &kind, ScheduleValue: &at}); err == nil ||
		!strings.Contains(err.Error(), "not changed") || !strings.Contains(err.Error(), "TASK_MIN_INTERVAL=5m0s") {
		t.Fatalf("update_task to a once time beside another: %v, want refused", err)
	}
	if stored, _, _ := w.st.GetTask(ctx, task.ID); stored.ScheduleType != store.ScheduleInterval {
		t.Fatalf("the refused update left the task %s", stored.ScheduleType)
	}
}

// R9: the cap on kept tasks, finished ones included, says what to do.
func TestTaskToolsKeptCapHint(t *testing.T) {
	w := newTaskToolWorld(t, TaskLimits{MaxActive: 3})
	err := w.r.limitHint(store.ActorGroup, "not scheduled", fmt.Errorf("create: %w", &store.TaskKeptError{Folder: "alpha", Limit: 30}))
	for _, want := range []string{"not scheduled", "already keeps 30 tasks", "10 × TASK_MAX_ACTIVE=3", "cancel_task", "30 days", "~/.config/nanoclaw/config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want it to say %q", err, want)
		}
	}
}
