package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// openStore opens (creating) the database at path with the group "family".
func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st := testenv.OpenStore(t, path, store.Options{})
	if err := st.PutGroup(context.Background(), store.Group{Folder: "family", Name: "Family", Trigger: "@Andy", AddedAt: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	return st
}

// addTask stores an active task of "family" that is next due at next.
func addTask(t testing.TB, st *store.Store, id string, kind store.ScheduleType, value string, next time.Time) store.Task {
	t.Helper()
	task := store.Task{
		ID: id, Folder: "family", ChatJID: "family@g.us", Prompt: "do " + id,
		ScheduleType: kind, ScheduleValue: value, Timezone: "Europe/Berlin",
		ContextMode: store.ContextIsolated, Status: store.TaskActive, NextRun: &next,
		CreatedAt: time.Now(),
	}
	if err := st.CreateTaskWithin(context.Background(), task, store.TaskCaps{}); err != nil {
		t.Fatal(err)
	}
	return task
}

// dispatches records what an engine dispatched, and when.
type dispatches struct {
	mu    sync.Mutex
	at    map[string][]time.Time
	tasks []store.Task
}

func newDispatches() *dispatches {
	return &dispatches{at: map[string][]time.Time{}}
}

func (d *dispatches) dispatch(t store.Task) {
	now := time.Now()
	d.mu.Lock()
	d.at[t.ID] = append(d.at[t.ID], now)
	d.tasks = append(d.tasks, t)
	d.mu.Unlock()
}

func (d *dispatches) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.at[id])
}

func (d *dispatches) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tasks)
}

// startEngine runs e, dispatching to dispatch, until the test ends.
func startEngine(t testing.TB, e *Engine, dispatch func(store.Task)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, dispatch) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// countingClock is the wall clock, counting its reads. Every round of the
// engine (a look for due tasks) reads it, so an engine that did not read it
// did not wake up.
type countingClock struct{ n atomic.Int64 }

func (c *countingClock) now() time.Time { c.n.Add(1); return time.Now() }
func (c *countingClock) reads() int64   { return c.n.Load() }

func TestEngineRequiresStoreAndDispatch(t *testing.T) {
	if err := New(Options{}).Run(context.Background(), nil); err == nil {
		t.Fatal("Run without a store and a dispatcher succeeded")
	}
}

// The engine tests run in a synctest bubble: time is fake, so a test shows
// that nothing happened by sleeping through the time it would have happened
// in, and synctest.Wait lets the engine finish what it does before the test
// looks. Dispatch times are then exact.

func TestEngineDispatchesOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir()+"/s.db")
		due := time.Now().Add(300 * time.Millisecond)
		addTask(t, st, "soon", store.ScheduleInterval, "3600000", due)
		d := newDispatches()
		startEngine(t, New(Options{Store: st, Logger: quietLogger()}), d.dispatch)
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()

		if n := d.count("soon"); n != 1 {
			t.Fatalf("dispatched %d times at its due time, want 1", n)
		}
		if at := d.at["soon"][0]; !at.Equal(due) {
			t.Fatalf("dispatched at %v, want its due time %v", at, due)
		}
		if got := d.tasks[0]; got.NextRun == nil || !got.NextRun.Equal(due.Add(time.Hour)) {
			t.Fatalf("dispatched task's NextRun = %v, want due + 1h", got.NextRun)
		}
		stored, _, _ := st.GetTask(context.Background(), "soon")
		if !stored.NextRun.Equal(*d.tasks[0].NextRun) || stored.Status != store.TaskActive {
			t.Fatalf("stored after the claim: next %v status %s", stored.NextRun, stored.Status)
		}
		// It is not dispatched again until its next run.
		time.Sleep(time.Hour - time.Millisecond)
		synctest.Wait()
		if n := d.count("soon"); n != 1 {
			t.Fatalf("dispatched %d times", n)
		}
	})
}

func TestEngineChangedWakesIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir()+"/s.db")
		d := newDispatches()
		e := New(Options{Store: st, Logger: quietLogger()})
		startEngine(t, e, d.dispatch)
		synctest.Wait() // the engine sleeps: nothing is due

		due := time.Now().Add(200 * time.Millisecond)
		addTask(t, st, "new", store.ScheduleInterval, "3600000", due)
		e.Changed()
		e.Changed() // never blocks, however often
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if d.total() != 1 || !d.at["new"][0].Equal(due) {
			t.Fatalf("dispatches %v, want one of \"new\" at its due time %v", d.at, due)
		}
	})
}

