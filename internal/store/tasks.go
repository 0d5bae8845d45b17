package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
	// Task rows are validated on every read (finding 12), time zone included:
	// embed the zone database so a host without /usr/share/zoneinfo does not
	// turn every task into a bad row.
	_ "time/tzdata"

	"github.com/ncruces/go-sqlite3"
)

// ScheduleType says how a task's ScheduleValue is read.
type ScheduleType string

// The schedule types.
const (
	ScheduleCron     ScheduleType = "cron"     // a 5-field cron expression, in the task's time zone
	ScheduleInterval ScheduleType = "interval" // a period in milliseconds
	ScheduleOnce     ScheduleType = "once"     // a single point in time
)

// ContextMode says which session a task runs in.
type ContextMode string

// The context modes.
const (
	ContextGroup    ContextMode = "group"    // the group's session, with its history
	ContextIsolated ContextMode = "isolated" // a fresh session; the prompt carries all context
)

// TaskStatus is a task's life-cycle state.
type TaskStatus string

// The task statuses.
const (
	TaskActive    TaskStatus = "active"    // will run when due
	TaskPaused    TaskStatus = "paused"    // kept, not run until resumed
	TaskCompleted TaskStatus = "completed" // a once task that has run
	TaskCancelled TaskStatus = "cancelled" // stopped for good
)

// RunStatus is the outcome of one task run.
type RunStatus string

// The run outcomes.
const (
	RunSuccess RunStatus = "success"
	RunError   RunStatus = "error"
)

// Task is a scheduled prompt that runs as the agent of a group.
type Task struct {
	ID            string
	Folder        string // the group it runs in
	ChatJID       string // the chat its send_message calls go to
	Prompt        string
	ScheduleType  ScheduleType
	ScheduleValue string // read according to ScheduleType
	Timezone      string // IANA name, e.g. "Europe/Paris" or "UTC"
	ContextMode   ContextMode
	Status        TaskStatus
	NextRun       *time.Time // nil: not scheduled to run
	LastRun       *time.Time // nil: never run
	LastResult    string     // the last run's result or error
	CreatedAt     time.Time
}

// Validate checks every field of t: required text, the enums, the time zone
// and, for interval tasks, that the period is a positive number of
// milliseconds. Cron expressions and once times are the scheduler's to parse.
func (t Task) Validate() error {
	switch {
	case t.ID == "":
		return errors.New("empty task id")
	case t.Prompt == "":
		return errors.New("empty prompt")
	case t.ScheduleValue == "":
		return errors.New("empty schedule value")
	}
	if err := ValidateFolder(t.Folder); err != nil {
		return err
	}
	if err := checkJID(t.ChatJID); err != nil {
		return err
	}
	if err := t.ScheduleType.Validate(); err != nil {
		return err
	}
	if t.ScheduleType == ScheduleInterval {
		if ms, err := strconv.ParseInt(t.ScheduleValue, 10, 64); err != nil || ms <= 0 {
			return fmt.Errorf("interval %q is not a positive number of milliseconds", t.ScheduleValue)
		}
	}
	if err := ValidateTimezone(t.Timezone); err != nil {
		return err
	}
	if err := t.ContextMode.Validate(); err != nil {
		return err
	}
	if err := t.Status.Validate(); err != nil {
		return err
	}
	if t.NextRun != nil {
		if err := checkTime("next_run", *t.NextRun); err != nil {
			return err
		}
	}
	if t.LastRun != nil {
		if err := checkTime("last_run", *t.LastRun); err != nil {
			return err
		}
	}
	return checkTime("created_at", t.CreatedAt)
}

// Validate reports whether st is a known schedule type.
func (st ScheduleType) Validate() error {
	switch st {
	case ScheduleCron, ScheduleInterval, ScheduleOnce:
		return nil
	}
	return fmt.Errorf("unknown schedule type %q (want cron, interval or once)", string(st))
}

// Validate reports whether m is a known context mode.
func (m ContextMode) Validate() error {
	switch m {
	case ContextGroup, ContextIsolated:
		return nil
	}
	return fmt.Errorf("unknown context mode %q (want group or isolated)", string(m))
}

// Validate reports whether st is a known task status.
func (st TaskStatus) Validate() error {
	switch st {
	case TaskActive, TaskPaused, TaskCompleted, TaskCancelled:
		return nil
	}
	return fmt.Errorf("unknown task status %q (want active, paused, completed or cancelled)", string(st))
}

// Validate reports whether st is a known run outcome.
func (st RunStatus) Validate() error {
	switch st {
	case RunSuccess, RunError:
		return nil
	}
	return fmt.Errorf("unknown run status %q (want success or error)", string(st))
}

