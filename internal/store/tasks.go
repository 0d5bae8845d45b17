package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	// Task rows are validated on every read (finding 12), time zone included:
	// embed the zone database so a host without /usr/share/zoneinfo does not
	// turn every task into a bad row.
	_ "time/tzdata"
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
	return oneOf("task actor", a, ActorScheduler, ActorGroup, ActorMain, ActorOwner)
}

// actorRank orders the actors: main and the owner are equals.
var actorRank = map[TaskActor]int{ActorScheduler: 0, ActorGroup: 1, ActorMain: 2, ActorOwner: 2}

// pauserRank is the rank of a task's paused_by, in SQL; an unknown pauser
// outranks every actor.
const pauserRank = `CASE paused_by WHEN 'scheduler' THEN 0 WHEN 'group' THEN 1 WHEN 'main' THEN 2 WHEN 'owner' THEN 2 ELSE 3 END`

// MayLift reports whether a may resume or edit a task that by paused.
func (a TaskActor) MayLift(by TaskActor) bool { return actorRank[a] >= actorRank[by] }

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
	if err := cmp.Or(nonEmpty("task id", t.ID), nonEmpty("prompt", t.Prompt), nonEmpty("schedule value", t.ScheduleValue),
		ValidateFolder(t.Folder), checkJID(t.ChatJID), t.ScheduleType.Validate()); err != nil {
		return err
	}
	if t.ScheduleType == ScheduleInterval {
		if ms, err := strconv.ParseInt(t.ScheduleValue, 10, 64); err != nil || ms <= 0 {
			return fmt.Errorf("interval %q is not a positive number of milliseconds", t.ScheduleValue)
		}
	}
	if err := cmp.Or(ValidateTimezone(t.Timezone), t.ContextMode.Validate(), t.Status.Validate()); err != nil {
		return err
	}
	if (t.Status == TaskPaused) != (t.PausedBy != "") {
		return fmt.Errorf("status %s with paused_by %q: a task records who paused it exactly while it is paused", t.Status, string(t.PausedBy))
	}
	var pauser error
	if t.PausedBy != "" {
		pauser = t.PausedBy.Validate()
	}
	return cmp.Or(pauser, checkNullTime("claimed_at", t.ClaimedAt), checkNullTime("next_run", t.NextRun),
		checkNullTime("last_run", t.LastRun), checkTime("created_at", t.CreatedAt))
}

// Validate reports whether st is a known schedule type.
func (st ScheduleType) Validate() error {
	return oneOf("schedule type", st, ScheduleCron, ScheduleInterval, ScheduleOnce)
}

// Validate reports whether m is a known context mode.
func (m ContextMode) Validate() error { return oneOf("context mode", m, ContextGroup, ContextIsolated) }

// Validate reports whether st is a known task status.
func (st TaskStatus) Validate() error {
	return oneOf("task status", st, TaskActive, TaskPaused, TaskCompleted, TaskCancelled)
}

