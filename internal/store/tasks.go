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
	// RunSkipped is a due time that did not run: the task's previous run had
	// not finished, or the task was paused or cancelled after the claim.
	RunSkipped RunStatus = "skipped"
)

// TaskActor is who paused a task. R20: a pause is lifted only by someone at
// least as strong as the one who made it, so a group cannot undo what main
// or the owner decided.
type TaskActor string

// The actors, weakest first.
const (
	ActorScheduler TaskActor = "scheduler" // the engine, for a schedule it cannot compute
	ActorGroup     TaskActor = "group"     // the task's own (non-main) group
	ActorMain      TaskActor = "main"      // the main group's agent
	ActorOwner     TaskActor = "owner"     // the owner: the CLI and the control socket
)

// Validate reports whether a is a known actor.
func (a TaskActor) Validate() error {
	switch a {
	case ActorScheduler, ActorGroup, ActorMain, ActorOwner:
		return nil
	}
	return fmt.Errorf("unknown task actor %q (want scheduler, group, main or owner)", string(a))
}

// rank orders the actors: main and the owner are equals.
func (a TaskActor) rank() int {
	switch a {
	case ActorGroup:
		return 1
	case ActorMain, ActorOwner:
		return 2
	}
	return 0
}

// MayLift reports whether a may resume or edit a task that by paused.
func (a TaskActor) MayLift(by TaskActor) bool { return a.rank() >= by.rank() }

// liftable lists the pausers a may override, for SQL "paused_by IN (...)".
func (a TaskActor) liftable() []any {
	var list []any
	for _, by := range []TaskActor{ActorScheduler, ActorGroup, ActorMain, ActorOwner} {
		if a.MayLift(by) {
			list = append(list, string(by))
		}
	}
	for len(list) < 4 { // a fixed number of placeholders; repeats change nothing
		list = append(list, list[0])
	}
	return list
}

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
	PausedBy      TaskActor // who paused it; set exactly when Status is paused
	// ClaimedAt is when the engine claimed the run now pending or running
	// (nil: none). R16: while it is set, no further run is claimed.
	ClaimedAt *time.Time
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
	if (t.Status == TaskPaused) != (t.PausedBy != "") {
		return fmt.Errorf("status %s with paused_by %q: a task records who paused it exactly while it is paused", t.Status, string(t.PausedBy))
	}
	if t.PausedBy != "" {
		if err := t.PausedBy.Validate(); err != nil {
			return err
		}
	}
	if t.ClaimedAt != nil {
		if err := checkTime("claimed_at", *t.ClaimedAt); err != nil {
			return err
		}
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
	case RunSuccess, RunError, RunSkipped:
		return nil
	}
	return fmt.Errorf("unknown run status %q (want success, error or skipped)", string(st))
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

const taskColumns = `id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode, status, next_run, last_run, last_result, created_at, paused_by, claimed_at`

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
		PausedBy:      TaskActor(d.nullText(13)),
		ClaimedAt:     d.nullTime(14),
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
	return s.CreateTaskWithin(ctx, t, 0)
}

// TaskLimitError is the refusal of CreateTaskWithin and ResumeTask: the
// group already has Limit tasks that count toward its cap (countedTask).
type TaskLimitError struct {
	Folder string
	Limit  int
}

func (e *TaskLimitError) Error() string {
	return fmt.Sprintf("group %s already has %d scheduled tasks (active, paused, or with a run waiting or running)", e.Folder, e.Limit)
}

// countedTask is the SQL condition of a task that counts toward its group's
// cap. R9: every task that may still start a container counts — active or
// paused, and any with a claimed run not yet recorded: a once task is
// completed as soon as it is claimed, and a cancelled one may be running.
const countedTask = `(status IN ('active', 'paused') OR claimed_at IS NOT NULL)`

