package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func testTask(id, folder string) Task {
	next := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	return Task{
		ID: id, Folder: folder, ChatJID: folder + "@g.us", Prompt: "Summarise the news",
		ScheduleType: ScheduleCron, ScheduleValue: "0 8 * * *", Timezone: "Europe/Paris",
		ContextMode: ContextIsolated, Status: TaskActive, NextRun: &next,
		CreatedAt: time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC),
	}
}

func timePtr(t time.Time) *time.Time { return &t }

func TestTaskValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Task)
		wantErr string
	}{
		{"valid", func(*Task) {}, ""},
		{"interval", func(t *Task) { t.ScheduleType, t.ScheduleValue = ScheduleInterval, "3600000" }, ""},
		{"once", func(t *Task) { t.ScheduleType, t.ScheduleValue = ScheduleOnce, "2025-08-01T10:00:00" }, ""},
		{"UTC", func(t *Task) { t.Timezone = "UTC" }, ""},
		{"no next run", func(t *Task) { t.NextRun = nil }, ""},
		{"empty id", func(t *Task) { t.ID = "" }, "empty task id"},
		{"empty prompt", func(t *Task) { t.Prompt = "" }, "empty prompt"},
		{"bad folder", func(t *Task) { t.Folder = "../x" }, "invalid group folder"},
		{"empty chat", func(t *Task) { t.ChatJID = "" }, "empty chat id"},
		{"bad schedule type", func(t *Task) { t.ScheduleType = "weekly" }, `unknown schedule type "weekly"`},
		{"empty schedule value", func(t *Task) { t.ScheduleValue = "" }, "empty schedule value"},
		{"interval not a number", func(t *Task) { t.ScheduleType, t.ScheduleValue = ScheduleInterval, "1h" }, `interval "1h"`},
		{"interval zero", func(t *Task) { t.ScheduleType, t.ScheduleValue = ScheduleInterval, "0" }, `interval "0"`},
		{"interval negative", func(t *Task) { t.ScheduleType, t.ScheduleValue = ScheduleInterval, "-5" }, `interval "-5"`},
		{"bad context mode", func(t *Task) { t.ContextMode = "shared" }, `unknown context mode "shared"`},
		{"bad status", func(t *Task) { t.Status = "done" }, `unknown task status "done"`},
		{"empty status", func(t *Task) { t.Status = "" }, `unknown task status ""`},
		{"bad time zone", func(t *Task) { t.Timezone = "Mars/Olympus" }, `time zone "Mars/Olympus"`},
		{"empty time zone", func(t *Task) { t.Timezone = "" }, `time zone ""`},
		{"Local time zone", func(t *Task) { t.Timezone = "Local" }, `time zone "Local"`},
		{"path-like time zone", func(t *Task) { t.Timezone = "../../etc/passwd" }, `time zone "../../etc/passwd"`},
		{"next run before 1970", func(t *Task) { t.NextRun = timePtr(time.Unix(-10, 0)) }, "next_run"},
		{"zero created", func(t *Task) { t.CreatedAt = time.Time{} }, "created_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := testTask("t1", "family")
			tc.edit(&task)
			err := task.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestTasksRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	mustPutGroup(t, s, testGroup("work"))

	t1 := testTask("t1", "family")
	t2 := testTask("t2", "work")
	t2.ScheduleType, t2.ScheduleValue, t2.ContextMode = ScheduleInterval, "60000", ContextGroup
	t2.CreatedAt = t1.CreatedAt.Add(time.Minute)
	t2.NextRun = nil
	t2.LastRun, t2.LastResult = timePtr(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)), "ok"
	for _, task := range []Task{t1, t2} {
		if err := s.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	got, found, err := s.GetTask(ctx, "t2")
	if err != nil || !found || !reflect.DeepEqual(got, t2) {
		t.Fatalf("GetTask = %+v, %v, %v\nwant %+v", got, found, err, t2)
	}
	if _, found, err := s.GetTask(ctx, "nope"); found || err != nil {
		t.Fatalf("GetTask(missing) = %v, %v", found, err)
	}

	if err := s.CreateTask(ctx, t1); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate id: err = %v", err)
	}
	orphan := testTask("t3", "nobody")
	if err := s.CreateTask(ctx, orphan); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `no group "nobody"`) {
		t.Fatalf("task for a missing group: err = %v", err)
	}
	bad := testTask("t4", "family")
	bad.Timezone = "Nowhere/Land"
	if err := s.CreateTask(ctx, bad); err == nil {
		t.Fatal("invalid task created")
	}

	for _, tc := range []struct {
		folder string
		want   []string
	}{
		{"", []string{"t1", "t2"}},
		{"family", []string{"t1"}},
		{"work", []string{"t2"}},
		{"other", nil},
	} {
		list, err := s.ListTasks(ctx, tc.folder)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, task := range list {
			ids = append(ids, task.ID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("ListTasks(%q) = %v, want %v", tc.folder, ids, tc.want)
		}
	}

	// Status changes.
	if err := s.PauseTask(ctx, "t1", ActorGroup); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetTask(ctx, "t1"); got.Status != TaskPaused || got.PausedBy != ActorGroup {
		t.Fatalf("status = %q paused by %q, want paused by group", got.Status, got.PausedBy)
	}
	for _, st := range []TaskStatus{"frozen", TaskPaused, TaskActive} {
		if err := s.SetTaskStatus(ctx, "t1", st); err == nil {
			t.Fatalf("SetTaskStatus(%s) accepted", st)
		}
	}
	if err := s.SetTaskStatus(ctx, "nope", TaskCompleted); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status of a missing task: err = %v", err)
	}

	// UpdateTask changes prompt, schedule and next run only.
	upd := t1
	upd.Prompt = "New prompt"
	upd.ScheduleType, upd.ScheduleValue, upd.Timezone = ScheduleOnce, "2025-09-01T09:00:00", "UTC"
	upd.NextRun = timePtr(time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC))
	upd.Status = TaskCancelled     // ignored
	upd.ContextMode = ContextGroup // ignored
	if err := s.UpdateTask(ctx, upd, ActorGroup); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.GetTask(ctx, "t1")
	want := upd
	want.Status, want.PausedBy, want.ContextMode = TaskPaused, ActorGroup, t1.ContextMode
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateTask = %+v\nwant %+v", got, want)
	}
	upd.ScheduleType = "never"
	if err := s.UpdateTask(ctx, upd, ActorGroup); err == nil {
		t.Fatal("UpdateTask accepted an invalid schedule type")
	}
	missing := testTask("nope", "family")
	if err := s.UpdateTask(ctx, missing, ActorMain); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateTask(missing) = %v", err)
	}
}