// ValidateTimezone accepts an IANA time zone name ("UTC", "Europe/Paris").
// "" and "Local" are refused: they would silently mean the host's zone.
func ValidateTimezone(tz string) error {
	if tz == "" || tz == "Local" {
		return fmt.Errorf("time zone %q: want an IANA name such as UTC or Europe/Paris", tz)
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Errorf("time zone %q: %w", tz, err)
	}
	return nil
}

const taskColumns = `id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode, status, next_run, last_run, last_result, created_at`

var taskColumnNames = columns(taskColumns)

func decodeTask(raw rawRow) (Task, string, error) {
	d := decoder{row: raw, cols: taskColumnNames}
	t := Task{
		ID:            d.text(0),
		Folder:        d.text(1),
		ChatJID:       d.text(2),
		Prompt:        d.text(3),
		ScheduleType:  ScheduleType(d.text(4)),
		ScheduleValue: d.text(5),
		Timezone:      d.text(6),
		ContextMode:   ContextMode(d.text(7)),
		Status:        TaskStatus(d.text(8)),
		NextRun:       d.nullTime(9),
		LastRun:       d.nullTime(10),
		LastResult:    d.nullText(11),
		CreatedAt:     d.time(12),
	}
	if d.err == nil {
		d.err = t.Validate()
	}
	if d.err != nil {
		return Task{}, d.key(0), d.err
	}
	return t, t.ID, nil
}

// CreateTask stores a new task. A zero CreatedAt means now. An existing id,
// or a folder with no group, is an error.
func (s *Store) CreateTask(ctx context.Context, t Task) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO tasks (`+taskColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Folder, t.ChatJID, t.Prompt, string(t.ScheduleType), t.ScheduleValue, t.Timezone,
		string(t.ContextMode), string(t.Status), nullMillis(t.NextRun), nullMillis(t.LastRun),
		nullString(t.LastResult), toMillis(t.CreatedAt))
	switch {
	case isConstraint(err, sqlite3.CONSTRAINT_PRIMARYKEY):
		return fmt.Errorf("create task %q: a task with this id already exists", t.ID)
	case isConstraint(err, sqlite3.CONSTRAINT_FOREIGNKEY):
		return fmt.Errorf("create task %q: no group %q: %w", t.ID, t.Folder, ErrNotFound)
	case err != nil:
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	return nil
}

// GetTask returns the task id; found is false if there is none.
func (s *Store) GetTask(ctx context.Context, id string) (t Task, found bool, err error) {
	t, found, err = queryOne(ctx, s, "tasks", len(taskColumnNames), decodeTask,
		`SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id)
	if err != nil {
		return Task{}, false, fmt.Errorf("get task %q: %w", id, err)
	}
	return t, found, nil
}

// ListTasks returns the tasks of the group in folder ("" = of all groups),
// oldest first. Invalid rows are skipped and logged.
func (s *Store) ListTasks(ctx context.Context, folder string) ([]Task, error) {
	list, err := queryList(ctx, s, "tasks", len(taskColumnNames), decodeTask,
		`SELECT `+taskColumns+` FROM tasks WHERE ?1 = '' OR folder = ?1 ORDER BY created_at, id`, folder)
	if err != nil {
		return nil, fmt.Errorf("list tasks of group %q: %w", folder, err)
	}
	return list, nil
}

// SetTaskStatus changes a task's status (pause, resume, cancel, complete).
// A missing task is an error wrapping ErrNotFound.
func (s *Store) SetTaskStatus(ctx context.Context, id string, status TaskStatus) error {
	if err := status.Validate(); err != nil {
		return fmt.Errorf("set status of task %q: %w", id, err)
	}
	return s.updateOne(ctx, fmt.Sprintf("set status of task %q to %s", id, status),
		`UPDATE tasks SET status = ? WHERE id = ?`, string(status), id)
}

// UpdateTask replaces a task's prompt, schedule (type, value, time zone) and
// next run with t's, in one statement; t.ID names the task and t as a whole
// must be valid. Other fields (status, last run) are left alone. A missing
// task is an error wrapping ErrNotFound.
func (s *Store) UpdateTask(ctx context.Context, t Task) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("update task %q: %w", t.ID, err)
	}
	return s.updateOne(ctx, fmt.Sprintf("update task %q", t.ID), `
		UPDATE tasks SET prompt = ?, schedule_type = ?, schedule_value = ?, timezone = ?, next_run = ?
		WHERE id = ?`,
		t.Prompt, string(t.ScheduleType), t.ScheduleValue, t.Timezone, nullMillis(t.NextRun), t.ID)
}