// CreateTaskWithin is CreateTask, refused with a *TaskLimitError when the
// group already has limit or more tasks that count toward its cap
// (countedTask; limit <= 0: no limit). R9: the count and the insert are one
// statement, so concurrent calls cannot together pass the limit.
func (s *Store) CreateTaskWithin(ctx context.Context, t Task, limit int) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	if err := t.Validate(); err != nil {
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	if limit <= 0 {
		limit = -1
	}
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO tasks (`+taskColumns+`) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE ? < 0 OR (SELECT count(*) FROM tasks WHERE folder = ? AND `+countedTask+`) < ?`,
		t.ID, t.Folder, t.ChatJID, t.Prompt, string(t.ScheduleType), t.ScheduleValue, t.Timezone,
		string(t.ContextMode), string(t.Status), nullMillis(t.NextRun), nullMillis(t.LastRun),
		nullString(t.LastResult), toMillis(t.CreatedAt), nullString(string(t.PausedBy)), nullMillis(t.ClaimedAt),
		limit, t.Folder, limit)
	switch {
	case isConstraint(err, sqlite3.CONSTRAINT_PRIMARYKEY):
		return fmt.Errorf("create task %q: a task with this id already exists", t.ID)
	case isConstraint(err, sqlite3.CONSTRAINT_FOREIGNKEY):
		return fmt.Errorf("create task %q: no group %q: %w", t.ID, t.Folder, ErrNotFound)
	case err != nil:
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return &TaskLimitError{Folder: t.Folder, Limit: limit}
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

// ErrTaskLocked is wrapped by the errors of PauseTask, ResumeTask and
// UpdateTask when the task's state forbids the change to this actor: it is
// cancelled or completed (final for everyone), or paused by a stronger actor
// (R20).
var ErrTaskLocked = errors.New("task locked")

// SetTaskStatus marks a task completed or cancelled; pausing and resuming
// record who did it (PauseTask, ResumeTask). A cancelled task stays
// cancelled. A missing task is an error wrapping ErrNotFound.
func (s *Store) SetTaskStatus(ctx context.Context, id string, status TaskStatus) error {
	what := fmt.Sprintf("set status of task %q to %s", id, status)
	if status != TaskCompleted && status != TaskCancelled {
		return fmt.Errorf("%s: use PauseTask or ResumeTask (want completed or cancelled)", what)
	}
	return s.guardedUpdate(ctx, what, id, ActorOwner, 0,
		`UPDATE tasks SET status = ?, paused_by = NULL WHERE id = ? AND (status != 'cancelled' OR ? = 'cancelled')`,
		string(status), id, string(status))
}

// PauseTask pauses a task on behalf of by. Pausing a paused task again keeps
// the stronger of the two pausers, so a group cannot turn main's pause into
// its own and then lift it. A cancelled or completed task cannot be paused
// (an error wrapping ErrTaskLocked).
func (s *Store) PauseTask(ctx context.Context, id string, by TaskActor) error {
	what := fmt.Sprintf("pause task %q", id)
	if err := by.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	lift := by.liftable()
	return s.guardedUpdate(ctx, what, id, by, 0, `
		UPDATE tasks SET status = 'paused',
			paused_by = CASE WHEN status = 'paused' AND paused_by NOT IN (?, ?, ?, ?) THEN paused_by ELSE ? END
		WHERE id = ? AND status IN ('active', 'paused')`,
		lift[0], lift[1], lift[2], lift[3], string(by), id)
}

// ResumeTask makes an active or paused task active with next as its next
// run, on behalf of by. R20: a cancelled task stays cancelled, and a task
// paused by a stronger actor stays paused (errors wrapping ErrTaskLocked).
// R9: a completed task stays completed too (ErrTaskLocked), so a once task
// cannot be turned back into a schedule beside the new ones its group made
// meanwhile; and when the group's other tasks that count toward its cap
// are limit or more (limit <= 0: no limit), the error wraps a
// *TaskLimitError. The check and the change are one statement.
func (s *Store) ResumeTask(ctx context.Context, id string, next time.Time, by TaskActor, limit int) error {
	what := fmt.Sprintf("resume task %q", id)
	if err := by.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := checkTime("next_run", next); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if limit <= 0 {
		limit = -1
	}
	lift := by.liftable()
	return s.guardedUpdate(ctx, what, id, by, limit, `
		UPDATE tasks SET status = 'active', paused_by = NULL, next_run = ?
		WHERE id = ? AND status IN ('active', 'paused') AND (status != 'paused' OR paused_by IN (?, ?, ?, ?))
			AND (? < 0 OR (SELECT count(*) FROM tasks AS other
				WHERE other.folder = tasks.folder AND other.id != tasks.id AND `+countedTask+`) < ?)`,
		toMillis(next), id, lift[0], lift[1], lift[2], lift[3], limit, limit)
}

// UpdateTask replaces a task's prompt, schedule (type, value, time zone) and
// next run with t's, in one statement, on behalf of by; t.ID names the task
// and t as a whole must be valid. Other fields (status, last run) are left
// alone. R20: a cancelled task, or one paused by a stronger actor, is not
// changed (an error wrapping ErrTaskLocked); R9: nor is a completed one, which
// could otherwise be given a new schedule and resumed. A missing task is an
// error wrapping ErrNotFound.
func (s *Store) UpdateTask(ctx context.Context, t Task, by TaskActor) error {
	what := fmt.Sprintf("update task %q", t.ID)
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := by.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	lift := by.liftable()
	return s.guardedUpdate(ctx, what, t.ID, by, 0, `
		UPDATE tasks SET prompt = ?, schedule_type = ?, schedule_value = ?, timezone = ?, next_run = ?
		WHERE id = ? AND status IN ('active', 'paused') AND (status != 'paused' OR paused_by IN (?, ?, ?, ?))`,
		t.Prompt, string(t.ScheduleType), t.ScheduleValue, t.Timezone, nullMillis(t.NextRun), t.ID,
		lift[0], lift[1], lift[2], lift[3])
}

// guardedUpdate runs a statement on task id whose WHERE clause guards the
// change, made on behalf of by under the cap limit (<= 0: none). When no row
// changed it says why: no such task (ErrNotFound), the state that the guard
// refused (ErrTaskLocked), or else the cap (*TaskLimitError).
func (s *Store) guardedUpdate(ctx context.Context, what, id string, by TaskActor, limit int, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	t, found, err := s.GetTask(ctx, id)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case !found:
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case t.Status == TaskPaused && !by.MayLift(t.PausedBy):
		return fmt.Errorf("%s: it was paused by %s: %w", what, t.PausedBy, ErrTaskLocked)
	case (t.Status == TaskActive || t.Status == TaskPaused) && limit > 0:
		return fmt.Errorf("%s: %w", what, &TaskLimitError{Folder: t.Folder, Limit: limit})
	}
	return fmt.Errorf("%s: it is %s: %w", what, t.Status, ErrTaskLocked)
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
// as its last run and last result (the result, or "error: " and the error)
// and ends the task's claim, so its next due run can be claimed. A skipped
// run ends the claim but is not the task's last run. It returns the run's id.
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
// A row that does not decode (finding 12), or whose next run next cannot
// compute, is never claimed; its next_run is cleared (and a valid task with
// a broken schedule is paused, the reason in its last result) so that it
// cannot keep waking the scheduler. Both are logged.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, limit int, lease time.Duration, next func(Task) (*time.Time, error)) ([]ClaimedTask, error) {
	if limit <= 0 {
		limit = -1
	}
	var claimed []ClaimedTask
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		claimed = nil
		if err := s.releaseLostClaims(ctx, tx, now, lease); err != nil {
			return err
		}
		due, err := taskRows(ctx, tx, `status = 'active' AND next_run <= ? ORDER BY next_run, id LIMIT ?`, toMillis(now), limit)
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
				if _, err := tx.ExecContext(ctx, `UPDATE tasks SET status = 'paused', paused_by = 'scheduler', next_run = NULL, last_result = ? WHERE rowid = ?`,
					"error: cannot schedule: "+err.Error(), rowid); err != nil {
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
				err = insertRun(ctx, tx, TaskRun{TaskID: t.ID, StartedAt: due, Status: RunSkipped,
					Error: "skipped: the run claimed at " + claim.Format(time.RFC3339) + " had not finished"})
			case claim != nil:
				s.log.Warn("a claimed run of the task never finished; taking it as lost", "task", t.ID, "claimed_at", *claim)
				err = insertRun(ctx, tx, TaskRun{TaskID: t.ID, StartedAt: *claim, Status: RunError,
					Error: fmt.Sprintf("no result: the run claimed at %s had not finished after %v (did nanoclaw stop during it?)", claim.Format(time.RFC3339), lease)})
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

// insertRun adds a run to the log alone; the task's last run is not changed.
func insertRun(ctx context.Context, tx *sql.Tx, r TaskRun) error {
	if err := r.Validate(); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO task_runs (task_id, started_at, duration_ms, status, result, error) VALUES (?, ?, ?, ?, ?, ?)`,
		r.TaskID, toMillis(r.StartedAt), r.Duration.Milliseconds(), string(r.Status), nullString(r.Result), nullString(r.Error))
	return err
}

