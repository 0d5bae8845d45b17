package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// R9: a group's scheduled tasks are capped (atomically: TestCapsHoldUnderConcurrency);
// finished ones do not count.
func TestCreateTaskWithinLimit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	mustPutGroup(t, s, testGroup("work"))
	for i := range 3 {
		if err := s.CreateTaskWithin(ctx, testTask(fmt.Sprintf("t%d", i), "family"), TaskCaps{Counted: 3}); err != nil {
			t.Fatal(err)
		}
	}
	var limit *TaskLimitError
	if err := s.CreateTaskWithin(ctx, testTask("t3", "family"), TaskCaps{Counted: 3}); !errors.As(err, &limit) || limit.Limit != 3 || limit.Folder != "family" {
		t.Fatalf("fourth task: %v, want a TaskLimitError of 3", err)
	}
	if _, found, _ := s.GetTask(ctx, "t3"); found {
		t.Fatal("the refused task was stored")
	}
	if err := s.CreateTaskWithin(ctx, testTask("w0", "work"), TaskCaps{Counted: 3}); err != nil {
		t.Fatalf("another group's cap: %v", err)
	}
	if err := s.PauseTask(ctx, "t0", ActorGroup); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTaskWithin(ctx, testTask("t3", "family"), TaskCaps{Counted: 3}); !errors.As(err, &limit) {
		t.Fatalf("a paused task still counts: %v", err)
	}
	if err := s.SetTaskStatus(ctx, "t0", TaskCancelled); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTaskWithin(ctx, testTask("t3", "family"), TaskCaps{Counted: 3}); err != nil {
		t.Fatalf("after a cancel: %v", err)
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
			if err := s.CreateTaskWithin(ctx, task, TaskCaps{Counted: limit}); err != nil {
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
			if err := s.CreateTaskWithin(ctx, testTask("extra", "family"), TaskCaps{Counted: limit}); !errors.As(err, &limitErr) {
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
			errEdit := s.UpdateTask(ctx, edit, ActorGroup, 0)
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
		if err := s.CreateTaskWithin(ctx, testTask(fmt.Sprintf("t%d", i), "family"), TaskCaps{}); err != nil {
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
	if err := s.CreateTaskWithin(ctx, task, TaskCaps{Counted: 1}); err != nil {
		t.Fatal(err)
	}
	noNext := func(Task) (*time.Time, error) { return nil, nil }
	if claimed, err := s.ClaimDue(ctx, due, 0, time.Hour, noNext); err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	// The host stops here: the run is never recorded.
	if err := s.CreateTaskWithin(ctx, testTask("next", "family"), TaskCaps{Counted: 1}); err == nil {
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
	if err := s.CreateTaskWithin(ctx, testTask("next", "family"), TaskCaps{Counted: 1}); err != nil {
		t.Fatalf("after the lost claim ended: %v", err)
	}
}