// The engine does not poll: a task stored behind its back (no Changed) is
// only seen at the next timer expiry, which MaxSleep bounds.
func TestEngineDoesNotPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir()+"/s.db")
		addTask(t, st, "far", store.ScheduleInterval, "3600000", time.Now().Add(24*time.Hour))
		d, clock := newDispatches(), &countingClock{}
		startEngine(t, New(Options{Store: st, Logger: quietLogger(), MaxSleep: 1500 * time.Millisecond, Clock: clock.now}), d.dispatch)
		synctest.Wait()
		started, reads := time.Now(), clock.reads()
		if reads == 0 {
			t.Fatal("the engine did not look for due tasks at start")
		}

		addTask(t, st, "unannounced", store.ScheduleInterval, "3600000", time.Now().Add(50*time.Millisecond))
		time.Sleep(1500*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if d.total() != 0 || clock.reads() != reads {
			t.Fatalf("before MaxSleep ended: %d dispatches, %d clock reads more; the engine polled", d.total(), clock.reads()-reads)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if d.total() != 1 || d.at["unannounced"][0].Sub(started) != 1500*time.Millisecond {
			t.Fatalf("unannounced task dispatched at %v, want when the 1.5 s sleep ended", d.at)
		}
	})
}

// Idle, the engine does not wake up between due times (MaxSleep apart).
func TestEngineIdleWakeups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir()+"/s.db")
		addTask(t, st, "far", store.ScheduleCron, "0 9 * * *", time.Now().Add(2*time.Hour))
		clock := &countingClock{}
		startEngine(t, New(Options{Store: st, Logger: quietLogger(), Clock: clock.now}), newDispatches().dispatch)
		synctest.Wait()
		reads := clock.reads()
		if reads == 0 {
			t.Fatal("the engine did not look for due tasks at start")
		}
		time.Sleep(DefaultMaxSleep - time.Nanosecond)
		synctest.Wait()
		if n := clock.reads() - reads; n != 0 {
			t.Fatalf("%d clock reads in %v idle after the start, want none (no wake-up)", n, DefaultMaxSleep)
		}
	})
}

// Runs missed while the host was down: one run each at start, then on
// schedule — no burst of catch-up runs.
func TestEngineMissedRunsRunOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := openStore(t, t.TempDir()+"/s.db")
		now := time.Now()
		minuteDue := now.Add(-10*time.Minute - 30*time.Second)
		addTask(t, st, "every-minute", store.ScheduleInterval, "60000", minuteDue) // 11 runs missed
		addTask(t, st, "hourly", store.ScheduleCron, "0 * * * *", now.Add(-72*time.Hour))
		addTask(t, st, "once", store.ScheduleOnce, "2020-01-01T00:00:00Z", now.Add(-30*24*time.Hour))
		d := newDispatches()
		startEngine(t, New(Options{Store: st, Logger: quietLogger()}), d.dispatch)
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		for _, id := range []string{"every-minute", "hourly", "once"} {
			if n := d.count(id); n != 1 {
				t.Errorf("%s dispatched %d times, want 1", id, n)
			}
		}
		minute, _, _ := st.GetTask(ctx, "every-minute")
		// The next run is on the task's own minute grid, the first after now.
		if !minute.NextRun.After(now) || minute.NextRun.Sub(now) > time.Minute || minute.NextRun.Sub(minuteDue)%time.Minute != 0 {
			t.Errorf("every-minute next run %v: want the first after now on its grid (from %v)", minute.NextRun, minuteDue)
		}
		hourly, _, _ := st.GetTask(ctx, "hourly")
		if !hourly.NextRun.After(now) || hourly.NextRun.Sub(now) > time.Hour || hourly.NextRun.Minute() != 0 {
			t.Errorf("hourly next run %v: want the next full hour", hourly.NextRun)
		}
		once, _, _ := st.GetTask(ctx, "once")
		if once.Status != store.TaskCompleted || once.NextRun != nil {
			t.Errorf("once after its run: status %s next %v", once.Status, once.NextRun)
		}
	})
}

