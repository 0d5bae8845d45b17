package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// DefaultMaxSleep caps one sleep of the Engine. The timer counts monotonic
// time, which does not follow the wall clock: if the clock is set forward,
// or the machine was suspended (Linux's monotonic clock stops then), a task
// can be due before the timer fires. Waking at least this often bounds that
// lateness; it is not a poll for work, which Changed and the timer announce.
const DefaultMaxSleep = 15 * time.Minute

// DefaultBatch is how many tasks one claim transaction takes at most.
const DefaultBatch = 100

// MaxRecordBytes is the most of a run's result or error that is kept in the
// run log and as the task's last result.
const MaxRecordBytes = 4 << 10

// DefaultRunLease is how long a claimed run may take, from its claim to its
// record, before the engine takes it as lost with a host that stopped
// mid-run (see store.ClaimDue). It must exceed the longest run, queueing
// included; the host sets it from its container timeout.
const DefaultRunLease = time.Hour

// ErrSkipped, wrapped in the error given to RecordRun, records a claimed run
// that did not start: the task was paused, cancelled or deleted after the
// claim (R16). The run is logged as skipped, not as the task's last run.
var ErrSkipped = errors.New("skipped")

// retryDelay is the pause after a failed store call, or after a due task
// could be neither claimed nor cleared, so a fault cannot spin the engine.
const retryDelay = time.Second

// Options configure an Engine.
type Options struct {
	Store    *store.Store
	MaxSleep time.Duration    // the longest single sleep; 0: DefaultMaxSleep
	RunLease time.Duration    // see DefaultRunLease; 0: DefaultRunLease
	Batch    int              // tasks claimed per transaction; 0: DefaultBatch
	Logger   *slog.Logger     // nil: slog.Default()
	Clock    func() time.Time // the wall clock; nil: time.Now (tests move it)
}

// Engine starts scheduled tasks when they are due. It sleeps on one timer set
// to the earliest next run in the store, reset by Changed; there is no fixed
// poll. Due tasks are claimed in the store (store.ClaimDue) before they are
// dispatched, so several engines on one database, restarts and clock jumps
// never start the same run twice.
//
// A task has at most one run pending or running (R16): the claim stays on the
// task until RecordRun, and a due time that comes meanwhile is logged as
// skipped, not queued behind the run, so a task slower than its interval
// cannot pile up copies.
//
// Exactly-once has one price: a run is claimed before it is dispatched, so
// if the host dies between the claim and the end of the run, that run is lost
// (logged as such once its lease has passed; the task then runs at its
// following time; a once task stays completed). The other choice, claiming
// after the run, would repeat a run after every such crash — the failure
// NanoClaw had.
type Engine struct {
	opt     Options
	changed chan struct{}
}

// New makes an Engine; Run starts it.
func New(opt Options) *Engine {
	opt.MaxSleep = cmp.Or(max(opt.MaxSleep, 0), DefaultMaxSleep)
	opt.Batch = cmp.Or(max(opt.Batch, 0), DefaultBatch)
	opt.RunLease = cmp.Or(max(opt.RunLease, 0), DefaultRunLease)
	opt.Logger = cmp.Or(opt.Logger, slog.Default())
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	return &Engine{opt: opt, changed: make(chan struct{}, 1)}
}

// Changed tells the engine that tasks were created, changed, paused or
// resumed, so it looks for the earliest next run again. It never blocks.
func (e *Engine) Changed() {
	select {
	case e.changed <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Run runs the engine until ctx ends. It first claims every task that came
// due while the host was down — each once, however many of its runs were
// missed — then sleeps until the next one.
//
// dispatch hands each claimed task to the host, which queues it in its
// group's queue, runs it and calls RecordRun. The task is as stored after
// the claim (its NextRun is already the following run). dispatch is called
// from Run's goroutine and must not block.
func (e *Engine) Run(ctx context.Context, dispatch func(store.Task)) error {
	if e.opt.Store == nil || dispatch == nil {
		return errors.New("scheduler: Options.Store and a dispatch function are required")
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-e.changed:
		}
		// Since Go 1.23 Reset also discards a tick not yet received.
		timer.Reset(e.round(ctx, dispatch))
	}
}

// round claims and dispatches what is due and returns how long to sleep.
func (e *Engine) round(ctx context.Context, dispatch func(store.Task)) time.Duration {
	var now time.Time
	for {
		now = e.opt.Clock()
		claimed, err := e.opt.Store.ClaimDue(ctx, now, e.opt.Batch, e.opt.RunLease, func(t store.Task) (*time.Time, error) {
			return NextRun(t, now)
		})
		if err != nil {
			if ctx.Err() == nil {
				e.opt.Logger.Error("claim due tasks", "err", err)
			}
			return retryDelay
		}
		for _, c := range claimed {
			e.opt.Logger.Info("task due", "task", c.ID, "group", c.Folder, "due", c.Due, "late_ms", now.Sub(c.Due).Milliseconds(), "next_run", c.NextRun)
			dispatch(c.Task)
		}
		if len(claimed) < e.opt.Batch {
			break
		}
	}
	next, err := e.opt.Store.NextDue(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			e.opt.Logger.Error("find the next due task", "err", err)
		}
		return retryDelay
	case next == nil:
		return e.opt.MaxSleep
	case !next.After(now):
		// Due when we claimed, yet neither claimed nor cleared: only more
		// than a batch of unreadable rows (cleared a batch at a time) or a
		// fault gets here. Do not spin on it.
		e.opt.Logger.Warn("a due task could not be claimed; retrying", "next_run", *next)
		return retryDelay
	}
	return min(max(next.Sub(e.opt.Clock()), 0), e.opt.MaxSleep)
}

// RecordRun logs a run of task that started at start and ended now, with
// the agent's result or the error that ended it (each truncated to
// MaxRecordBytes), and records it as the task's last run and result; either
// way the task's claim ends, so its next due run can be claimed. An error
// wrapping ErrSkipped logs a run that did not start. A once task that was not
// claimed through the engine (its status still active) is marked completed.
// A task deleted while it ran is an error wrapping store.ErrNotFound.
func (e *Engine) RecordRun(ctx context.Context, task store.Task, start time.Time, result string, runErr error) error {
	run := store.TaskRun{
		TaskID:    task.ID,
		StartedAt: start,
		Duration:  max(e.opt.Clock().Sub(start), 0),
		Status:    store.RunSuccess,
		Result:    truncate(result, MaxRecordBytes),
	}
	if runErr != nil {
		run.Status, run.Result, run.Error = store.RunError, "", truncate(cmp.Or(runErr.Error(), "unknown error"), MaxRecordBytes)
		if errors.Is(runErr, ErrSkipped) {
			run.Status, run.Duration = store.RunSkipped, 0
		}
	}
	if _, err := e.opt.Store.AddTaskRun(ctx, run); err != nil {
		return err
	}
	if task.ScheduleType == store.ScheduleOnce && task.Status == store.TaskActive && run.Status != store.RunSkipped {
		if err := e.opt.Store.SetTaskStatus(ctx, task.ID, store.TaskCompleted); err != nil {
			return fmt.Errorf("complete once task %s: %w", task.ID, err)
		}
	}
	e.opt.Logger.Info("task ran", "task", task.ID, "group", task.Folder, "status", run.Status, "duration_ms", run.Duration.Milliseconds())
	return nil
}

// truncate cuts s to at most n bytes, on a character boundary, saying how
// long it was.
func truncate(s string, n int) string {
	return sanitize.Clip(s, n, fmt.Sprintf("… [truncated, %d bytes in all]", len(s)))
}
