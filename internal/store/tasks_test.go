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
	if err := s.SetTaskStatus(ctx, "t1", TaskPaused); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetTask(ctx, "t1"); got.Status != TaskPaused {
		t.Fatalf("status = %q, want paused", got.Status)
	}
	if err := s.SetTaskStatus(ctx, "t1", "frozen"); err == nil {
		t.Fatal("unknown status accepted")
	}
	if err := s.SetTaskStatus(ctx, "nope", TaskActive); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status of a missing task: err = %v", err)
	}

	// UpdateTask changes prompt, schedule and next run only.
	upd := t1
	upd.Prompt = "New prompt"
	upd.ScheduleType, upd.ScheduleValue, upd.Timezone = ScheduleOnce, "2025-09-01T09:00:00", "UTC"
	upd.NextRun = timePtr(time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC))
	upd.Status = TaskCancelled     // ignored
	upd.ContextMode = ContextGroup // ignored
	if err := s.UpdateTask(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.GetTask(ctx, "t1")
	want := upd
	want.Status, want.ContextMode = TaskPaused, t1.ContextMode
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateTask = %+v\nwant %+v", got, want)
	}
	upd.ScheduleType = "never"
	if err := s.UpdateTask(ctx, upd); err == nil {
		t.Fatal("UpdateTask accepted an invalid schedule type")
	}
	missing := testTask("nope", "family")
	if err := s.UpdateTask(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateTask(missing) = %v", err)
	}

	if err := s.SetTaskNextRun(ctx, "t1", nil); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetTask(ctx, "t1"); got.NextRun != nil {
		t.Fatalf("NextRun = %v, want nil", got.NextRun)
	}

	if err := s.DeleteTask(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.GetTask(ctx, "t1"); found {
		t.Fatal("task still there after DeleteTask")
	}
	if err := s.DeleteTask(ctx, "t1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: err = %v", err)
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
	// validation would refuse.
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
		{"negative next run", []any{"family", "cron", "* * * * *", "UTC", "group", "active", -1}, "column next_run: negative time"},
		{"next run as text", []any{"family", "cron", "* * * * *", "UTC", "group", "active", "soon"}, "column next_run: want integer"},
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
	rawExec(t, s, nil, `INSERT INTO task_runs VALUES (101, 't1', 11, -7, 'success', NULL, NULL)`)
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
	claimed, err := s.ClaimDue(ctx, now, 2, next)
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
	claimed, err = s.ClaimDue(ctx, now, 0, next)
	if err != nil || len(claimed) != 1 || claimed[0].ID != "exact" {
		t.Fatalf("second ClaimDue = %+v, %v; want only exact", claimed, err)
	}
	// Everything due has been claimed once: nothing is left to claim at now.
	if claimed, err := s.ClaimDue(ctx, now, 0, next); err != nil || len(claimed) != 0 {
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
	claimed, err := s.ClaimDue(ctx, now, 0, func(task Task) (*time.Time, error) {
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
				claimed, err := s.ClaimDue(ctx, now, 3, next)
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
		if err := s.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	// Text sorts after every number; a text next_run must not hide the rest.
	rawExec(t, s, nil, `UPDATE tasks SET next_run = 'soon' WHERE id = 'unscheduled'`)
	due, err := s.NextDue(ctx)
	if err != nil || due == nil || !due.Equal(base.Add(time.Second)) {
		t.Fatalf("NextDue = %v, %v; want %v", due, err, base.Add(time.Second))
	}

	// One index entry, not a scan of the tasks.
	rows, err := s.DB().Query(`EXPLAIN QUERY PLAN `+nextDueQuery, maxStoredMillis)
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
	claimed, err := a.ClaimDue(ctx, now, 0, func(task Task) (*time.Time, error) {
		if calls++; calls == 3 { // a has read the due tasks and claimed two of them
			bctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			inner, innerErr = b.ClaimDue(bctx, now, 0, next)
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
	if again, err := b.ClaimDue(ctx, now, 0, next); err != nil || len(again) != 0 {
		t.Fatalf("claim after the other's commit = %d tasks, %v; want none", len(again), err)
	}
}
