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