// releaseLostClaims ends the claims older than lease of tasks that are no
// longer active: a once task is completed when it is claimed, and a task
// may be cancelled while its run waits or runs. R9: such a claim counts
// toward the group's cap (countedTask), so one lost with a host that stopped
// mid-run must not hold a place in the cap for good. It is logged as a
// failed run, as ClaimDue does for an active task.
func (s *Store) releaseLostClaims(ctx context.Context, tx *sql.Tx, now time.Time, lease time.Duration) error {
	lost, err := taskRows(ctx, tx, `status IN ('completed', 'cancelled') AND claimed_at <= ?`, toMillis(now.Add(-lease)))
	if err != nil {
		return err
	}
	for _, raw := range lost {
		rowid := raw[0].(int64)
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET claimed_at = NULL WHERE rowid = ?`, rowid); err != nil {
			return err
		}
		t, key, err := decodeTask(raw[1:])
		if err != nil {
			s.log.Warn("invalid task row with a lost claim; the claim is cleared", "table", "tasks", "key", key, "err", err)
			continue
		}
		s.log.Warn("a claimed run of the task never finished; taking it as lost", "task", t.ID, "status", t.Status, "claimed_at", *t.ClaimedAt)
		if err := insertRun(ctx, tx, TaskRun{TaskID: t.ID, StartedAt: *t.ClaimedAt, Status: RunError,
			Error: fmt.Sprintf("no result: the run claimed at %s had not finished after %v (did nanoclaw stop during it?)", t.ClaimedAt.Format(time.RFC3339), lease)}); err != nil {
			return err
		}
	}
	return nil
}

// taskRows reads the raw rows (rowid first) of the tasks that match where
// (an SQL condition, which may go on with ORDER BY and LIMIT).
func taskRows(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]rawRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT rowid, `+taskColumns+` FROM tasks WHERE `+where, args...)
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

// migrationTaskClaims is schema step v4, for R16 and R20. Tasks record who
// paused them (paused_by, exactly while paused: the database enforces it) and
// the claim of their pending run (claimed_at); runs may be "skipped". SQLite
// cannot change a CHECK in place, so both tables are rebuilt. The runs are
// copied first into a table that refers to the new tasks table, because
// dropping the old tasks table would cascade to every row that refers to it.
// A pause from before v4 is taken to be the owner's: the strictest reading.
const migrationTaskClaims = `
CREATE TABLE tasks_v3 (
	id             TEXT PRIMARY KEY,
	folder         TEXT NOT NULL REFERENCES groups(folder) ON DELETE CASCADE,
	chat_jid       TEXT NOT NULL,
	prompt         TEXT NOT NULL,
	schedule_type  TEXT NOT NULL CHECK (schedule_type IN ('cron', 'interval', 'once')),
	schedule_value TEXT NOT NULL,
	timezone       TEXT NOT NULL,
	context_mode   TEXT NOT NULL CHECK (context_mode IN ('group', 'isolated')),
	status         TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'cancelled')),
	next_run       INTEGER,
	last_run       INTEGER,
	last_result    TEXT,
	created_at     INTEGER NOT NULL,
	paused_by      TEXT CHECK (paused_by IN ('scheduler', 'group', 'main', 'owner')),
	claimed_at     INTEGER,
	CHECK ((status = 'paused') = (paused_by IS NOT NULL))
);
INSERT INTO tasks_v3 SELECT id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode,
	status, next_run, last_run, last_result, created_at, CASE WHEN status = 'paused' THEN 'owner' END, NULL FROM tasks;

CREATE TABLE task_runs_v3 (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	task_id     TEXT NOT NULL REFERENCES tasks_v3(id) ON DELETE CASCADE,
	started_at  INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('success', 'error', 'skipped')),
	result      TEXT,
	error       TEXT
);
INSERT INTO task_runs_v3 SELECT id, task_id, started_at, duration_ms, status, result, error FROM task_runs;

DROP TABLE task_runs;
DROP TABLE tasks;
ALTER TABLE tasks_v3 RENAME TO tasks;
ALTER TABLE task_runs_v3 RENAME TO task_runs;
CREATE INDEX tasks_due ON tasks(status, next_run);
CREATE INDEX tasks_folder ON tasks(folder);
CREATE INDEX task_runs_task ON task_runs(task_id, started_at);
`
