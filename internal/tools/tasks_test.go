package tools

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/router"
	"github.com/nanoclaw/nanoclaw/internal/scheduler"
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
	r := New(Options{Store: st, Chats: router.NewChannels(st, "", nil), Location: berlin, TasksChanged: func() { changed++ }})
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
		var list ipc.TaskList
		if tool == "list_tasks" {
			json.Unmarshal(b, &list)
		} else {
			json.Unmarshal(b, &one)
		}
		return one, list.Tasks, nil
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

// taskToolWorld is the tools on a real store with main, alpha and beta.
type taskToolWorld struct {
	t  *testing.T
	st *store.Store
	r  *Set
}

func newTaskToolWorld(t *testing.T, limits TaskLimits) *taskToolWorld {
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
	return &taskToolWorld{t: t, st: st, r: New(Options{Store: st, Chats: router.NewChannels(st, "", nil), Location: time.UTC, Tasks: limits})}
}

// call runs a tool as who: "owner" (OwnerCall), "main", or a group's folder.
func (w *taskToolWorld) call(who, tool string, args any) (ipc.TaskInfo, error) {
	w.t.Helper()
	raw, _ := json.Marshal(args)
	var res any
	var err error
	if who == "owner" {
		res, err = w.r.OwnerCall(context.Background(), tool, raw)
	} else {
		res, err = w.r.Call(context.Background(), gateway.Caller{Folder: who, IsMain: who == "main"}, tool, raw)
	}
	if err != nil {
		return ipc.TaskInfo{}, err
	}
	b, _ := json.Marshal(res)
	var info ipc.TaskInfo
	json.Unmarshal(b, &info)
	return info, nil
}