// SetTaskNextRun sets when a task runs next (nil: not scheduled), as the
// scheduler does after each run. A missing task is an error wrapping
// ErrNotFound.
func (s *Store) SetTaskNextRun(ctx context.Context, id string, next *time.Time) error {
	if next != nil {
		if err := checkTime("next_run", *next); err != nil {
			return fmt.Errorf("set next run of task %q: %w", id, err)
		}
	}
	return s.updateOne(ctx, fmt.Sprintf("set next run of task %q", id),
		`UPDATE tasks SET next_run = ? WHERE id = ?`, nullMillis(next), id)
}

// DeleteTask removes a task and its run history. A missing task is an error
// wrapping ErrNotFound.
func (s *Store) DeleteTask(ctx context.Context, id string) error {
	return s.updateOne(ctx, fmt.Sprintf("delete task %q", id), `DELETE FROM tasks WHERE id = ?`, id)
}

// updateOne runs a statement that must change exactly one row.
func (s *Store) updateOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
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
	if r.TaskID == "" {
		return errors.New("empty task id")
	}
	if r.Duration < 0 {
		return fmt.Errorf("negative duration %v", r.Duration)
	}
	if err := r.Status.Validate(); err != nil {
		return err
	}
	return checkTime("started_at", r.StartedAt)
}

const taskRunColumns = `id, task_id, started_at, duration_ms, status, result, error`

var taskRunColumnNames = columns(taskRunColumns)

func decodeTaskRun(raw rawRow) (TaskRun, string, error) {
	d := decoder{row: raw, cols: taskRunColumnNames}
	r := TaskRun{
		ID:        d.int(0),
		TaskID:    d.text(1),
		StartedAt: d.time(2),
		Duration:  time.Duration(d.count(3)) * time.Millisecond,
		Status:    RunStatus(d.text(4)),
		Result:    d.nullText(5),
		Error:     d.nullText(6),
	}
	if d.err == nil {
		d.err = r.Validate()
	}
	if d.err != nil {
		return TaskRun{}, d.key(0), d.err
	}
	return r, fmt.Sprint(r.ID), nil
}

// AddTaskRun logs a run and, in the same transaction, records it on the task
// as its last run and last result (the result, or "error: " and the error).
// It returns the run's id.
func (s *Store) AddTaskRun(ctx context.Context, r TaskRun) (int64, error) {
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("add run of task %q: %w", r.TaskID, err)
	}
	lastResult := r.Result
	if r.Status == RunError {
		lastResult = "error: " + r.Error
	}
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO task_runs (task_id, started_at, duration_ms, status, result, error) VALUES (?, ?, ?, ?, ?, ?)`,
			r.TaskID, toMillis(r.StartedAt), r.Duration.Milliseconds(), string(r.Status), nullString(r.Result), nullString(r.Error))
		if isConstraint(err, sqlite3.CONSTRAINT_FOREIGNKEY) {
			return fmt.Errorf("no such task: %w", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE tasks SET last_run = ?, last_result = ? WHERE id = ?`,
			toMillis(r.StartedAt), lastResult, r.TaskID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add run of task %q: %w", r.TaskID, err)
	}
	return id, nil
}

// TaskRuns returns up to limit runs of a task, newest first (limit <= 0:
// all). Invalid rows are skipped and logged.
func (s *Store) TaskRuns(ctx context.Context, taskID string, limit int) ([]TaskRun, error) {
	if limit <= 0 {
		limit = -1
	}
	list, err := queryList(ctx, s, "task_runs", len(taskRunColumnNames), decodeTaskRun,
		`SELECT `+taskRunColumns+` FROM task_runs WHERE task_id = ? ORDER BY started_at DESC, id DESC LIMIT ?`,
		taskID, limit)
	if err != nil {
		return nil, fmt.Errorf("runs of task %q: %w", taskID, err)
	}
	return list, nil
}

// ClaimedTask is a due run that ClaimDue claimed for its caller alone.
type ClaimedTask struct {
	Task           // as stored after the claim: NextRun moved on; Status completed if there is no further run
	Due  time.Time // the next run that was claimed
}

// maxStoredMillis is the end of year 9999: next runs are below it, so the
// comparisons below also keep out values of the wrong type (SQLite orders
// text after every number).
const maxStoredMillis = 253402300799999