// A wall clock set forward is noticed at the next wake-up (MaxSleep at the
// latest); one set back makes the engine wake early and go back to sleep.
func TestEngineClockJumps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := openStore(t, t.TempDir()+"/s.db")
		var offset atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		const maxSleep = 400 * time.Millisecond
		addTask(t, st, "in-an-hour", store.ScheduleInterval, "86400000", time.Now().Add(time.Hour))
		d := newDispatches()
		e := New(Options{Store: st, Logger: quietLogger(), Clock: clock, MaxSleep: maxSleep})
		startEngine(t, e, d.dispatch)
		synctest.Wait()

		offset.Store(int64(time.Hour + time.Second)) // the clock jumps an hour forward
		time.Sleep(maxSleep)
		synctest.Wait()
		if n := d.count("in-an-hour"); n != 1 {
			t.Fatalf("forward jump not noticed within MaxSleep: %d dispatches", n)
		}

		// Now set back by two hours: a task due in a second (by the clock as it
		// was) is not run early, when the timer set before the change fires.
		addTask(t, st, "soon", store.ScheduleInterval, "86400000", clock().Add(time.Second))
		e.Changed()
		synctest.Wait() // the timer is set for the task
		offset.Add(int64(-2 * time.Hour))
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if n := d.count("soon"); n != 0 {
			t.Fatalf("task dispatched %d times although the clock says it is due in two hours", n)
		}
	})
}

func TestRecordRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := openStore(t, t.TempDir()+"/s.db")
		addTask(t, st, "once", store.ScheduleOnce, "2030-01-01T00:00:00Z", time.Now().Add(100*time.Millisecond))
		addTask(t, st, "failing", store.ScheduleInterval, "60000", time.Now().Add(100*time.Millisecond))
		d := newDispatches()
		var logs bytes.Buffer
		e := New(Options{Store: st, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		startEngine(t, e, d.dispatch)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if d.total() != 2 {
			t.Fatalf("%d dispatches, want 2", d.total())
		}

		byID := map[string]store.Task{}
		for _, task := range d.tasks {
			byID[task.ID] = task
		}
		start := time.Now().Add(-1500 * time.Millisecond)
		long := strings.Repeat("x", 10000)
		if err := e.RecordRun(ctx, byID["once"], start, long, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.RecordRun(ctx, byID["failing"], start, "ignored", errors.New("container timed out")); err != nil {
			t.Fatal(err)
		}

		once, _, _ := st.GetTask(ctx, "once")
		if once.Status != store.TaskCompleted || once.NextRun != nil || once.LastRun == nil || !once.LastRun.Equal(start) {
			t.Fatalf("once task after its run: status %s next %v last run %v (started %v)", once.Status, once.NextRun, once.LastRun, start)
		}
		if len(once.LastResult) > MaxRecordBytes || !strings.HasPrefix(once.LastResult, "xxx") || !strings.Contains(once.LastResult, "truncated, 10000 bytes") {
			t.Fatalf("last result not truncated to %d bytes: %d bytes", MaxRecordBytes, len(once.LastResult))
		}
		runs, err := st.TaskRuns(ctx, "once", 0)
		if err != nil || len(runs) != 1 || runs[0].Status != store.RunSuccess || runs[0].Duration != 1500*time.Millisecond || runs[0].Result != once.LastResult {
			t.Fatalf("once runs = %+v, %v", runs, err)
		}
		failing, _, _ := st.GetTask(ctx, "failing")
		if failing.Status != store.TaskActive || failing.LastResult != "error: container timed out" {
			t.Fatalf("failing task: status %s last result %q", failing.Status, failing.LastResult)
		}
		runs, _ = st.TaskRuns(ctx, "failing", 0)
		if len(runs) != 1 || runs[0].Status != store.RunError || runs[0].Error != "container timed out" || runs[0].Result != "" {
			t.Fatalf("failing runs = %+v", runs)
		}
		synctest.Wait()
		if out := logs.String(); !strings.Contains(out, "task due") || !strings.Contains(out, "task ran") {
			t.Fatalf("runs not logged:\n%s", out)
		}

		// A once task run outside the engine (still active) is completed too.
		manual := addTask(t, st, "manual", store.ScheduleOnce, "2030-01-01T00:00:00Z", time.Now().Add(time.Hour))
		if err := e.RecordRun(ctx, manual, time.Now(), "done", nil); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := st.GetTask(ctx, "manual"); got.Status != store.TaskCompleted {
			t.Fatalf("manual once task status %s, want completed", got.Status)
		}
	})
}

