package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTaskRuns(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	if err := s.CreateTaskWithin(ctx, testTask("t1", "family"), TaskCaps{}); err != nil {
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

func TestTaskRunBadRows(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	if err := s.CreateTaskWithin(ctx, testTask("t1", "family"), TaskCaps{}); err != nil {
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
