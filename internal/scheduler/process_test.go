package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// These tests race real processes on one database file: the test binary
// re-runs itself as a child (TestSchedulerChildProcess) in one of these modes.
const (
	childEngine          = "engine"            // run an engine until the deadline; each dispatch records a run at once
	childCrashMidClaim   = "crash-mid-claim"   // die inside the claim transaction, after 25 tasks were updated in it
	childCrashAfterClaim = "crash-after-claim" // claim 20 tasks, print their ids, die before dispatching them
)

// TestSchedulerChildProcess is not a test: it is the child of the tests
// below, and skips when run by go test.
func TestSchedulerChildProcess(t *testing.T) {
	mode := os.Getenv("NANOCLAW_SCHEDULER_CHILD")
	if mode == "" {
		t.Skip("helper process for the multi-process tests")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv("NANOCLAW_SCHEDULER_DB"), store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	now := time.Now()
	switch mode {
	case childEngine:
		// Runs until the parent interrupts it (or, as a safety net, 30 s).
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		e := New(Options{Store: st, Logger: quietLogger(), Batch: 5})
		err := e.Run(ctx, func(task store.Task) {
			if err := e.RecordRun(ctx, task, time.Now(), "run by pid "+strconv.Itoa(os.Getpid()), nil); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	case childCrashMidClaim:
		n := 0
		st.ClaimDue(ctx, now, 0, DefaultRunLease, func(task store.Task) (*time.Time, error) {
			if n++; n > 25 {
				os.Exit(3) // the transaction holds 25 updates, uncommitted
			}
			return NextRun(task, now)
		})
		os.Exit(1) // not reached when there are more than 25 due tasks
	case childCrashAfterClaim:
		claimed, err := st.ClaimDue(ctx, now, 20, DefaultRunLease, func(task store.Task) (*time.Time, error) { return NextRun(task, now) })
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, c := range claimed {
			fmt.Println(c.ID)
		}
		os.Exit(4)
	}
	os.Exit(2)
}

// skipInShortMode leaves these tests out of -short runs (make race): their
// engines race in child processes, which the race detector makes slow, and
// the in-process tests already cover the engine's own goroutines.
func skipInShortMode(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the multi-process tests run without -short")
	}
}

// childCommand is the test binary re-run as a child in mode.
func childCommand(mode, db string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSchedulerChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NANOCLAW_SCHEDULER_CHILD="+mode, "NANOCLAW_SCHEDULER_DB="+db)
	return cmd
}

// exitCode reports how a child ended; 2 is a failure inside it.
func exitCode(t *testing.T, mode string, err error, stderr *bytes.Buffer) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.ExitCode() == 2 {
			t.Errorf("child %s failed: %s", mode, stderr.String())
		}
		return exit.ExitCode()
	}
	t.Fatalf("child %s: %v", mode, err)
	return -1
}

// runChild runs a child in a mode that ends by itself and returns its
// stdout and exit code.
func runChild(t *testing.T, mode, db string) (string, int) {
	t.Helper()
	cmd := childCommand(mode, db)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), exitCode(t, mode, err, &stderr)
}

