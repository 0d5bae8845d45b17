package router

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

func TestTaskToolsAuthorizeBySocket(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	for _, g := range []store.Group{
		{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()},
		{Folder: "alpha", Name: "A", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()},
		{Folder: "beta", Name: "B", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()},
	} {
		st.PutGroup(ctx, g)
		st.BindChat(ctx, "local:"+g.Folder, g.Folder)
	}
	changed := 0
	berlin, _ := time.LoadLocation("Europe/Berlin")
	r := New(Options{Store: st, Location: berlin, MaxConcurrent: 1, TasksChanged: func() { changed++ }})
	main := gateway.Caller{Folder: "main", IsMain: true}
	alpha := gateway.Caller{Folder: "alpha"}
	beta := gateway.Caller{Folder: "beta"}
	call := func(c gateway.Caller, tool string, args any) (ipc.TaskInfo, []ipc.TaskInfo, error) {
		t.Helper()
		raw, _ := json.Marshal(args)
		res, err := r.Call(ctx, c, tool, raw)
		if err != nil {
			return ipc.TaskInfo{}, nil, err
		}
		b, _ := json.Marshal(res)
		var one ipc.TaskInfo
		var many []ipc.TaskInfo
		if json.Unmarshal(b, &many) != nil {
			json.Unmarshal(b, &one)
		}
		return one, many, nil
	}

	task, _, err := call(alpha, "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: "3600000"})
	if err != nil || task.Group != "alpha" || task.Timezone != "Europe/Berlin" || task.NextRun == nil {
		t.Fatalf("schedule_task: %+v, %v", task, err)
	}
	if _, _, err := call(alpha, "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: "3600000", TargetGroup: "beta"}); err != errNotPermitted {
		t.Errorf("a non-main group scheduling for another: %v", err)
	}
	if got, _, err := call(main, "schedule_task", ipc.ScheduleTaskArgs{Prompt: "q", ScheduleType: "cron", ScheduleValue: "0 9 * * *", TargetGroup: "beta"}); err != nil || got.Group != "beta" {
		t.Errorf("main scheduling for beta: %+v, %v", got, err)
	}
	if _, list, _ := call(beta, "list_tasks", ipc.ListTasksArgs{}); len(list) != 1 || list[0].Group != "beta" {
		t.Errorf("beta's list: %+v", list)
	}
	if _, list, _ := call(main, "list_tasks", ipc.ListTasksArgs{}); len(list) != 2 {
		t.Errorf("main's list: %+v", list)
	}
	if _, _, err := call(beta, "list_tasks", ipc.ListTasksArgs{Group: "alpha"}); err != errNotPermitted {
		t.Errorf("beta listing alpha's: %v", err)
	}
	// A foreign id and an unknown id get the same answer.
	_, _, errForeign := call(beta, "pause_task", ipc.TaskIDArgs{TaskID: task.ID})
	_, _, errUnknown := call(beta, "pause_task", ipc.TaskIDArgs{TaskID: "task-nothere"})
	if errForeign == nil || errUnknown == nil || strings.Replace(errForeign.Error(), task.ID, "X", 1) != strings.Replace(errUnknown.Error(), "task-nothere", "X", 1) {
		t.Errorf("foreign %v vs unknown %v: must read the same", errForeign, errUnknown)
	}
	// The owner group pauses, updates and resumes; each change wakes the scheduler.
	before := changed
	if got, _, err := call(alpha, "pause_task", ipc.TaskIDArgs{TaskID: task.ID}); err != nil || got.Status != "paused" {
		t.Errorf("pause: %+v %v", got, err)
	}
	v := "0 7 * * *"
	typ := "cron"
	if got, _, err := call(alpha, "update_task", ipc.UpdateTaskArgs{TaskID: task.ID, ScheduleType: &typ, ScheduleValue: &v}); err != nil || got.ScheduleValue != v {
		t.Errorf("update: %+v %v", got, err)
	}
	bad := "61 * * * *"
	if _, _, err := call(alpha, "update_task", ipc.UpdateTaskArgs{TaskID: task.ID, ScheduleValue: &bad}); err == nil {
		t.Error("an invalid cron update was accepted")
	}
	if got, _, err := call(alpha, "resume_task", ipc.TaskIDArgs{TaskID: task.ID}); err != nil || got.Status != "active" || got.NextRun == nil || got.NextRun.In(berlin).Hour() != 7 {
		t.Errorf("resume: %+v %v", got, err)
	}
	if changed-before != 3 {
		t.Errorf("the scheduler was told of %d changes, want 3", changed-before)
	}
	stored, _, _ := st.GetTask(ctx, task.ID)
	if stored.ScheduleValue != v || stored.Status != store.TaskActive {
		t.Errorf("stored task %+v", stored)
	}
	// Unknown fields are refused, not ignored.
	if _, err := r.Call(ctx, alpha, "get_task", json.RawMessage(`{"task_id":"`+task.ID+`","folder":"main"}`)); err == nil {
		t.Error("an unknown field was ignored")
	}
}