// R20: for each who pauses and who tries to undo it, with resume_task and
// update_task; and cancelled is final for everyone.
func TestTaskToolsPauseRights(t *testing.T) {
	prompt := "changed prompt"
	for _, tc := range []struct {
		pauser, lifter string
		lift           bool
	}{
		{"alpha", "alpha", true},
		{"alpha", "main", true},
		{"alpha", "owner", true},
		{"main", "alpha", false},
		{"main", "main", true},
		{"main", "owner", true},
		{"owner", "alpha", false},
		{"owner", "main", true},
		{"owner", "owner", true},
	} {
		for _, tool := range []string{"resume_task", "update_task"} {
			t.Run(tc.pauser+" pauses, "+tc.lifter+" "+tool, func(t *testing.T) {
				w := newTaskToolWorld(t, TaskLimits{})
				task, err := w.call("alpha", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: "3600000"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := w.call(tc.pauser, "pause_task", ipc.TaskIDArgs{TaskID: task.ID}); err != nil {
					t.Fatal(err)
				}
				// The group pausing again does not make the pause its own.
				if _, err := w.call("alpha", "pause_task", ipc.TaskIDArgs{TaskID: task.ID}); err != nil {
					t.Fatal(err)
				}
				var args any = ipc.TaskIDArgs{TaskID: task.ID}
				if tool == "update_task" {
					args = ipc.UpdateTaskArgs{TaskID: task.ID, Prompt: &prompt}
				}
				_, err = w.call(tc.lifter, tool, args)
				stored, _, _ := w.st.GetTask(context.Background(), task.ID)
				if tc.lift {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				want := map[string]string{"main": "paused by the main group", "owner": "paused by the owner"}[tc.pauser]
				if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nanoclaw tasks resume "+task.ID) {
					t.Fatalf("err = %v, want a refusal saying %q and how the owner resumes it", err, want)
				}
				if stored.Status != store.TaskPaused || stored.Prompt != "p" {
					t.Fatalf("stored %s with prompt %q after a refused %s", stored.Status, stored.Prompt, tool)
				}
			})
		}
	}

	w := newTaskToolWorld(t, TaskLimits{})
	for _, canceller := range []string{"alpha", "main", "owner"} {
		task, err := w.call("alpha", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: "3600000"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.call(canceller, "cancel_task", ipc.TaskIDArgs{TaskID: task.ID}); err != nil {
			t.Fatal(err)
		}
		for _, who := range []string{"alpha", "main", "owner"} {
			for tool, args := range map[string]any{
				"resume_task": ipc.TaskIDArgs{TaskID: task.ID},
				"pause_task":  ipc.TaskIDArgs{TaskID: task.ID},
				"update_task": ipc.UpdateTaskArgs{TaskID: task.ID, Prompt: &prompt},
			} {
				if _, err := w.call(who, tool, args); err == nil || !strings.Contains(err.Error(), "a cancelled task stays cancelled") {
					t.Errorf("%s of a task %s cancelled: %v, want refused", tool, canceller, err)
				}
			}
		}
		if stored, _, _ := w.st.GetTask(context.Background(), task.ID); stored.Status != store.TaskCancelled || stored.Prompt != "p" {
			t.Errorf("cancelled task is now %s, prompt %q", stored.Status, stored.Prompt)
		}
	}
}

// R9: a non-main group's agent is held to its cap of active or paused tasks
// and to the shortest interval (cron included); main and the owner to theirs.
func TestTaskToolsLimits(t *testing.T) {
	w := newTaskToolWorld(t, TaskLimits{MaxActive: 3, MaxActiveMain: 5, MinInterval: 5 * time.Minute})
	hourly := ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: "3600000"}
	for range 3 {
		if _, err := w.call("alpha", "schedule_task", hourly); err != nil {
			t.Fatal(err)
		}
	}
	_, err := w.call("alpha", "schedule_task", hourly)
	for _, want := range []string{"not scheduled", "group alpha already has 3 scheduled tasks", "TASK_MAX_ACTIVE=3", "cancel_task", "~/.config/nanoclaw/config"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("fourth task: %v, want it to say %q", err, want)
		}
	}
	if list, _, _ := w.st.ListTasksPage(context.Background(), store.TaskQuery{Folder: "alpha", Finished: true, Limit: 1000}); len(list) != 3 {
		t.Fatalf("%d tasks stored, want 3", len(list))
	}
	// Another group has its own count; main may add to alpha up to its own cap.
	if _, err := w.call("beta", "schedule_task", hourly); err != nil {
		t.Errorf("beta: %v", err)
	}
	forAlpha := hourly
	forAlpha.TargetGroup = "alpha"
	for i := range 3 {
		_, err := w.call("main", "schedule_task", forAlpha)
		if i < 2 && err != nil {
			t.Fatalf("main's task %d for alpha: %v", i, err)
		}
		if i == 2 && (err == nil || !strings.Contains(err.Error(), "TASK_MAX_ACTIVE_MAIN=5")) {
			t.Fatalf("main's sixth task for alpha: %v, want the main cap", err)
		}
	}

	// The shortest interval, for intervals and cron expressions alike.
	for _, args := range []ipc.ScheduleTaskArgs{
		{Prompt: "p", ScheduleType: "interval", ScheduleValue: "60000"},
		{Prompt: "p", ScheduleType: "interval", ScheduleValue: "299999"},
		{Prompt: "p", ScheduleType: "cron", ScheduleValue: "* * * * *"},
		{Prompt: "p", ScheduleType: "cron", ScheduleValue: "*/2 9 * * *"},
	} {
		_, err := w.call("beta", "schedule_task", args)
		for _, want := range []string{"not scheduled", "5m0s", "TASK_MIN_INTERVAL", "~/.config/nanoclaw/config"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("beta schedules %s %s: %v, want it to say %q", args.ScheduleType, args.ScheduleValue, err, want)
			}
		}
	}
	if _, err := w.call("beta", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "cron", ScheduleValue: "*/5 * * * *"}); err != nil {
		t.Errorf("every 5 minutes: %v", err)
	}
	// A group cannot shorten an existing task below the limit either.
	task, _ := w.call("main", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: "3600000", TargetGroup: "beta"})
	every := "* * * * *"
	cron := "cron"
	if _, err := w.call("beta", "update_task", ipc.UpdateTaskArgs{TaskID: task.ID, ScheduleType: &cron, ScheduleValue: &every}); err == nil || !strings.Contains(err.Error(), "TASK_MIN_INTERVAL") {
		t.Errorf("beta making its task every minute: %v", err)
	}
	// Main may: its floor is the scheduler's minute.
	if _, err := w.call("main", "update_task", ipc.UpdateTaskArgs{TaskID: task.ID, ScheduleType: &cron, ScheduleValue: &every}); err != nil {
		t.Errorf("main making beta's task every minute: %v", err)
	}
}