// runEngines runs n engine processes at once until every task of want has
// a run (or 20 s passed), then half a second longer, for a double run to
// show, and stops them.
func runEngines(t *testing.T, n int, db string, st *store.Store, want []string) {
	t.Helper()
	type child struct {
		cmd    *exec.Cmd
		stderr bytes.Buffer
	}
	children := make([]*child, n)
	for i := range children {
		c := &child{cmd: childCommand(childEngine, db)}
		c.cmd.Stderr = &c.stderr
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = c
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		count, _ := runCounts(t, st, want)
		done := true
		for _, id := range want {
			done = done && count[id] > 0
		}
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	for _, c := range children {
		c.cmd.Process.Signal(os.Interrupt)
		if code := exitCode(t, childEngine, c.cmd.Wait(), &c.stderr); code != 0 {
			t.Errorf("engine process exited %d", code)
		}
	}
}

// checkRuns checks that each task of ids logged want(id) runs, and logs
// which process ran how many.
func checkRuns(t *testing.T, st *store.Store, ids []string, want func(id string) int) {
	t.Helper()
	count, by := runCounts(t, st, ids)
	for _, id := range ids {
		if count[id] != want(id) {
			t.Errorf("task %s ran %d times, want %d", id, count[id], want(id))
		}
	}
	t.Logf("runs by process: %v", by)
}

// runCounts returns how many runs each task logged, and by whom.
func runCounts(t *testing.T, st *store.Store, ids []string) (map[string]int, map[string]int) {
	t.Helper()
	count, by := map[string]int{}, map[string]int{}
	for _, id := range ids {
		runs, err := st.TaskRuns(context.Background(), id, 0)
		if err != nil {
			t.Fatal(err)
		}
		count[id] = len(runs)
		for _, r := range runs {
			by[r.Result]++
		}
	}
	return count, by
}

func addDueTasks(t *testing.T, st *store.Store, n int, due time.Time) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("t%02d", i)
		addTask(t, st, id, store.ScheduleInterval, "3600000", due)
		ids = append(ids, id)
	}
	return ids
}

// Three processes, each with its own engine on the same file, and 50 tasks
// due at the same instant: each task runs exactly once.
func TestProcessesRunEachTaskOnce(t *testing.T) {
	skipInShortMode(t)
	db := t.TempDir() + "/shared.db"
	st := openStore(t, db)
	due := time.Now().Add(time.Second) // the children are up by then, most likely
	ids := addDueTasks(t, st, 50, due)
	runEngines(t, 3, db, st, ids)
	checkRuns(t, st, ids, func(string) int { return 1 })
}

// A process dies inside the claim transaction: nothing of it is committed,
// and the engines started after it run every task exactly once.
func TestProcessCrashMidClaim(t *testing.T) {
	skipInShortMode(t)
	ctx := context.Background()
	db := t.TempDir() + "/crash.db"
	st := openStore(t, db)
	due := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	ids := addDueTasks(t, st, 50, due)
	if _, code := runChild(t, childCrashMidClaim, db); code != 3 {
		t.Fatalf("crashing child exited %d, want 3 (died inside the claim)", code)
	}
	for _, id := range ids {
		task, _, err := st.GetTask(ctx, id)
		if err != nil || task.NextRun == nil || !task.NextRun.Equal(due) || task.Status != store.TaskActive {
			t.Fatalf("task %s after the crash: next %v status %s (%v); the dead claim was committed", id, task.NextRun, task.Status, err)
		}
	}
	runEngines(t, 2, db, st, ids)
	checkRuns(t, st, ids, func(string) int { return 1 })
}

// A process claims 20 due runs and dies before running them: those runs are
// lost, never repeated; the other 30 run once.
func TestProcessCrashAfterClaim(t *testing.T) {
	skipInShortMode(t)
	db := t.TempDir() + "/crash.db"
	st := openStore(t, db)
	ids := addDueTasks(t, st, 50, time.Now().Add(-time.Second))
	out, code := runChild(t, childCrashAfterClaim, db)
	if code != 4 {
		t.Fatalf("crashing child exited %d, want 4", code)
	}
	lost := map[string]bool{}
	for _, id := range strings.Fields(out) {
		lost[id] = true
	}
	if len(lost) != 20 {
		t.Fatalf("child claimed %d tasks, want 20: %q", len(lost), out)
	}
	var rest []string
	for _, id := range ids {
		if !lost[id] {
			rest = append(rest, id)
		}
	}
	runEngines(t, 2, db, st, rest)
	checkRuns(t, st, ids, func(id string) int {
		if lost[id] {
			return 0 // claimed by the dead process
		}
		return 1
	})
}