// ClaimDue claims up to limit active tasks due at now (next_run <= now), the
// most overdue first (limit <= 0: all), and returns them. For each, next
// says when it runs next, given the task as stored (nil: never again, and the
// task is marked completed); it must be after now.
//
// The claim moves next_run on in the store, so a run is claimed once only:
// everything happens in one immediate (write-locked) transaction, and each
// task is updated by compare-and-set on its id, status and the next_run that
// was read, checking that exactly one row changed. A second engine, in this
// process or another one on the same file, sees the moved next_run and
// cannot claim that run again; a crash before the commit claims nothing.
//
// A row that does not decode (finding 12), or whose next run next cannot
// compute, is never claimed; its next_run is cleared (and a valid task with
// a broken schedule is paused, the reason in its last result) so that it
// cannot keep waking the scheduler. Both are logged.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, limit int, next func(Task) (*time.Time, error)) ([]ClaimedTask, error) {
	if limit <= 0 {
		limit = -1
	}
	var claimed []ClaimedTask
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		claimed = nil
		due, err := dueRows(ctx, tx, now, limit)
		if err != nil {
			return err
		}
		for _, raw := range due {
			rowid := raw[0].(int64)
			t, key, err := decodeTask(raw[1:])
			if err != nil {
				s.log.Warn("not running invalid task row; its next run is cleared", "table", "tasks", "key", key, "err", err)
				if _, err := tx.ExecContext(ctx, `UPDATE tasks SET next_run = NULL WHERE rowid = ?`, rowid); err != nil {
					return err
				}
				continue
			}
			n, err := next(t)
			if err == nil && n != nil && !n.After(now) {
				err = fmt.Errorf("next run %s is not after now (%s)", n.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
			}
			if err == nil && n != nil {
				err = checkTime("next run", *n)
			}
			if err != nil {
				s.log.Warn("cannot schedule task; pausing it", "task", t.ID, "err", err)
				if _, err := tx.ExecContext(ctx, `UPDATE tasks SET status = 'paused', next_run = NULL, last_result = ? WHERE rowid = ?`,
					"error: cannot schedule: "+err.Error(), rowid); err != nil {
					return err
				}
				continue
			}
			due := *t.NextRun
			t.NextRun = n
			if n == nil {
				t.Status = TaskCompleted
			}
			res, err := tx.ExecContext(ctx, `
				UPDATE tasks SET next_run = ?, status = ?
				WHERE id = ? AND status = 'active' AND next_run = ?`,
				nullMillis(n), string(t.Status), t.ID, toMillis(due))
			if err != nil {
				return err
			}
			if rows, err := res.RowsAffected(); err != nil || rows != 1 {
				continue // claimed by someone else after all
			}
			claimed = append(claimed, ClaimedTask{Task: t, Due: due})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim tasks due at %s: %w", now.Format(time.RFC3339Nano), err)
	}
	return claimed, nil
}

// dueRows reads the raw rows (rowid first) of the active tasks due at now.
func dueRows(ctx context.Context, tx *sql.Tx, now time.Time, limit int) ([]rawRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT rowid, `+taskColumns+` FROM tasks
		WHERE status = 'active' AND next_run <= ? ORDER BY next_run, id LIMIT ?`, toMillis(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []rawRow
	for rows.Next() {
		raw, err := scanRaw(rows, 1+len(taskColumnNames))
		if err != nil {
			return nil, err
		}
		if _, ok := raw[0].(int64); !ok {
			return nil, fmt.Errorf("rowid is %s", describe(raw[0]))
		}
		list = append(list, raw)
	}
	return list, rows.Err()
}

// inWriteTx is inTx with the write lock taken at BEGIN (BEGIN IMMEDIATE), so
// the transaction's reads cannot go stale before its writes: another writer
// waits (busy timeout) instead of interleaving.
func (s *Store) inWriteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}) // the driver's "immediate"
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// nextDueQuery is NextDue's query; a test checks its plan.
const nextDueQuery = `SELECT next_run FROM tasks
	WHERE status = 'active' AND next_run IS NOT NULL AND next_run <= ?
	ORDER BY next_run LIMIT 1`

// NextDue returns the earliest next run of the active tasks (nil: none is
// scheduled). It reads one entry of the tasks_due index, however many tasks
// there are. A stored value that is not a valid time is returned as it is
// read (a negative one is in the past), so the scheduler wakes, and ClaimDue
// then clears it.
func (s *Store) NextDue(ctx context.Context) (*time.Time, error) {
	var v any
	err := s.db.QueryRowContext(ctx, nextDueQuery, maxStoredMillis).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("earliest next run: %w", err)
	}
	var t time.Time
	switch v := v.(type) {
	case int64:
		t = fromMillis(v)
	case float64:
		t = fromMillis(int64(v))
	default:
		return nil, fmt.Errorf("earliest next run: stored as %s", describe(v))
	}
	return &t, nil
}