func TestTaskRuns(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	if err := s.CreateTask(ctx, testTask("t1", "family")); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	runs := []TaskRun{
		{TaskID: "t1", StartedAt: start, Duration: 1500 * time.Millisecond, Status: RunSuccess, Result: "first"},
		{TaskID: "t1", StartedAt: start.Add(time.Hour), Duration: 0, Status: RunError, Error: "container timed out"},
		{TaskID: "t1", StartedAt: start.Add(2 * time.Hour), Duration: time.Minute, Status: RunSuccess, Result: "third"},
	}
	for i := range runs {
		id, err := s.AddTaskRun(ctx, runs[i])
		if err != nil || id <= 0 {
			t.Fatalf("AddTaskRun = %d, %v", id, err)
		}
		runs[i].ID = id
		task, _, _ := s.GetTask(ctx, "t1")
		wantResult := runs[i].Result
		if runs[i].Status == RunError {
			wantResult = "error: " + runs[i].Error
		}
		if task.LastRun == nil || !task.LastRun.Equal(runs[i].StartedAt) || task.LastResult != wantResult {
			t.Fatalf("after run %d: LastRun %v LastResult %q, want %v %q", i, task.LastRun, task.LastResult, runs[i].StartedAt, wantResult)
		}
	}
	got, err := s.TaskRuns(ctx, "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []TaskRun{runs[2], runs[1], runs[0]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("TaskRuns = %+v\nwant %+v", got, want)
	}
	got, _ = s.TaskRuns(ctx, "t1", 1)
	if len(got) != 1 || got[0].ID != runs[2].ID {
		t.Fatalf("TaskRuns(limit 1) = %+v", got)
	}

	for _, bad := range []struct {
		run     TaskRun
		wantErr string
	}{
		{TaskRun{TaskID: "nope", StartedAt: start, Status: RunSuccess}, "no such task"},
		{TaskRun{TaskID: "t1", StartedAt: start, Status: "maybe"}, `unknown run status "maybe"`},
		{TaskRun{TaskID: "t1", StartedAt: start, Status: RunSuccess, Duration: -time.Second}, "negative duration"},
		{TaskRun{StartedAt: start, Status: RunSuccess}, "empty task id"},
	} {
		if _, err := s.AddTaskRun(ctx, bad.run); err == nil || !strings.Contains(err.Error(), bad.wantErr) {
			t.Errorf("AddTaskRun(%+v) = %v, want %q", bad.run, err, bad.wantErr)
		}
	}
	// A failed AddTaskRun leaves the task's last run alone.
	if task, _, _ := s.GetTask(ctx, "t1"); !task.LastRun.Equal(runs[2].StartedAt) {
		t.Fatalf("LastRun changed by a rejected run: %v", task.LastRun)
	}
}

