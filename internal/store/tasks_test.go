package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
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
			wantErrText(t, task.Validate(), tc.wantErr)
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
		if err := s.CreateTaskWithin(ctx, task, TaskCaps{}); err != nil {
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

	if err := s.CreateTaskWithin(ctx, t1, TaskCaps{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate id: err = %v", err)
	}
	orphan := testTask("t3", "nobody")
	if err := s.CreateTaskWithin(ctx, orphan, TaskCaps{}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `no group "nobody"`) {
		t.Fatalf("task for a missing group: err = %v", err)
	}
	bad := testTask("t4", "family")
	bad.Timezone = "Nowhere/Land"
	if err := s.CreateTaskWithin(ctx, bad, TaskCaps{}); err == nil {
		t.Fatal("invalid task created")
	}

	for _, tc := range []struct {
		folder string
		want   []string
	}{
		{"", []string{"t2", "t1"}},
		{"family", []string{"t1"}},
		{"work", []string{"t2"}},
		{"other", nil},
	} {
		list, _, err := s.ListTasksPage(ctx, TaskQuery{Folder: tc.folder, Finished: true, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, task := range list {
			ids = append(ids, task.ID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("ListTasksPage(%q) = %v, want %v", tc.folder, ids, tc.want)
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
	if err := s.UpdateTask(ctx, upd, ActorGroup, 0); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.GetTask(ctx, "t1")
	want := upd
	want.Status, want.PausedBy, want.ContextMode = TaskPaused, ActorGroup, t1.ContextMode
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateTask = %+v\nwant %+v", got, want)
	}
	upd.ScheduleType = "never"
	if err := s.UpdateTask(ctx, upd, ActorGroup, 0); err == nil {
		t.Fatal("UpdateTask accepted an invalid schedule type")
	}
	missing := testTask("nope", "family")
	if err := s.UpdateTask(ctx, missing, ActorMain, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateTask(missing) = %v", err)
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
			if err := s.CreateTaskWithin(ctx, good, TaskCaps{}); err != nil {
				t.Fatal(err)
			}
			rawExec(t, s, []string{"ignore_check_constraints=ON", "foreign_keys=OFF"}, insert, append([]any{"bad"}, tc.args...)...)

			for name, q := range map[string]TaskQuery{
				"ListTasksPage(all)":    {Finished: true, Limit: 10},
				"ListTasksPage(family)": {Folder: "family", Finished: true, Limit: 10},
			} {
				got, _, err := s.ListTasksPage(ctx, q)
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
			if err := s.CreateTaskWithin(ctx, testTask("t1", "family"), TaskCaps{}); err != nil {
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
			errEdit := s.UpdateTask(ctx, edit, tc.by, 0)
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
	if err := s.CreateTaskWithin(ctx, testTask("t1", "family"), TaskCaps{}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTaskStatus(ctx, "t1", TaskCancelled); err != nil {
		t.Fatal(err)
	}
	for _, by := range []TaskActor{ActorGroup, ActorMain, ActorOwner} {
		edit := testTask("t1", "family")
		for name, err := range map[string]error{
			"resume":   s.ResumeTask(ctx, "t1", next, by, 0),
			"update":   s.UpdateTask(ctx, edit, by, 0),
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