// R9: the review's attack through the tools, with TASK_MAX_ACTIVE=2: a
// group schedules two once tasks, they are claimed (which completes them)
// and run, and it gives them an interval with update_task and resumes them;
// five rounds. Before the fix the group ended with 10 hourly tasks. Now
// update_task and resume_task refuse a completed task, for main and the
// owner too, a claimed once task counts until its run is recorded, and
// resume_task is held to the cap.
func TestTaskToolsCompletedOnceTasksStayWithinCap(t *testing.T) {
	ctx := context.Background()
	w := newTaskToolWorld(t, TaskLimits{MaxActive: 2, MaxActiveMain: 2})
	hourly, interval := "3600000", "interval"
	at := time.Now().UTC().Truncate(time.Second)
	for round := range 5 {
		at = at.Add(time.Hour)
		var ids []string
		for range 2 {
			task, err := w.call("alpha", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "once", ScheduleValue: at.Format("2006-01-02T15:04:05")})
			if err != nil {
				if round > 0 && strings.Contains(err.Error(), "already has 2 scheduled tasks") {
					continue
				}
				t.Fatalf("round %d: %v", round, err)
			}
			ids = append(ids, task.ID)
		}
		claimed, err := w.st.ClaimDue(ctx, at, 0, time.Hour, func(t store.Task) (*time.Time, error) { return scheduler.NextRun(t, at) })
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			_, err := w.call("alpha", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: hourly})
			if err == nil || !strings.Contains(err.Error(), "not scheduled: group alpha already has 2 scheduled tasks (active, paused, or with a run waiting or running)") {
				t.Fatalf("a task beside two claimed once runs: %v, want the cap", err)
			}
		}
		for _, c := range claimed {
			if _, err := w.st.AddTaskRun(ctx, store.TaskRun{TaskID: c.ID, StartedAt: at, Status: store.RunSuccess, Result: "done"}); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			for _, who := range []string{"alpha", "main", "owner"} {
				_, errEdit := w.call(who, "update_task", ipc.UpdateTaskArgs{TaskID: id, ScheduleType: &interval, ScheduleValue: &hourly})
				_, errResume := w.call(who, "resume_task", ipc.TaskIDArgs{TaskID: id})
				for _, err := range []error{errEdit, errResume} {
					if err == nil || !strings.Contains(err.Error(), "a completed task stays completed: schedule a new task with schedule_task instead") {
						t.Fatalf("round %d: %s reviving completed %s: %v, want refused", round, who, id, err)
					}
				}
			}
		}
	}
	tasks, _, _ := w.st.ListTasksPage(ctx, store.TaskQuery{Folder: "alpha", Finished: true, Limit: 1000})
	active := 0
	for _, task := range tasks {
		if task.Status == store.TaskActive {
			active++
		}
	}
	if active > 0 {
		t.Fatalf("%d active tasks after the attack, want none", active)
	}

	// resume_task is held to the cap: three paused tasks under a cap of 2.
	var paused []string
	for range 2 {
		task, err := w.call("alpha", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: hourly})
		if err != nil {
			t.Fatal(err)
		}
		paused = append(paused, task.ID)
	}
	extra, err := w.call("owner", "schedule_task", ipc.ScheduleTaskArgs{Prompt: "p", ScheduleType: "interval", ScheduleValue: hourly, TargetGroup: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	// Move beta's task to alpha, as a lowered cap would leave it: over the cap.
	if _, err := w.st.DB().Exec(`UPDATE tasks SET folder = 'alpha' WHERE id = ?`, extra.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(paused, extra.ID) {
		if _, err := w.call("alpha", "pause_task", ipc.TaskIDArgs{TaskID: id}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = w.call("alpha", "resume_task", ipc.TaskIDArgs{TaskID: paused[0]})
	for _, want := range []string{"not resumed: ", "group alpha already has 2 scheduled tasks", "TASK_MAX_ACTIVE=2", "cancel_task"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("resume over the cap: %v, want it to say %q", err, want)
		}
	}
	if stored, _, _ := w.st.GetTask(ctx, paused[0]); stored.Status != store.TaskPaused {
		t.Errorf("refused resume left the task %s", stored.Status)
	}
	if _, err := w.call("alpha", "cancel_task", ipc.TaskIDArgs{TaskID: extra.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.call("alpha", "resume_task", ipc.TaskIDArgs{TaskID: paused[0]}); err != nil {
		t.Errorf("resume under the cap: %v", err)
	}
}