// Two engines on two Stores of the same database file (as two processes
// would be) race for 50 tasks due at the same instant, three times over:
// every run is dispatched exactly once.
func TestTwoEnginesRunEachTaskOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		path := t.TempDir() + "/shared.db"
		a, b := openStore(t, path), openStore(t, path)
		const n = 50
		due := time.Now().Add(400 * time.Millisecond)
		for i := range n {
			addTask(t, a, fmt.Sprintf("t%02d", i), store.ScheduleInterval, "3600000", due)
		}
		da, db := newDispatches(), newDispatches()
		// Handing a task over takes a moment, as in the host; between two claim
		// transactions of one engine the other gets the lock, so they interleave.
		// The run is recorded at once, ending its claim, as the host does at the
		// end of a run.
		slow := func(d *dispatches) func(store.Task) {
			return func(task store.Task) {
				time.Sleep(2 * time.Millisecond)
				d.dispatch(task)
				if _, err := a.AddTaskRun(ctx, store.TaskRun{TaskID: task.ID, StartedAt: time.Now(), Status: store.RunSuccess}); err != nil {
					t.Error(err)
				}
			}
		}
		startEngine(t, New(Options{Store: a, Logger: quietLogger(), Batch: 5}), slow(da))
		startEngine(t, New(Options{Store: b, Logger: quietLogger(), Batch: 5}), slow(db))

		for round := 1; round <= 3; round++ {
			time.Sleep(time.Until(due) + 300*time.Millisecond) // time for a double run to show
			synctest.Wait()
			if got := da.total() + db.total(); got != round*n {
				t.Fatalf("round %d: %d dispatches in all, want %d", round, got, round*n)
			}
			for i := range n {
				id := fmt.Sprintf("t%02d", i)
				if c := da.count(id) + db.count(id); c != round {
					t.Fatalf("round %d: task %s dispatched %d times, want %d", round, id, c, round)
				}
			}
			t.Logf("round %d: engine A dispatched %d, engine B %d", round, da.total(), db.total())
			due = due.Add(time.Hour) // all due again at one instant, an interval later
		}
		if da.total() == 0 || db.total() == 0 {
			t.Fatalf("one engine claimed everything (A %d, B %d): the race was not exercised", da.total(), db.total())
		}
	})
}

// A host that claimed due runs and died before dispatching them: the
// restarted engine does not run them again (the runs are lost, by design:
// see Engine); the tasks wait for their following run.
func TestCrashAfterClaimNeverRunsTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		path := t.TempDir() + "/crash.db"
		crashed := openStore(t, path)
		due := time.Now().Add(-time.Second)
		for i := range 10 {
			addTask(t, crashed, fmt.Sprintf("t%d", i), store.ScheduleInterval, "3600000", due)
		}
		now := time.Now()
		claimed, err := crashed.ClaimDue(ctx, now, 0, DefaultRunLease, func(t store.Task) (*time.Time, error) { return NextRun(t, now) })
		if err != nil || len(claimed) != 10 {
			t.Fatalf("claim = %d tasks, %v", len(claimed), err)
		}
		crashed.Close() // the host dies here, before dispatching

		restarted := openStore(t, path)
		d := newDispatches()
		startEngine(t, New(Options{Store: restarted, Logger: quietLogger()}), d.dispatch)
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		if d.total() != 0 {
			t.Fatalf("restarted engine dispatched %d claimed runs again", d.total())
		}
		for i := range 10 {
			task, _, err := restarted.GetTask(ctx, fmt.Sprintf("t%d", i))
			if err != nil || task.NextRun == nil || !task.NextRun.Equal(due.Add(time.Hour)) {
				t.Fatalf("task t%d after the lost run: next %v (%v), want %v", i, task.NextRun, err, due.Add(time.Hour))
			}
		}
	})
}
