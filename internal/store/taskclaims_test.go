package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

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
		if err := s.CreateTaskWithin(ctx, task, TaskCaps{}); err != nil {
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
		if err := s.CreateTaskWithin(ctx, task, TaskCaps{}); err != nil {
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

// twoStoresWithDue opens two stores on one new file, with n tasks of group
// family due at now.
func twoStoresWithDue(t *testing.T, n int, now time.Time) (a, b *Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "two.db")
	a, _ = openTestAt(t, path, nil)
	b, _ = openTestAt(t, path, nil)
	mustPutGroup(t, a, testGroup("family"))
	for i := range n {
		task := testTask(fmt.Sprintf("t%02d", i), "family")
		task.NextRun = &now
		if err := a.CreateTaskWithin(context.Background(), task, TaskCaps{}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func TestClaimDueTwoStoresRace(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	const n = 50
	a, b := twoStoresWithDue(t, n, now)
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
		if err := s.CreateTaskWithin(ctx, task, TaskCaps{}); err != nil {
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
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	a, b := twoStoresWithDue(t, 5, now)
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
	if err := s.CreateTaskWithin(ctx, task, TaskCaps{}); err != nil {
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
