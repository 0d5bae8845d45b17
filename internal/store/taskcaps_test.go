package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countRows counts the rows of table that match where.
func countRows(t *testing.T, s *Store, table, where string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// addTask stores task id of group folder, made at created, and gives it
// status (a pause is its group's).
func addTask(t *testing.T, s *Store, id, folder string, created time.Time, status TaskStatus) {
	t.Helper()
	ctx := context.Background()
	task := testTask(id, folder)
	task.CreatedAt = created
	if err := s.CreateTaskWithin(ctx, task, TaskCaps{}); err != nil {
		t.Fatal(err)
	}
	var err error
	switch status {
	case TaskPaused:
		err = s.PauseTask(ctx, id, ActorGroup)
	case TaskCompleted, TaskCancelled:
		err = s.SetTaskStatus(ctx, id, status)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// R9: the second review scheduled and cancelled tasks in a loop: the cap
// counted only tasks that may run, so the cancelled ones piled up without
// end (1 500 pairs, then a few lists, took the daemon from 26 MB to 3.6 GB).
// Now a group keeps its newest KeepFinishedTasks finished tasks, their runs
// going with the rest, and the loop leaves a bounded number of rows.
func TestScheduleCancelLoopStaysBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	caps := TaskCaps{Counted: 20, Kept: 200}
	created := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	big := strings.Repeat("p", 16<<10)
	for i := range 1500 {
		task := testTask(fmt.Sprintf("t%04d", i), "family")
		task.Prompt, task.CreatedAt = big, created.Add(time.Duration(i)*time.Second)
		if err := s.CreateTaskWithin(ctx, task, caps); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if _, err := s.AddTaskRun(ctx, TaskRun{TaskID: task.ID, StartedAt: task.CreatedAt, Status: RunSuccess, Result: "r"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTaskStatus(ctx, task.ID, TaskCancelled); err != nil {
			t.Fatal(err)
		}
	}
	// The pruning happens on insert: at most the newest KeepFinishedTasks
	// finished ones before the last insert, and the last one.
	if n := countRows(t, s, "tasks", "folder = 'family'"); n > KeepFinishedTasks+1 {
		t.Fatalf("%d tasks kept after 1500 schedule/cancel pairs, want at most %d", n, KeepFinishedTasks+1)
	}
	if n := countRows(t, s, "task_runs", "1"); n > KeepFinishedTasks+1 {
		t.Fatalf("%d task runs kept, want those of the kept tasks only", n)
	}
	if _, found, _ := s.GetTask(ctx, "t1499"); !found {
		t.Fatal("the newest task was pruned")
	}
	if _, found, _ := s.GetTask(ctx, "t0000"); found {
		t.Fatal("the oldest task was kept")
	}
}

// R9: what is pruned, and what is not: finished tasks older than the
// retention, or beyond the newest KeepFinishedTasks; never a task that may
// still run, nor a finished one whose claimed run is not yet recorded, nor
// the group's latest once run (the once gap is measured from it), nor
// another group's tasks.
func TestPruneFinishedTasks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	mustPutGroup(t, s, testGroup("work"))
	now := time.Date(2025, 9, 1, 8, 0, 0, 0, time.UTC)
	old := now.Add(-FinishedTaskRetention - time.Minute)
	addTask(t, s, "old-cancelled", "family", old, TaskCancelled)
	addTask(t, s, "old-active", "family", old, TaskActive)
	addTask(t, s, "old-but-ran", "family", old, TaskCompleted)
	rawExec(t, s, nil, `UPDATE tasks SET last_run = ? WHERE id = 'old-but-ran'`, toMillis(now.Add(-61*time.Minute)))
	addTask(t, s, "old-claimed", "family", old, TaskCancelled)
	rawExec(t, s, nil, `UPDATE tasks SET claimed_at = ? WHERE id = 'old-claimed'`, toMillis(now.Add(-time.Minute)))
	addTask(t, s, "other-group", "work", old, TaskCancelled)
	// The latest once run, then more finished tasks than are kept.
	addTask(t, s, "latest-once", "family", now.Add(-2*time.Hour), TaskCompleted)
	rawExec(t, s, nil, `UPDATE tasks SET schedule_type = 'once', schedule_value = '2025-09-01T07:00:00', last_run = ? WHERE id = 'latest-once'`,
		toMillis(now.Add(-90*time.Minute)))
	for i := range KeepFinishedTasks {
		addTask(t, s, fmt.Sprintf("new-%02d", i), "family", now.Add(-time.Hour+time.Duration(i)*time.Second), TaskCancelled)
	}

	next := testTask("next", "family")
	next.CreatedAt = now
	if err := s.CreateTaskWithin(ctx, next, TaskCaps{}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"old-cancelled": false, // older than the retention
		"old-active":    true,  // may still run
		"old-but-ran":   false, // beyond the newest KeepFinishedTasks
		"old-claimed":   true,  // its run is not recorded yet
		"other-group":   true,  // pruned with its own group
		"latest-once":   true,  // beyond the newest, but the group's latest once run
		"new-00":        true,
		"new-49":        true,
		"next":          true,
	} {
		if _, found, _ := s.GetTask(ctx, id); found != want {
			t.Errorf("task %s kept: %v, want %v", id, found, want)
		}
	}
}

// R9: a group keeps at most caps.Kept tasks, finished ones included,
// checked in the insert's statement (under concurrent calls:
// TestCapsHoldUnderConcurrency).
func TestCreateTaskWithinKeptCap(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	caps := TaskCaps{Kept: 5}
	for i := range 5 {
		if err := s.CreateTaskWithin(ctx, testTask(fmt.Sprintf("t%d", i), "family"), caps); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if err := s.SetTaskStatus(ctx, fmt.Sprintf("t%d", i), TaskCancelled); err != nil {
				t.Fatal(err)
			}
		}
	}
	var kept *TaskKeptError
	err := s.CreateTaskWithin(ctx, testTask("t5", "family"), caps)
	if !errors.As(err, &kept) || kept.Limit != 5 || kept.Folder != "family" || !strings.Contains(err.Error(), "already keeps 5 tasks, finished ones included") {
		t.Fatalf("sixth task beside 3 cancelled and 2 active under a cap of 5: %v, want a TaskKeptError", err)
	}
	if _, found, _ := s.GetTask(ctx, "t5"); found {
		t.Fatal("the refused task was stored")
	}
	// The cap on counted tasks is named first when both hold.
	var limit *TaskLimitError
	if err := s.CreateTaskWithin(ctx, testTask("t5", "family"), TaskCaps{Counted: 2, Kept: 5}); !errors.As(err, &limit) {
		t.Fatalf("at both caps: %v, want a TaskLimitError", err)
	}
	// With a counted cap of 2, only 3 finished tasks are kept under a kept
	// cap of 5, so a group never locks itself out with finished tasks.
	if err := s.SetTaskStatus(ctx, "t3", TaskCancelled); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTaskWithin(ctx, testTask("t5", "family"), TaskCaps{Counted: 2, Kept: 5}); err != nil {
		t.Fatalf("beside 4 cancelled and 1 active under caps of 2 and 5: %v", err)
	}
	if n := countRows(t, s, "tasks", "folder = 'family' AND status = 'cancelled'"); n != 3 {
		t.Fatalf("%d cancelled tasks kept, want 3", n)
	}
}

// R9: a list is filtered and limited by its query: active and paused
// tasks unless finished ones are asked for, the newest first, and how many
// more there are.
func TestListTasksPage(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	mustPutGroup(t, s, testGroup("work"))
	created := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	for i := range 30 {
		status := []TaskStatus{TaskActive, TaskCancelled, TaskPaused}[i%3]
		addTask(t, s, fmt.Sprintf("f%02d", i), "family", created.Add(time.Duration(i)*time.Minute), status)
	}
	addTask(t, s, "w0", "work", created.Add(time.Hour), TaskActive)
	ids := func(list []Task) string {
		var b strings.Builder
		for _, task := range list {
			b.WriteString(task.ID + " ")
		}
		return strings.TrimSpace(b.String())
	}
	for _, tc := range []struct {
		q    TaskQuery
		want string
		more int
	}{
		{TaskQuery{Folder: "family", Limit: 4}, "f29 f27 f26 f24", 16},
		{TaskQuery{Folder: "family", Limit: 100}, "", 0},
		{TaskQuery{Folder: "family", Finished: true, Limit: 3}, "f29 f28 f27", 27},
		{TaskQuery{Limit: 2}, "w0 f29", 19},
		{TaskQuery{Folder: "work", Finished: true, Limit: 5}, "w0", 0},
		{TaskQuery{Folder: "nobody", Limit: 5}, "", 0},
	} {
		list, more, err := s.ListTasksPage(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" && tc.q.Folder == "family" {
			if len(list) != 20 || more != 0 {
				t.Errorf("%+v: %d tasks, %d more; want the 20 active and paused, none more", tc.q, len(list), more)
			}
			for _, task := range list {
				if task.Status != TaskActive && task.Status != TaskPaused {
					t.Errorf("%+v: task %s is %s", tc.q, task.ID, task.Status)
				}
			}
			continue
		}
		if got := ids(list); got != tc.want || more != tc.more {
			t.Errorf("%+v: %q and %d more, want %q and %d more", tc.q, got, more, tc.want, tc.more)
		}
	}
	if _, _, err := s.ListTasksPage(ctx, TaskQuery{}); err == nil {
		t.Error("a list without a limit was answered")
	}
}

// R9: once tasks got around the shortest interval: a non-main group could
// keep up to its cap of once tasks due a second apart, each run scheduling
// the next. The second review had 19 once tasks due within 20 s accepted
// while the shortest interval was 5 minutes. Now a group's once tasks are
// at least the gap apart — from each other, pending, claimed or run — in
// the insert's and the update's own statement; one reminder alone is
// still fine, however soon.
func TestOnceTasksKeepTheirGap(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	const gap = 5 * time.Minute
	caps := TaskCaps{Counted: 20, OnceGap: gap}
	now := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	once := func(id string, at time.Time) Task {
		task := testTask(id, "family")
		task.ScheduleType, task.ScheduleValue, task.NextRun = ScheduleOnce, at.Format("2006-01-02T15:04:05"), timePtr(at)
		task.CreatedAt = now
		return task
	}
	first := now.Add(time.Minute) // "remind me in one minute"
	if err := s.CreateTaskWithin(ctx, once("o00", first), caps); err != nil {
		t.Fatal(err)
	}
	var near *OnceTooCloseError
	for i := 1; i < 20; i++ {
		err := s.CreateTaskWithin(ctx, once(fmt.Sprintf("o%02d", i), first.Add(time.Duration(i)*time.Second)), caps)
		if !errors.As(err, &near) || !near.Near.Equal(first) || near.Gap != gap || near.Folder != "family" {
			t.Fatalf("once task %d s after another: %v, want a OnceTooCloseError naming the first", i, err)
		}
	}
	if n := countRows(t, s, "tasks", "folder = 'family'"); n != 1 {
		t.Fatalf("%d once tasks stored, want 1", n)
	}
	// Exactly the gap apart, on either side, is fine; other kinds and
	// other groups are not held to it, nor is a caller without a gap.
	for _, task := range []Task{once("before", first.Add(-gap+time.Minute)), once("after", first.Add(gap))} {
		if task.ID == "before" {
			task.NextRun = timePtr(first.Add(-gap)) // in the past here: the store does not judge that
		}
		if err := s.CreateTaskWithin(ctx, task, caps); err != nil {
			t.Errorf("once task %s, the gap apart: %v", task.ID, err)
		}
	}
	if err := s.CreateTaskWithin(ctx, testTask("cron", "family"), caps); err != nil {
		t.Errorf("a cron task: %v", err)
	}
	if err := s.CreateTaskWithin(ctx, once("main's", first.Add(time.Second)), TaskCaps{}); err != nil {
		t.Errorf("without a gap: %v", err)
	}
	mustPutGroup(t, s, testGroup("work"))
	other := once("work", first)
	other.Folder = "work"
	if err := s.CreateTaskWithin(ctx, other, caps); err != nil {
		t.Errorf("another group's once task at the same time: %v", err)
	}
	rawExec(t, s, nil, `DELETE FROM tasks WHERE id IN ('before', 'after', 'main''s', 'cron', 'work')`)

	// A cancelled once task that never ran leaves no mark.
	if err := s.SetTaskStatus(ctx, "o00", TaskCancelled); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTaskWithin(ctx, once("o01", first.Add(time.Second)), caps); err != nil {
		t.Fatalf("beside a cancelled once task: %v", err)
	}
	// A claimed run counts from its claim, a recorded one from its start.
	claimed, err := s.ClaimDue(ctx, first.Add(time.Second), 0, time.Hour, func(Task) (*time.Time, error) { return nil, nil })
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %v", claimed, err)
	}
	runAt := first.Add(time.Second)
	if err := s.CreateTaskWithin(ctx, once("during", runAt.Add(30*time.Second)), caps); !errors.As(err, &near) || !near.Near.Equal(runAt) {
		t.Fatalf("a once task 30 s after a claimed run: %v, want refused", err)
	}
	if _, err := s.AddTaskRun(ctx, TaskRun{TaskID: "o01", StartedAt: runAt, Status: RunSuccess, Result: "done"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTaskWithin(ctx, once("chained", runAt.Add(gap-time.Second)), caps); !errors.As(err, &near) || !near.Near.Equal(runAt) {
		t.Fatalf("a once task just under the gap after a run: %v, want refused", err)
	}
	if err := s.CreateTaskWithin(ctx, once("chained", runAt.Add(gap)), caps); err != nil {
		t.Fatalf("a once task the gap after the last run: %v", err)
	}

	// update_task is held to the same gap, leaving the task as it was; the
	// task itself is not in its way.
	hourly := testTask("hourly", "family")
	hourly.ScheduleType, hourly.ScheduleValue = ScheduleInterval, "3600000"
	if err := s.CreateTaskWithin(ctx, hourly, caps); err != nil {
		t.Fatal(err)
	}
	edit := once("hourly", runAt.Add(gap+time.Second))
	if err := s.UpdateTask(ctx, edit, ActorGroup, gap); !errors.As(err, &near) || !near.Near.Equal(runAt.Add(gap)) {
		t.Fatalf("an interval task made a once task a second after another: %v, want refused", err)
	}
	if got, _, _ := s.GetTask(ctx, "hourly"); got.ScheduleType != ScheduleInterval {
		t.Fatalf("the refused update changed the task to %s", got.ScheduleType)
	}
	moved := once("chained", runAt.Add(gap+time.Minute))
	if err := s.UpdateTask(ctx, moved, ActorGroup, gap); err != nil {
		t.Fatalf("a once task moved a minute: %v", err)
	}
	if err := s.UpdateTask(ctx, edit, ActorMain, 0); err != nil {
		t.Fatalf("without a gap: %v", err)
	}
}

// R9: concurrent creations cannot together pass a cap, nor break the once
// gap: the checks are the insert's own statement.
func TestCapsHoldUnderConcurrency(t *testing.T) {
	at := time.Date(2025, 7, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		caps TaskCaps
		once bool // once tasks, due a second apart
		want int
	}{
		{"counted", TaskCaps{Counted: 5}, false, 5},
		{"kept", TaskCaps{Kept: 4}, false, 4},
		{"once gap", TaskCaps{OnceGap: time.Minute}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openTest(t)
			mustPutGroup(t, s, testGroup("race"))
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					task := testTask(fmt.Sprintf("r%02d", i), "race")
					if tc.once {
						due := at.Add(time.Duration(i) * time.Second)
						task.ScheduleType, task.ScheduleValue, task.NextRun = ScheduleOnce, due.Format("2006-01-02T15:04:05"), &due
					}
					s.CreateTaskWithin(ctx, task, tc.caps)
				})
			}
			wg.Wait()
			if n := countRows(t, s, "tasks", "folder = 'race'"); n != tc.want {
				t.Fatalf("%d tasks after 20 concurrent creations under %+v, want %d", n, tc.caps, tc.want)
			}
		})
	}
}