// Validate reports whether st is a known run outcome.
func (st RunStatus) Validate() error {
	return oneOf("run status", st, RunSuccess, RunError, RunSkipped)
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

// taskColumns reads a task; NULL text is "".
const taskColumns = `id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode, status,
	next_run, last_run, coalesce(last_result, ''), created_at, coalesce(paused_by, ''), claimed_at`

func scanTask(sc scanner) (t Task, key string, err error) {
	err = sc.Scan(&t.ID, &t.Folder, &t.ChatJID, &t.Prompt, &t.ScheduleType, &t.ScheduleValue, &t.Timezone,
		&t.ContextMode, &t.Status, asNullTime(&t.NextRun), asNullTime(&t.LastRun), &t.LastResult,
		asTime(&t.CreatedAt), &t.PausedBy, asNullTime(&t.ClaimedAt))
	return t, t.ID, cmp.Or(err, t.Validate())
}

// GetTask returns the task id; found is false if there is none.
func (s *Store) GetTask(ctx context.Context, id string) (t Task, found bool, err error) {
	return queryOne(ctx, s, fmt.Sprintf("get task %q", id), "tasks", scanTask,
		`SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id)
}

// TaskQuery selects the tasks of ListTasksPage.
type TaskQuery struct {
	Folder   string // the group's tasks; "" every group's
	Finished bool   // completed and cancelled tasks too; else active and paused ones only
	Limit    int    // the most returned, newest first; must be positive
}

// ListTasksPage returns the newest q.Limit tasks that match q, newest
// first, and how many more (older) ones match. Invalid rows are skipped and
// logged. R9: the filter and the limit are the query's, so a list costs a
// bounded read however many tasks there are.
func (s *Store) ListTasksPage(ctx context.Context, q TaskQuery) (list []Task, more int, err error) {
	what := fmt.Sprintf("list tasks of group %q", q.Folder)
	if q.Limit <= 0 {
		return nil, 0, fmt.Errorf("%s: limit %d is not positive", what, q.Limit)
	}
	// count(*) OVER () is the number of matching rows before the LIMIT: the
	// count and the rows come from one statement, so they agree.
	var total int
	withTotal := func(sc scanner) (Task, string, error) { return scanTask(totalScanner{sc, &total}) }
	list, err = queryList(ctx, s, what, "tasks", withTotal, `
		SELECT `+taskColumns+`, count(*) OVER () FROM tasks
		WHERE (:folder = '' OR folder = :folder) AND (:finished OR status IN ('active', 'paused'))
		ORDER BY created_at DESC, rowid DESC LIMIT :limit`,
		sql.Named("folder", q.Folder), sql.Named("finished", q.Finished), sql.Named("limit", q.Limit))
	if err != nil {
		return nil, 0, err
	}
	return list, max(total-q.Limit, 0), nil
}

// totalScanner reads a row with one more column at its end, into total.
type totalScanner struct {
	scanner
	total *int
}

func (t totalScanner) Scan(dest ...any) error { return t.scanner.Scan(append(dest, t.total)...) }

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
	return s.guardedUpdate(ctx, what, id, ActorOwner, nil,
		`UPDATE tasks SET status = ?, paused_by = NULL WHERE id = ? AND (status != 'cancelled' OR ? = 'cancelled')`,
		string(status), id, string(status))
}

// PauseTask pauses a task on behalf of by. Pausing a paused task again keeps
// the stronger of the two pausers, so a group cannot turn main's pause into
// its own and then lift it. A cancelled or completed task cannot be paused
// (an error wrapping ErrTaskLocked).
func (s *Store) PauseTask(ctx context.Context, id string, by TaskActor) error {
	return s.guardedUpdate(ctx, fmt.Sprintf("pause task %q", id), id, by, nil, `
		UPDATE tasks SET status = 'paused',
			paused_by = CASE WHEN status = 'paused' AND `+pauserRank+` > ? THEN paused_by ELSE ? END
		WHERE id = ? AND status IN ('active', 'paused')`,
		actorRank[by], string(by), id)
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
	if err := checkTime("next_run", next); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	over := func(t Task) error {
		if limit <= 0 {
			return nil
		}
		return &TaskLimitError{Folder: t.Folder, Limit: limit}
	}
	return s.guardedUpdate(ctx, what, id, by, over, `
		UPDATE tasks SET status = 'active', paused_by = NULL, next_run = ?
		WHERE id = ? AND status IN ('active', 'paused') AND (status != 'paused' OR `+pauserRank+` <= ?)
			AND (? <= 0 OR (SELECT count(*) FROM tasks AS other
				WHERE other.folder = tasks.folder AND other.id != tasks.id AND `+countedTask+`) < ?)`,
		toMillis(next), id, actorRank[by], limit, limit)
}

// UpdateTask replaces a task's prompt, schedule (type, value, time zone) and
// next run with t's, in one statement, on behalf of by; t.ID names the task,
// t.Folder must be its group (a task never moves) and t as a whole must be
// valid. Other fields (status, last run) are left
// alone. R20: a cancelled task, or one paused by a stronger actor, is not
// changed (an error wrapping ErrTaskLocked); R9: nor is a completed one, which
// could otherwise be given a new schedule and resumed. R9: a once task is
// refused (an error wrapping a *OnceTooCloseError) when its time is less
// than onceGap from another once task of its group (onceTimes), checked in
// the same statement. A missing task is an error wrapping ErrNotFound.
func (s *Store) UpdateTask(ctx context.Context, t Task, by TaskActor, onceGap time.Duration) error {
	what := fmt.Sprintf("update task %q", t.ID)
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	at, gap := onceArgs(t, onceGap)
	refused := func(stored Task) error {
		switch {
		case stored.Folder != t.Folder:
			return fmt.Errorf("the task is of group %s, not %s: a task never moves", stored.Folder, t.Folder)
		case gap > 0:
			return nearestOnce(ctx, s.db, t, onceGap)
		}
		return nil
	}
	return s.guardedUpdate(ctx, what, t.ID, by, refused, `
		UPDATE tasks SET prompt = :prompt, schedule_type = :type, schedule_value = :value, timezone = :tz, next_run = :next
		WHERE id = :self AND folder = :folder AND status IN ('active', 'paused')
			AND (status != 'paused' OR `+pauserRank+` <= :rank)
			AND NOT `+onceNear,
		sql.Named("prompt", t.Prompt), sql.Named("type", string(t.ScheduleType)), sql.Named("value", t.ScheduleValue),
		sql.Named("tz", t.Timezone), sql.Named("next", nullMillis(t.NextRun)), sql.Named("self", t.ID),
		sql.Named("rank", actorRank[by]), sql.Named("folder", t.Folder), sql.Named("at", at), sql.Named("gap", gap))
}

// guardedUpdate runs a statement on task id whose WHERE clause guards the
// change, made on behalf of by (a known actor), and may hold it to more (a
// cap). When no row changed it says why: no such task (ErrNotFound), a
// pause by a stronger actor (ErrTaskLocked), capErr's reason for the task
// as it is now (capErr may be nil, and may return nil), or else its state
// (ErrTaskLocked).
func (s *Store) guardedUpdate(ctx context.Context, what, id string, by TaskActor, capErr func(Task) error, query string, args ...any) error {
	if err := by.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
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
	case t.Status == TaskActive || t.Status == TaskPaused:
		if capErr != nil {
			if err := capErr(t); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	return fmt.Errorf("%s: it is %s: %w", what, t.Status, ErrTaskLocked)
}

// oneOf reports whether v is one of the known values of its kind, what.
func oneOf[T ~string](what string, v T, known ...T) error {
	if slices.Contains(known, v) {
		return nil
	}
	want := make([]string, len(known))
	for i, k := range known {
		want[i] = string(k)
	}
	return fmt.Errorf("unknown %s %q (want %s or %s)", what, string(v), strings.Join(want[:len(want)-1], ", "), want[len(want)-1])
}