func TestTaskBadRows(t *testing.T) {
	ctx := context.Background()
	// Each case plants a row the CHECK constraints, foreign keys or the Store's
	// validation would refuse, as a file edited with ignore_check_constraints
	// and foreign_keys off could hold it.
	insert := `INSERT INTO tasks (id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode, status, next_run, last_run, last_result, created_at)
		VALUES (?, ?, 'c@g.us', 'p', ?, ?, ?, ?, ?, ?, NULL, NULL, 0)`
	for _, tc := range []struct {
		name    string
		args    []any // folder, schedule_type, schedule_value, timezone, context_mode, status, next_run
		wantErr string
	}{
		{"unknown schedule type", []any{"family", "hourly", "x", "UTC", "group", "active", 0}, `unknown schedule type "hourly"`},
		{"unknown context mode", []any{"family", "cron", "* * * * *", "UTC", "everyone", "active", 0}, `unknown context mode "everyone"`},
		{"unknown status", []any{"family", "cron", "* * * * *", "UTC", "group", "running", 0}, `unknown task status "running"`},
		{"invalid time zone", []any{"family", "cron", "* * * * *", "Not/AZone", "group", "active", 0}, `time zone "Not/AZone"`},
		{"invalid folder", []any{"../../x", "cron", "* * * * *", "UTC", "group", "active", 0}, "invalid group folder"},
		{"negative next run", []any{"family", "cron", "* * * * *", "UTC", "group", "active", -1}, "next_run"},
		{"interval not a number", []any{"family", "interval", "1h", "UTC", "group", "active", 0}, `interval "1h"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, logs := openTest(t)
			mustPutGroup(t, s, testGroup("family"))
			good := testTask("good", "family")
			good.NextRun = timePtr(time.UnixMilli(0))
			if err := s.CreateTask(ctx, good); err != nil {
				t.Fatal(err)
			}
			rawExec(t, s, []string{"ignore_check_constraints=ON", "foreign_keys=OFF"}, insert, append([]any{"bad"}, tc.args...)...)

			for name, list := range map[string]func() ([]Task, error){
				"ListTasks(all)":    func() ([]Task, error) { return s.ListTasks(ctx, "") },
				"ListTasks(family)": func() ([]Task, error) { return s.ListTasks(ctx, "family") },
			} {
				got, err := list()
				if err != nil {
					t.Fatalf("%s failed instead of skipping: %v", name, err)
				}
				if len(got) != 1 || got[0].ID != "good" {
					t.Fatalf("%s = %+v, want only the good task", name, got)
				}
			}
			wantSkipLogged(t, logs, "tasks", "bad")
			_, _, err := s.GetTask(ctx, "bad")
			wantBadRow(t, err, "tasks", "bad")
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("GetTask error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestTaskRunBadRows(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	if err := s.CreateTask(ctx, testTask("t1", "family")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddTaskRun(ctx, TaskRun{TaskID: "t1", StartedAt: time.UnixMilli(5), Status: RunSuccess}); err != nil {
		t.Fatal(err)
	}
	rawExec(t, s, []string{"ignore_check_constraints=ON"}, `INSERT INTO task_runs VALUES (100, 't1', 10, 0, 'meh', NULL, NULL)`)
	rawExec(t, s, []string{"ignore_check_constraints=ON"}, `INSERT INTO task_runs VALUES (101, 't1', 11, -7, 'success', NULL, NULL)`)
	wantRefused(t, s, `INSERT INTO task_runs VALUES (102, 't1', 11, 7, 'meh', NULL, NULL)`)
	wantRefused(t, s, `INSERT INTO task_runs VALUES (103, 't1', 11, 'long', 'success', NULL, NULL)`)
	runs, err := s.TaskRuns(ctx, "t1", 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("TaskRuns = %+v, %v; want the one good run", runs, err)
	}
	wantSkipLogged(t, logs, "task_runs", "100")
	wantSkipLogged(t, logs, "task_runs", "101")
}

func TestClaimDue(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		id     string
		kind   ScheduleType
		next   *time.Time
		status TaskStatus
	}{
		{"late", ScheduleCron, timePtr(now.Add(-time.Hour)), TaskActive},
		{"exact", ScheduleInterval, timePtr(now), TaskActive},
		{"once", ScheduleOnce, timePtr(now.Add(-time.Minute)), TaskActive},
		{"later", ScheduleCron, timePtr(now.Add(time.Millisecond)), TaskActive},
		{"paused", ScheduleCron, timePtr(now.Add(-2 * time.Hour)), TaskPaused},
		{"unscheduled", ScheduleCron, nil, TaskActive},
	} {
		task := testTask(tc.id, "family")
		task.NextRun, task.Status, task.ScheduleType = tc.next, tc.status, tc.kind
		if tc.status == TaskPaused {
			task.PausedBy = ActorGroup
		}
		task.ScheduleValue = map[ScheduleType]string{ScheduleCron: "0 * * * *", ScheduleInterval: "60000", ScheduleOnce: "2025-07-01T11:59:00Z"}[tc.kind]
		if err := s.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Hour)
	var asked []string
	next := func(task Task) (*time.Time, error) {
		asked = append(asked, task.ID)
		if task.ScheduleType == ScheduleOnce {
			return nil, nil
		}
		return &later, nil
	}
	claimed, err := s.ClaimDue(ctx, now, 2, time.Hour, next)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range claimed {
		ids = append(ids, c.ID)
	}
	if want := []string{"late", "once"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("ClaimDue(limit 2) claimed %v, want %v (most overdue first)", ids, want)
	}
	if c := claimed[0]; !c.Due.Equal(now.Add(-time.Hour)) || !c.NextRun.Equal(later) || c.Status != TaskActive {
		t.Fatalf("claimed late = due %v next %v status %s", c.Due, c.NextRun, c.Status)
	}
	if c := claimed[1]; c.NextRun != nil || c.Status != TaskCompleted {
		t.Fatalf("claimed once = next %v status %s, want nil, completed", c.NextRun, c.Status)
	}
	claimed, err = s.ClaimDue(ctx, now, 0, time.Hour, next)
	if err != nil || len(claimed) != 1 || claimed[0].ID != "exact" {
		t.Fatalf("second ClaimDue = %+v, %v; want only exact", claimed, err)
	}
	// Everything due has been claimed once: nothing is left to claim at now.
	if claimed, err := s.ClaimDue(ctx, now, 0, time.Hour, next); err != nil || len(claimed) != 0 {
		t.Fatalf("third ClaimDue = %+v, %v; want nothing", claimed, err)
	}
	if want := []string{"late", "once", "exact"}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("next asked for %v, want %v", asked, want)
	}
	for id, want := range map[string]struct {
		next   *time.Time
		status TaskStatus
	}{
		"late":        {&later, TaskActive},
		"exact":       {&later, TaskActive},
		"once":        {nil, TaskCompleted},
		"later":       {timePtr(now.Add(time.Millisecond)), TaskActive},
		"paused":      {timePtr(now.Add(-2 * time.Hour)), TaskPaused},
		"unscheduled": {nil, TaskActive},
	} {
		got, _, err := s.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != want.status || !reflect.DeepEqual(got.NextRun, want.next) {
			t.Errorf("task %s stored as next %v status %s, want %v %s", id, got.NextRun, got.Status, want.next, want.status)
		}
	}
}

func TestClaimDueUnschedulable(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"broken", "stuck", "fine"} {
		task := testTask(id, "family")
		task.NextRun = timePtr(now.Add(-time.Minute))
		if err := s.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	// A row that does not decode, due long ago.
	rawExec(t, s, []string{"ignore_check_constraints=ON"}, `INSERT INTO tasks (id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode, status, next_run, created_at)
		VALUES ('bad', 'family', 'c@g.us', 'p', 'cron', '* * * * *', 'Mars/Base', 'group', 'active', 5, 0)`)

	later := now.Add(time.Hour)
	claimed, err := s.ClaimDue(ctx, now, 0, time.Hour, func(task Task) (*time.Time, error) {
		switch task.ID {
		case "broken":
			return nil, errors.New("cron expression is garbage")
		case "stuck":
			return &now, nil // not after now: would wake the scheduler forever
		}
		return &later, nil
	})
	if err != nil || len(claimed) != 1 || claimed[0].ID != "fine" {
		t.Fatalf("ClaimDue = %+v, %v; want only the fine task", claimed, err)
	}
	for id, wantResult := range map[string]string{"broken": "cron expression is garbage", "stuck": "is not after now"} {
		got, _, _ := s.GetTask(ctx, id)
		if got.Status != TaskPaused || got.NextRun != nil || !strings.Contains(got.LastResult, "error: cannot schedule: ") || !strings.Contains(got.LastResult, wantResult) {
			t.Errorf("task %s after a failed schedule: status %s next %v result %q", id, got.Status, got.NextRun, got.LastResult)
		}
	}
	var next any
	if err := s.DB().QueryRow(`SELECT next_run FROM tasks WHERE id = 'bad'`).Scan(&next); err != nil || next != nil {
		t.Fatalf("invalid row's next_run = %v, %v; want it cleared", next, err)
	}
	if !strings.Contains(logs.String(), "not running invalid task row") || !strings.Contains(logs.String(), "key=bad") {
		t.Fatalf("invalid row not logged:\n%s", logs)
	}
	if due, err := s.NextDue(ctx); err != nil || due == nil || !due.Equal(later) {
		t.Fatalf("NextDue after the clean-up = %v, %v; want %v", due, err, later)
	}
}

func TestClaimDueTwoStoresRace(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/race.db"
	a, _ := openTestAt(t, path, nil)
	b, _ := openTestAt(t, path, nil)
	mustPutGroup(t, a, testGroup("family"))
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	const n = 50
	for i := range n {
		task := testTask(fmt.Sprintf("t%02d", i), "family")
		task.NextRun = &now
		if err := a.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Hour)
	next := func(Task) (*time.Time, error) { return &later, nil }
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				claimed, err := s.ClaimDue(ctx, now, 3, time.Hour, next)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, c := range claimed {
					count[c.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(count) != n {
		t.Fatalf("%d tasks claimed, want %d", len(count), n)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("task %s claimed %d times", id, c)
		}
	}
}

func TestNextDue(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	if due, err := s.NextDue(ctx); err != nil || due != nil {
		t.Fatalf("NextDue of no tasks = %v, %v", due, err)
	}
	base := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		id     string
		next   *time.Time
		status TaskStatus
	}{
		{"paused", timePtr(base.Add(-time.Hour)), TaskPaused},
		{"completed", timePtr(base.Add(-time.Hour)), TaskCompleted},
		{"unscheduled", nil, TaskActive},
		{"second", timePtr(base.Add(time.Minute)), TaskActive},
		{"first", timePtr(base.Add(time.Second)), TaskActive},
	} {
		task := testTask(tc.id, "family")
		task.NextRun, task.Status = tc.next, tc.status
		if tc.status == TaskPaused {
			task.PausedBy = ActorMain
		}
		if err := s.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	// No text (which sorts after every number) can hide the rest.
	wantRefused(t, s, `UPDATE tasks SET next_run = 'soon' WHERE id = 'unscheduled'`)
	due, err := s.NextDue(ctx)
	if err != nil || due == nil || !due.Equal(base.Add(time.Second)) {
		t.Fatalf("NextDue = %v, %v; want %v", due, err, base.Add(time.Second))
	}

	// One index entry, not a scan of the tasks.
	rows, err := s.DB().Query(`EXPLAIN QUERY PLAN ` + nextDueQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "INDEX tasks_due") || strings.Contains(p, "TEMP B-TREE") {
		t.Fatalf("NextDue's query plan = %q, want a search of index tasks_due without sorting", p)
	}
}

// While one store is inside its claim, another store on the same file can
// neither claim the same runs nor, afterwards, claim them again.
func TestClaimDueIsolated(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/iso.db"
	a, _ := openTestAt(t, path, nil)
	b, _ := openTestAt(t, path, nil)
	mustPutGroup(t, a, testGroup("family"))
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		task := testTask(fmt.Sprintf("t%d", i), "family")
		task.NextRun = &now
		if err := a.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Hour)
	next := func(Task) (*time.Time, error) { return &later, nil }
	var inner []ClaimedTask
	var innerErr error
	calls := 0
	claimed, err := a.ClaimDue(ctx, now, 0, time.Hour, func(task Task) (*time.Time, error) {
		if calls++; calls == 3 { // a has read the due tasks and claimed two of them
			bctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			inner, innerErr = b.ClaimDue(bctx, now, 0, time.Hour, next)
			cancel()
		}
		return next(task)
	})
	if err != nil || len(claimed) != 5 {
		t.Fatalf("outer claim = %d tasks, %v; want 5", len(claimed), err)
	}
	if len(inner) != 0 || innerErr == nil {
		t.Fatalf("a claim during another claim got %d tasks, err %v; want none and a lock timeout", len(inner), innerErr)
	}
	if again, err := b.ClaimDue(ctx, now, 0, time.Hour, next); err != nil || len(again) != 0 {
		t.Fatalf("claim after the other's commit = %d tasks, %v; want none", len(again), err)
	}
}

// R16: a task holds at most one claim. A due time that comes while its run
// is pending is logged as skipped and passed, not claimed; recording the run
// ends the claim; a claim older than the lease (its host died mid-run) is
// logged as lost, and the task runs again.
func TestClaimDueOneRunAtATime(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	t0 := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	task := testTask("slow", "family")
	task.ScheduleType, task.ScheduleValue, task.NextRun = ScheduleInterval, "60000", &t0
	if err := s.CreateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	const lease = time.Hour
	claimAt := func(now time.Time) []ClaimedTask {
		t.Helper()
		claimed, err := s.ClaimDue(ctx, now, 0, lease, func(task Task) (*time.Time, error) {
			n := now.Truncate(time.Minute).Add(time.Minute)
			return &n, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return claimed
	}
	runs := func() []TaskRun {
		t.Helper()
		list, err := s.TaskRuns(ctx, "slow", 0)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}

	claimed := claimAt(t0)
	if len(claimed) != 1 || claimed[0].ClaimedAt == nil || !claimed[0].ClaimedAt.Equal(t0) {
		t.Fatalf("first claim = %+v, want the task, claimed at %v", claimed, t0)
	}
	// Its run takes ten minutes: every due time meanwhile is skipped.
	for i := 1; i <= 10; i++ {
		now := t0.Add(time.Duration(i) * time.Minute)
		if c := claimAt(now); len(c) != 0 {
			t.Fatalf("minute %d: claimed %d more copies while the first run is pending", i, len(c))
		}
		got, _, _ := s.GetTask(ctx, "slow")
		if got.NextRun == nil || !got.NextRun.After(now) || got.ClaimedAt == nil || !got.ClaimedAt.Equal(t0) {
			t.Fatalf("minute %d: stored next %v claimed %v; want moved past now, the first claim kept", i, got.NextRun, got.ClaimedAt)
		}
	}
	if list := runs(); len(list) != 10 || list[0].Status != RunSkipped || !strings.Contains(list[0].Error, "had not finished") {
		t.Fatalf("runs while busy = %+v, want 10 skipped", list)
	}
	// The run ends: the task is claimable again, and its last run is the real one.
	if _, err := s.AddTaskRun(ctx, TaskRun{TaskID: "slow", StartedAt: t0, Duration: 10 * time.Minute, Status: RunSuccess, Result: "done"}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetTask(ctx, "slow"); got.ClaimedAt != nil || got.LastResult != "done" {
		t.Fatalf("after the run: claimed %v last result %q", got.ClaimedAt, got.LastResult)
	}
	t11 := t0.Add(11 * time.Minute)
	if c := claimAt(t11); len(c) != 1 {
		t.Fatalf("after the run ended: claimed %d, want 1", len(c))
	}
	// A skipped run (the task was cancelled before it started) ends the
	// claim too, without becoming the last run.
	if _, err := s.AddTaskRun(ctx, TaskRun{TaskID: "slow", StartedAt: t11, Status: RunSkipped, Error: "skipped: cancelled"}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetTask(ctx, "slow"); got.ClaimedAt != nil || got.LastResult != "done" || !got.LastRun.Equal(t0) {
		t.Fatalf("after a skipped run: claimed %v last %v %q", got.ClaimedAt, got.LastRun, got.LastResult)
	}

	// The host dies mid-run: the claim blocks the task for the lease, no longer.
	t12 := t0.Add(12 * time.Minute)
	if c := claimAt(t12); len(c) != 1 {
		t.Fatalf("claim at 12 min: %d", len(c))
	}
	if c := claimAt(t12.Add(lease - time.Minute)); len(c) != 0 {
		t.Fatal("claimed again inside the lease")
	}
	after := t12.Add(lease + time.Minute)
	if c := claimAt(after); len(c) != 1 || !c[0].ClaimedAt.Equal(after) {
		t.Fatalf("after the lease: claimed %+v, want the task afresh", c)
	}
	var lost []TaskRun
	for _, r := range runs() {
		if r.Status == RunError {
			lost = append(lost, r)
		}
	}
	if len(lost) != 1 || !strings.Contains(lost[0].Error, "did nanoclaw stop") || !lost[0].StartedAt.Equal(t12) {
		t.Fatalf("lost run logged as %+v, want one error run started at %v", lost, t12)
	}
}

// R20: who paused a task decides who may lift the pause; cancelled is final.
func TestTaskPauseRights(t *testing.T) {
	ctx := context.Background()
	next := time.Date(2025, 7, 2, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		pausedBy TaskActor
		by       TaskActor
		lift     bool
	}{
		{ActorGroup, ActorGroup, true},
		{ActorGroup, ActorMain, true},
		{ActorGroup, ActorOwner, true},
		{ActorMain, ActorGroup, false},
		{ActorMain, ActorMain, true},
		{ActorMain, ActorOwner, true},
		{ActorOwner, ActorGroup, false},
		{ActorOwner, ActorMain, true},
		{ActorOwner, ActorOwner, true},
		{ActorScheduler, ActorGroup, true},
	} {
		t.Run(fmt.Sprintf("paused by %s, lifted by %s", tc.pausedBy, tc.by), func(t *testing.T) {
			s, _ := openTest(t)
			mustPutGroup(t, s, testGroup("family"))
			if err := s.CreateTask(ctx, testTask("t1", "family")); err != nil {
				t.Fatal(err)
			}
			if tc.pausedBy == ActorScheduler {
				rawExec(t, s, nil, `UPDATE tasks SET status = 'paused', paused_by = 'scheduler' WHERE id = 't1'`)
			} else if err := s.PauseTask(ctx, "t1", tc.pausedBy); err != nil {
				t.Fatal(err)
			}
			// Pausing again never weakens the pause.
			if err := s.PauseTask(ctx, "t1", ActorGroup); err != nil {
				t.Fatal(err)
			}
			wantBy := ActorGroup
			if tc.pausedBy == ActorMain || tc.pausedBy == ActorOwner {
				wantBy = tc.pausedBy
			}
			if got, _, _ := s.GetTask(ctx, "t1"); got.PausedBy != wantBy {
				t.Fatalf("paused by %s after the group paused again, want %s", got.PausedBy, wantBy)
			}
			edit := testTask("t1", "family")
			edit.Prompt = "changed"
			errEdit := s.UpdateTask(ctx, edit, tc.by)
			errResume := s.ResumeTask(ctx, "t1", next, tc.by, 0)
			got, _, _ := s.GetTask(ctx, "t1")
			if tc.lift {
				if errEdit != nil || errResume != nil || got.Status != TaskActive || got.PausedBy != "" || got.Prompt != "changed" {
					t.Fatalf("edit %v resume %v: stored %s by %q prompt %q; want active, changed", errEdit, errResume, got.Status, got.PausedBy, got.Prompt)
				}
				return
			}
			for _, err := range []error{errEdit, errResume} {
				if !errors.Is(err, ErrTaskLocked) || !strings.Contains(err.Error(), "paused by "+string(wantBy)) {
					t.Errorf("err = %v, want locked: paused by %s", err, wantBy)
				}
			}
			if got.Status != TaskPaused || got.PausedBy != wantBy || got.Prompt == "changed" {
				t.Fatalf("stored %s by %q prompt %q; want unchanged", got.Status, got.PausedBy, got.Prompt)
			}
		})
	}

	// Cancelled is final, for everyone.
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	if err := s.CreateTask(ctx, testTask("t1", "family")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTaskStatus(ctx, "t1", TaskCancelled); err != nil {
		t.Fatal(err)
	}
	for _, by := range []TaskActor{ActorGroup, ActorMain, ActorOwner} {
		edit := testTask("t1", "family")
		for name, err := range map[string]error{
			"resume":   s.ResumeTask(ctx, "t1", next, by, 0),
			"update":   s.UpdateTask(ctx, edit, by),
			"pause":    s.PauseTask(ctx, "t1", by),
			"complete": s.SetTaskStatus(ctx, "t1", TaskCompleted),
		} {
			if !errors.Is(err, ErrTaskLocked) || !strings.Contains(err.Error(), "it is cancelled") {
				t.Errorf("%s by %s of a cancelled task: %v", name, by, err)
			}
		}
	}
	if got, _, _ := s.GetTask(ctx, "t1"); got.Status != TaskCancelled {
		t.Fatalf("cancelled task is now %s", got.Status)
	}
	// The database itself refuses a paused task without its pauser.
	if _, err := s.DB().Exec(`UPDATE tasks SET status = 'paused' WHERE id = 't1'`); err == nil {
		t.Fatal("a paused task without paused_by was stored")
	}
	if _, err := s.DB().Exec(`UPDATE tasks SET status = 'paused', paused_by = 'someone' WHERE id = 't1'`); err == nil {
		t.Fatal("an unknown pauser was stored")
	}
}

// R9: a group's scheduled tasks are capped, atomically; finished ones do not count.
func TestCreateTaskWithinLimit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	mustPutGroup(t, s, testGroup("work"))
	for i := range 3 {
		if err := s.CreateTaskWithin(ctx, testTask(fmt.Sprintf("t%d", i), "family"), 3); err != nil {
			t.Fatal(err)
		}
	}
	var limit *TaskLimitError
	if err := s.CreateTaskWithin(ctx, testTask("t3", "family"), 3); !errors.As(err, &limit) || limit.Limit != 3 || limit.Folder != "family" {
		t.Fatalf("fourth task: %v, want a TaskLimitError of 3", err)
	}
	if _, found, _ := s.GetTask(ctx, "t3"); found {
		t.Fatal("the refused task was stored")
	}
	if err := s.CreateTaskWithin(ctx, testTask("w0", "work"), 3); err != nil {
		t.Fatalf("another group's cap: %v", err)
	}
	if err := s.PauseTask(ctx, "t0", ActorGroup); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTaskWithin(ctx, testTask("t3", "family"), 3); !errors.As(err, &limit) {
		t.Fatalf("a paused task still counts: %v", err)
	}
	if err := s.SetTaskStatus(ctx, "t0", TaskCancelled); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTaskWithin(ctx, testTask("t3", "family"), 3); err != nil {
		t.Fatalf("after a cancel: %v", err)
	}

	// Concurrent creations cannot together pass the cap.
	mustPutGroup(t, s, testGroup("race"))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { s.CreateTaskWithin(ctx, testTask(fmt.Sprintf("r%02d", i), "race"), 5) })
	}
	wg.Wait()
	if list, _ := s.ListTasks(ctx, "race"); len(list) != 5 {
		t.Fatalf("%d tasks after 20 concurrent creations under a cap of 5", len(list))
	}
}

// R9: the attack of the review, with a cap of 2: schedule two once tasks,
// let them be claimed (which completes them) and run, then give them an
// interval and resume them; five rounds. Before the fix this left 10 active
// tasks. A completed task now stays completed, and a claimed once task
// counts until its run is recorded, so the group never holds more than 2
// tasks that may run.
func TestTaskCapHoldsThroughCompletedOnceTasks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	const limit = 2
	now := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	noNext := func(Task) (*time.Time, error) { return nil, nil } // once tasks: no further run
	counted := func() int {
		t.Helper()
		var n int
		if err := s.DB().QueryRow(`SELECT count(*) FROM tasks WHERE folder = 'family' AND ` + countedTask).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var limitErr *TaskLimitError
	for round := range 5 {
		now = now.Add(time.Hour)
		var ids []string
		for i := range limit {
			task := testTask(fmt.Sprintf("once-%d-%d", round, i), "family")
			task.ScheduleType, task.ScheduleValue, task.NextRun = ScheduleOnce, now.Format("2006-01-02T15:04:05"), timePtr(now)
			if err := s.CreateTaskWithin(ctx, task, limit); err != nil {
				if round > 0 && errors.As(err, &limitErr) {
					continue // the cap holds: what came before still counts
				}
				t.Fatalf("round %d: %v", round, err)
			}
			ids = append(ids, task.ID)
		}
		claimed, err := s.ClaimDue(ctx, now, 0, time.Hour, noNext)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range claimed {
			if c.Status != TaskCompleted || c.ClaimedAt == nil {
				t.Fatalf("claimed once task %s is %s with claim %v, want completed and claimed", c.ID, c.Status, c.ClaimedAt)
			}
		}
		// Claimed but not yet run: the once tasks still count.
		if round == 0 {
			if n := counted(); n != limit {
				t.Fatalf("%d tasks count while %d claimed runs wait, want %d", n, limit, limit)
			}
			if err := s.CreateTaskWithin(ctx, testTask("extra", "family"), limit); !errors.As(err, &limitErr) {
				t.Fatalf("a task beside %d waiting once runs: %v, want a TaskLimitError", limit, err)
			}
		}
		for _, c := range claimed {
			if _, err := s.AddTaskRun(ctx, TaskRun{TaskID: c.ID, StartedAt: now, Status: RunSuccess, Result: "done"}); err != nil {
				t.Fatal(err)
			}
		}
		// Turn the completed once tasks into hourly ones and resume them.
		for _, id := range ids {
			edit, _, _ := s.GetTask(ctx, id)
			edit.ScheduleType, edit.ScheduleValue, edit.NextRun = ScheduleInterval, "3600000", timePtr(now.Add(time.Hour))
			errEdit := s.UpdateTask(ctx, edit, ActorGroup)
			errResume := s.ResumeTask(ctx, id, now.Add(time.Hour), ActorGroup, limit)
			for _, err := range []error{errEdit, errResume} {
				if !errors.Is(err, ErrTaskLocked) || !strings.Contains(err.Error(), "it is completed") {
					t.Fatalf("round %d, task %s: %v, want locked: it is completed", round, id, err)
				}
			}
		}
		// No one revives a completed task, main and the owner included.
		if round == 0 {
			for _, by := range []TaskActor{ActorMain, ActorOwner} {
				if err := s.ResumeTask(ctx, ids[0], now.Add(time.Hour), by, 0); !errors.Is(err, ErrTaskLocked) {
					t.Fatalf("resume of a completed task by %s: %v", by, err)
				}
			}
		}
	}
	var active int
	if err := s.DB().QueryRow(`SELECT count(*) FROM tasks WHERE folder = 'family' AND status = 'active'`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if active > limit || counted() > limit {
		t.Fatalf("%d active tasks (%d counted) against a cap of %d", active, counted(), limit)
	}
}

// R9: ResumeTask checks the cap in its own statement: a group over its cap
// (the owner lowered it, say) resumes nothing until it is under it again.
// A task cancelled while its claimed run waits still counts until the run
// is recorded.
func TestResumeTaskWithinLimit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	next := time.Date(2025, 7, 2, 8, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := s.CreateTask(ctx, testTask(fmt.Sprintf("t%d", i), "family")); err != nil {
			t.Fatal(err)
		}
		if err := s.PauseTask(ctx, fmt.Sprintf("t%d", i), ActorGroup); err != nil {
			t.Fatal(err)
		}
	}
	var limit *TaskLimitError
	if err := s.ResumeTask(ctx, "t0", next, ActorGroup, 2); !errors.As(err, &limit) || limit.Limit != 2 || limit.Folder != "family" {
		t.Fatalf("resume with 2 others paused under a cap of 2: %v, want a TaskLimitError", err)
	}
	if got, _, _ := s.GetTask(ctx, "t0"); got.Status != TaskPaused {
		t.Fatalf("refused resume left the task %s", got.Status)
	}
	// A cancelled task with a claimed run not yet recorded still counts.
	rawExec(t, s, nil, `UPDATE tasks SET claimed_at = 1751356800000 WHERE id = 't2'`)
	if err := s.SetTaskStatus(ctx, "t2", TaskCancelled); err != nil {
		t.Fatal(err)
	}
	if err := s.ResumeTask(ctx, "t0", next, ActorGroup, 2); !errors.As(err, &limit) {
		t.Fatalf("resume beside a cancelled task whose run is pending: %v, want a TaskLimitError", err)
	}
	if _, err := s.AddTaskRun(ctx, TaskRun{TaskID: "t2", StartedAt: next, Status: RunSkipped, Error: "skipped"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"t0", "t1"} {
		if err := s.ResumeTask(ctx, id, next, ActorGroup, 2); err != nil {
			t.Fatalf("resume %s under the cap: %v", id, err)
		}
	}
	// Resuming an active task again is within the cap: it does not count itself.
	if err := s.ResumeTask(ctx, "t0", next, ActorGroup, 2); err != nil {
		t.Fatalf("resume of an active task at the cap: %v", err)
	}
	// The locks come before the cap: a stronger pause says so.
	if err := s.PauseTask(ctx, "t1", ActorOwner); err != nil {
		t.Fatal(err)
	}
	if err := s.ResumeTask(ctx, "t1", next, ActorGroup, 1); !errors.Is(err, ErrTaskLocked) {
		t.Fatalf("resume of the owner's pause: %v, want locked", err)
	}
}

// R9: a claim lost with a host that stopped mid-run does not hold a place in
// the cap for good: once its lease has passed, ClaimDue ends it and logs the
// run as failed, for a claimed (so completed) once task as for an active one.
func TestClaimDueReleasesLostClaimsOfOnceTasks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	due := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	task := testTask("once", "family")
	task.ScheduleType, task.ScheduleValue, task.NextRun = ScheduleOnce, "2025-07-01T08:00:00", timePtr(due)
	if err := s.CreateTaskWithin(ctx, task, 1); err != nil {
		t.Fatal(err)
	}
	noNext := func(Task) (*time.Time, error) { return nil, nil }
	if claimed, err := s.ClaimDue(ctx, due, 0, time.Hour, noNext); err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	// The host stops here: the run is never recorded.
	if err := s.CreateTaskWithin(ctx, testTask("next", "family"), 1); err == nil {
		t.Fatal("a new task beside a claimed once run under a cap of 1")
	}
	if _, err := s.ClaimDue(ctx, due.Add(59*time.Minute), 0, time.Hour, noNext); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetTask(ctx, "once"); got.ClaimedAt == nil {
		t.Fatal("a claim within its lease was ended")
	}
	if _, err := s.ClaimDue(ctx, due.Add(time.Hour), 0, time.Hour, noNext); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.GetTask(ctx, "once")
	if got.ClaimedAt != nil || got.Status != TaskCompleted {
		t.Fatalf("after the lease: %s, claim %v; want completed, no claim", got.Status, got.ClaimedAt)
	}
	runs, _ := s.TaskRuns(ctx, "once", 0)
	if len(runs) != 1 || runs[0].Status != RunError || !strings.Contains(runs[0].Error, "did nanoclaw stop") || !runs[0].StartedAt.Equal(due) {
		t.Fatalf("runs %+v, want one failed run at the claim", runs)
	}
	if err := s.CreateTaskWithin(ctx, testTask("next", "family"), 1); err != nil {
		t.Fatalf("after the lost claim ended: %v", err)
	}
}

// The v4 tasks step rebuilds tasks and task_runs: every row survives, a pause
// of unknown origin becomes the owner's, and runs still belong to their task.
func TestMigrationTaskClaimsKeepsData(t *testing.T) {
	ctx := context.Background()
	// The tables as they were before the step, with data in them.
	s := openAtVersion(t, 3)
	for _, q := range []string{
		`INSERT INTO groups VALUES ('family', 'Family', '@Andy', 1, 0, 0, '{}')`,
		`INSERT INTO tasks VALUES ('a', 'family', 'c@g.us', 'p', 'cron', '0 8 * * *', 'UTC', 'group', 'active', 5000, NULL, NULL, 1)`,
		`INSERT INTO tasks VALUES ('p', 'family', 'c@g.us', 'p', 'cron', '0 8 * * *', 'UTC', 'group', 'paused', 5000, 4000, 'ok', 1)`,
		`INSERT INTO task_runs VALUES (7, 'p', 4000, 12, 'success', 'ok', NULL)`,
		`INSERT INTO task_runs VALUES (8, 'a', 4500, 0, 'error', NULL, 'boom')`,
	} {
		rawExec(t, s, nil, q)
	}
	// Only up to this step (v4): later ones are not this test's to run.
	if err := s.migrateTo(ctx, upgrades[:3]); err != nil {
		t.Fatal(err)
	}
	p, found, err := s.GetTask(ctx, "p")
	if err != nil || !found || p.Status != TaskPaused || p.PausedBy != ActorOwner || p.LastResult != "ok" || p.ClaimedAt != nil {
		t.Fatalf("paused task after the step: %+v, %v, %v", p, found, err)
	}
	if a, _, err := s.GetTask(ctx, "a"); err != nil || a.Status != TaskActive || a.PausedBy != "" {
		t.Fatalf("active task after the step: %+v, %v", a, err)
	}
	if runs, err := s.TaskRuns(ctx, "p", 0); err != nil || len(runs) != 1 || runs[0].ID != 7 || runs[0].Result != "ok" {
		t.Fatalf("runs of p after the step: %+v, %v", runs, err)
	}
	if id, err := s.AddTaskRun(ctx, TaskRun{TaskID: "a", StartedAt: time.UnixMilli(6000), Status: RunSkipped, Error: "skipped"}); err != nil || id != 9 {
		t.Fatalf("a skipped run after the step: id %d, %v; want 9", id, err)
	}
	// The runs still cascade with their task.
	rawExec(t, s, nil, `DELETE FROM tasks WHERE id = 'a'`)
	var left int
	if err := s.DB().QueryRow(`SELECT count(*) FROM task_runs WHERE task_id = 'a'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d runs of a deleted task left (%v)", left, err)
	}
}
