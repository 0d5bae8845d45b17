package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// lostRun is the failed run logged for a claim that was never recorded.
func lostRun(taskID string, claim time.Time, lease time.Duration) TaskRun {
	return TaskRun{TaskID: taskID, StartedAt: claim, Status: RunError,
		Error: fmt.Sprintf("no result: the run claimed at %s had not finished after %v (did nanoclaw stop during it?)", claim.Format(time.RFC3339), lease)}
}

// ClaimedTask is a due run that ClaimDue claimed for its caller alone.
type ClaimedTask struct {
	Task           // as stored after the claim: NextRun moved on; Status completed if there is no further run
	Due  time.Time // the next run that was claimed
}

// ClaimDue claims up to limit active tasks due at now (next_run <= now), the
// most overdue first (limit <= 0: all), and returns them. For each, next
// says when it runs next, given the task as stored (nil: never again, and the
// task is marked completed); it must be after now.
//
// R16: a task has at most one run pending or running. A claim stays on the
// task (ClaimedAt) until its run is recorded (AddTaskRun). A task that comes
// due while it holds a claim younger than lease is not claimed again: the
// due time is logged as a skipped run and the task moves on to its next run,
// as a run missed while the host was down would. A claim older than lease
// is taken to be lost with a host that stopped mid-run: it is logged as a
// failed run and the task is claimed afresh, so a crash cannot block a task
// for good; so is the lost claim of a task no longer active, a claimed once
// task or a cancelled one (releaseLostClaims). lease must be longer than any
// run.
//
// The claim moves next_run on in the store, so a run is claimed once only:
// everything happens in one immediate (write-locked) transaction, and each
// task is updated by compare-and-set on its id, status and the next_run that
// was read, checking that exactly one row changed. A second engine, in this
// process or another one on the same file, sees the moved next_run and
// cannot claim that run again; a crash before the commit claims nothing.
//
// An invalid row (finding 12), or one whose next run next cannot compute, is
// never claimed; its next_run is cleared (and a valid task with a broken
// schedule is paused, the reason in its last result) so that it cannot keep
// waking the scheduler. Both are logged.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, limit int, lease time.Duration, next func(Task) (*time.Time, error)) ([]ClaimedTask, error) {
	if limit <= 0 {
		limit = -1
	}
	var claimed []ClaimedTask
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		claimed = nil
		if err := s.releaseLostClaims(ctx, tx, now, lease); err != nil {
			return err
		}
		due, err := tasksWhere(ctx, tx, `status = 'active' AND next_run <= ? ORDER BY next_run, id LIMIT ?`, toMillis(now), limit)
		if err != nil {
			return err
		}
		for _, row := range due {
			t := row.Task
			if row.err != nil {
				s.log.Warn("not running invalid task row; its next run is cleared", "table", "tasks", "key", row.key, "err", row.err)
				if _, err := tx.ExecContext(ctx, `UPDATE tasks SET next_run = NULL WHERE id = ?`, row.key); err != nil {
					return err
				}
				continue
			}
			n, err := next(t)
			if err == nil && n != nil && !n.After(now) {
				err = fmt.Errorf("next run %s is not after now (%s)", n.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
			}
			err = cmp.Or(err, checkNullTime("next run", n))
			if err != nil {
				s.log.Warn("cannot schedule task; pausing it", "task", t.ID, "err", err)
				if _, err := tx.ExecContext(ctx, `UPDATE tasks SET status = 'paused', paused_by = 'scheduler', next_run = NULL, last_result = ? WHERE id = ?`,
					"error: cannot schedule: "+err.Error(), t.ID); err != nil {
					return err
				}
				continue
			}
			due, claim := *t.NextRun, t.ClaimedAt
			busy := claim != nil && now.Before(claim.Add(lease))
			t.NextRun = n
			if n == nil {
				t.Status = TaskCompleted
			}
			if !busy {
				at := fromMillis(toMillis(now)) // as stored
				t.ClaimedAt = &at
			}
			res, err := tx.ExecContext(ctx, `
				UPDATE tasks SET next_run = ?, status = ?, claimed_at = ?
				WHERE id = ? AND status = 'active' AND next_run = ? AND claimed_at IS ?`,
				nullMillis(n), string(t.Status), nullMillis(t.ClaimedAt), t.ID, toMillis(due), nullMillis(claim))
			if err != nil {
				return err
			}
			if rows, err := res.RowsAffected(); err != nil || rows != 1 {
				continue // claimed by someone else after all
			}
			switch {
			case busy:
				s.log.Info("task due while its previous run has not finished; skipped", "task", t.ID, "due", due, "claimed_at", *claim)
				_, err = insertRun(ctx, tx, TaskRun{TaskID: t.ID, StartedAt: due, Status: RunSkipped,
					Error: "skipped: the run claimed at " + claim.Format(time.RFC3339) + " had not finished"})
			case claim != nil:
				s.log.Warn("a claimed run of the task never finished; taking it as lost", "task", t.ID, "claimed_at", *claim)
				_, err = insertRun(ctx, tx, lostRun(t.ID, *claim, lease))
			}
			if err != nil {
				return err
			}
			if !busy {
				claimed = append(claimed, ClaimedTask{Task: t, Due: due})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim tasks due at %s: %w", now.Format(time.RFC3339Nano), err)
	}
	return claimed, nil
}

// releaseLostClaims ends the claims older than lease of tasks that are no
// longer active: a once task is completed when it is claimed, and a task
// may be cancelled while its run waits or runs. R9: such a claim counts
// toward the group's cap (countedTask), so one lost with a host that stopped
// mid-run must not hold a place in the cap for good. It is logged as a
// failed run, as ClaimDue does for an active task.
func (s *Store) releaseLostClaims(ctx context.Context, tx *sql.Tx, now time.Time, lease time.Duration) error {
	lost, err := tasksWhere(ctx, tx, `status IN ('completed', 'cancelled') AND claimed_at <= ?`, toMillis(now.Add(-lease)))
	if err != nil {
		return err
	}
	for _, row := range lost {
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET claimed_at = NULL WHERE id = ?`, row.key); err != nil {
			return err
		}
		if row.err != nil {
			s.log.Warn("invalid task row with a lost claim; the claim is cleared", "table", "tasks", "key", row.key, "err", row.err)
			continue
		}
		s.log.Warn("a claimed run of the task never finished; taking it as lost", "task", row.ID, "status", row.Status, "claimed_at", *row.ClaimedAt)
		if _, err := insertRun(ctx, tx, lostRun(row.ID, *row.ClaimedAt, lease)); err != nil {
			return err
		}
	}
	return nil
}

// taskRow is a task as read, with its key and, if it is invalid, why.
type taskRow struct {
	Task
	key string
	err error
}

// tasksWhere reads the tasks that match where (an SQL condition, which may
// go on with ORDER BY and LIMIT), the invalid ones too.
func tasksWhere(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]taskRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []taskRow
	for rows.Next() {
		t, key, err := scanTask(rows)
		list = append(list, taskRow{t, key, err})
	}
	return list, rows.Err()
}

// nextDueQuery is NextDue's query; a test checks its plan.
const nextDueQuery = `SELECT next_run FROM tasks
	WHERE status = 'active' AND next_run IS NOT NULL
	ORDER BY next_run LIMIT 1`

// NextDue returns the earliest next run of the active tasks (nil: none is
// scheduled). It reads one entry of the tasks_due index, however many tasks
// there are.
func (s *Store) NextDue(ctx context.Context) (*time.Time, error) {
	var next time.Time
	err := s.db.QueryRowContext(ctx, nextDueQuery).Scan(asTime(&next))
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("earliest next run: %w", err)
	}
	return &next, nil
}

// TaskRun is the log entry of one run of a task.
type TaskRun struct {
	ID        int64 // assigned by AddTaskRun
	TaskID    string
	StartedAt time.Time
	Duration  time.Duration // stored in whole milliseconds
	Status    RunStatus
	Result    string // the agent's output, on success
	Error     string // what went wrong, on error
}

// Validate checks the fields AddTaskRun stores (not ID, which it assigns).
func (r TaskRun) Validate() error {
	if r.Duration < 0 {
		return fmt.Errorf("negative duration %v", r.Duration)
	}
	return cmp.Or(nonEmpty("task id", r.TaskID), r.Status.Validate(), checkTime("started_at", r.StartedAt))
}

func scanTaskRun(sc scanner) (r TaskRun, key string, err error) {
	var ms int64
	err = sc.Scan(&r.ID, &r.TaskID, asTime(&r.StartedAt), &ms, &r.Status, &r.Result, &r.Error)
	r.Duration = time.Duration(ms) * time.Millisecond
	return r, strconv.FormatInt(r.ID, 10), cmp.Or(err, r.Validate())
}

// AddTaskRun logs a run and, in the same transaction, records it on the task
// as its last run and last result (the result, or "error: " and the error)
// and ends the task's claim, so its next due run can be claimed. A skipped
// run ends the claim but is not the task's last run. It returns the run's id.
func (s *Store) AddTaskRun(ctx context.Context, r TaskRun) (int64, error) {
	lastResult := r.Result
	if r.Status == RunError {
		lastResult = "error: " + r.Error
	}
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		if id, err = insertRun(ctx, tx, r); err != nil {
			return err
		}
		if r.Status == RunSkipped {
			_, err = tx.ExecContext(ctx, `UPDATE tasks SET claimed_at = NULL WHERE id = ?`, r.TaskID)
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE tasks SET last_run = ?, last_result = ?, claimed_at = NULL WHERE id = ?`,
			toMillis(r.StartedAt), lastResult, r.TaskID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add run of task %q: %w", r.TaskID, err)
	}
	return id, nil
}

// insertRun adds a run to the log alone; the task's last run is not changed.
func insertRun(ctx context.Context, tx *sql.Tx, r TaskRun) (int64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO task_runs (task_id, started_at, duration_ms, status, result, error) VALUES (?, ?, ?, ?, ?, ?)`,
		r.TaskID, toMillis(r.StartedAt), r.Duration.Milliseconds(), string(r.Status), nullString(r.Result), nullString(r.Error))
	if errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY) {
		return 0, fmt.Errorf("no such task: %w", ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// TaskRuns returns up to limit runs of a task, newest first (limit <= 0:
// all). Invalid rows are skipped and logged.
func (s *Store) TaskRuns(ctx context.Context, taskID string, limit int) ([]TaskRun, error) {
	if limit <= 0 {
		limit = -1
	}
	return queryList(ctx, s, fmt.Sprintf("runs of task %q", taskID), "task_runs", scanTaskRun, `
		SELECT id, task_id, started_at, duration_ms, status, coalesce(result, ''), coalesce(error, '') FROM task_runs
		WHERE task_id = ? ORDER BY started_at DESC, id DESC LIMIT ?`, taskID, limit)
}
