package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// How long finished tasks are kept. R9: a group that schedules and cancels
// in a loop must not grow the database (and every list of its tasks)
// without end, so the completed and cancelled tasks of a group are pruned
// whenever it gets a new task: only the newest KeepFinishedTasks stay, none
// older than FinishedTaskRetention. A task's age is its last run, or its
// creation if it never ran.
const (
	KeepFinishedTasks     = 50
	FinishedTaskRetention = 30 * 24 * time.Hour
)

// TaskCaps bound a group's tasks when CreateTaskWithin makes one (all
// three) or UpdateTask changes one (OnceGap). Zero or less means no bound.
type TaskCaps struct {
	// Counted is the most tasks that count toward the group's cap
	// (countedTask): a *TaskLimitError.
	Counted int
	// Kept is the most tasks the group may keep, finished ones included:
	// a *TaskKeptError.
	Kept int
	// OnceGap is the least time between a once task's run and the runs of
	// the group's other once tasks, pending, claimed or made: a
	// *OnceTooCloseError.
	OnceGap time.Duration
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

// TaskKeptError is the refusal of CreateTaskWithin when the group already
// keeps Limit tasks of any status.
type TaskKeptError TaskLimitError

func (e *TaskKeptError) Error() string {
	return fmt.Sprintf("group %s already keeps %d tasks, finished ones included", e.Folder, e.Limit)
}

// OnceTooCloseError is the refusal of a once task whose time At is less
// than Gap from Near, the time of another once task of the group: one still
// to run, or the start of a run claimed or made.
type OnceTooCloseError struct {
	Folder   string
	At, Near time.Time
	Gap      time.Duration
}

func (e *OnceTooCloseError) Error() string {
	return fmt.Sprintf("once time %s is less than %v from another once task of group %s (at %s)",
		e.At.UTC().Format(time.RFC3339), e.Gap, e.Folder, e.Near.UTC().Format(time.RFC3339))
}

// countedTask is the SQL condition of a task that counts toward its group's
// cap. R9: every task that may still start a container counts — active or
// paused, and any with a claimed run not yet recorded: a once task is
// completed as soon as it is claimed, and a cancelled one may be running.
const countedTask = `(status IN ('active', 'paused') OR claimed_at IS NOT NULL)`

// onceTimes are the times of the once tasks of group :folder other than
// :self: the next run of each still to run, and the start of each run
// claimed or made. R9: a group's once tasks are spaced by these, so that a
// group cannot get around the shortest interval with once tasks due a
// second apart, each run scheduling the next.
const onceTimes = `
	SELECT next_run AS at FROM tasks WHERE folder = :folder AND id != :self AND schedule_type = 'once'
		AND status IN ('active', 'paused') AND next_run IS NOT NULL
	UNION ALL SELECT claimed_at FROM tasks WHERE folder = :folder AND id != :self AND schedule_type = 'once'
		AND claimed_at IS NOT NULL
	UNION ALL SELECT last_run FROM tasks WHERE folder = :folder AND id != :self AND schedule_type = 'once'
		AND last_run IS NOT NULL`

// onceNear is the SQL condition that a once time :at is less than :gap
// milliseconds from one of onceTimes (never, for :gap <= 0).
const onceNear = `EXISTS (SELECT 1 FROM (` + onceTimes + `) WHERE abs(at - :at) < :gap)`

// pruneFinished deletes the finished tasks of group :folder that are older
// than :cutoff or beyond the newest :keep (their runs go with them). Claimed
// ones stay until their run is recorded: they still count toward the cap.
// The group's latest once run stays too, even beyond the newest :keep, or a
// group could cancel its way past it and schedule its next once task closer
// than the gap (onceTimes).
const pruneFinished = `
	DELETE FROM tasks WHERE folder = :folder AND status IN ('completed', 'cancelled') AND claimed_at IS NULL
		AND (max(created_at, coalesce(last_run, 0)) < :cutoff
			OR (id NOT IN (SELECT id FROM tasks WHERE folder = :folder AND status IN ('completed', 'cancelled')
					AND claimed_at IS NULL ORDER BY max(created_at, coalesce(last_run, 0)) DESC, rowid DESC LIMIT :keep)
				AND id IS NOT (SELECT id FROM tasks WHERE folder = :folder AND schedule_type = 'once'
					AND last_run IS NOT NULL ORDER BY last_run DESC, id DESC LIMIT 1)))`

// CreateTaskWithin stores a new task within caps (zero caps: no cap). A
// zero CreatedAt means now. An existing id, or a folder with no group, is an
// error. First the group's finished
// tasks are pruned (pruneFinished, as of t.CreatedAt, keeping the newest
// KeepFinishedTasks or as many as caps.Kept leaves beside caps.Counted,
// whichever is fewer); then t is stored
// unless that would break a cap: the error is a *TaskLimitError, a
// *TaskKeptError or, for a once task, a *OnceTooCloseError. R9: the checks
// and the insert are one statement, so concurrent calls cannot together
// pass a cap; the pruning, the insert and the reading of a refusal's reason
// are one transaction.
func (s *Store) CreateTaskWithin(ctx context.Context, t Task, caps TaskCaps) error {
	t.CreatedAt = cmp.Or(t.CreatedAt, time.Now())
	if err := t.Validate(); err != nil {
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	at, gap := onceArgs(t, caps.OnceGap)
	// Fewer finished tasks are kept when the caps leave less room beside
	// the counted ones, so a small cap never locks a group out for the
	// whole retention.
	keep := KeepFinishedTasks
	if caps.Kept > 0 {
		keep = min(keep, max(caps.Kept-max(caps.Counted, 0), 0))
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, pruneFinished, sql.Named("folder", t.Folder),
			sql.Named("cutoff", toMillis(t.CreatedAt.Add(-FinishedTaskRetention))), sql.Named("keep", keep)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO tasks (id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode, status,
				next_run, last_run, last_result, created_at, paused_by, claimed_at)
			SELECT :self, :folder, :chat, :prompt, :type, :value, :tz, :mode, :status,
				:next, :last, :result, :created, :paused_by, :claimed
			WHERE (:counted <= 0 OR (SELECT count(*) FROM tasks WHERE folder = :folder AND `+countedTask+`) < :counted)
				AND (:kept <= 0 OR (SELECT count(*) FROM tasks WHERE folder = :folder) < :kept)
				AND NOT `+onceNear,
			sql.Named("self", t.ID), sql.Named("folder", t.Folder), sql.Named("chat", t.ChatJID),
			sql.Named("prompt", t.Prompt), sql.Named("type", string(t.ScheduleType)), sql.Named("value", t.ScheduleValue),
			sql.Named("tz", t.Timezone), sql.Named("mode", string(t.ContextMode)), sql.Named("status", string(t.Status)),
			sql.Named("next", nullMillis(t.NextRun)), sql.Named("last", nullMillis(t.LastRun)),
			sql.Named("result", nullString(t.LastResult)), sql.Named("created", toMillis(t.CreatedAt)),
			sql.Named("paused_by", nullString(string(t.PausedBy))), sql.Named("claimed", nullMillis(t.ClaimedAt)),
			sql.Named("counted", caps.Counted), sql.Named("kept", caps.Kept), sql.Named("at", at), sql.Named("gap", gap))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return capRefusal(ctx, tx, t, caps)
		}
		return nil
	})
	switch {
	case errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY):
		return fmt.Errorf("create task %q: a task with this id already exists", t.ID)
	case errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY):
		return fmt.Errorf("create task %q: no group %q: %w", t.ID, t.Folder, ErrNotFound)
	case err != nil:
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	return nil
}

// onceArgs are the :at and :gap of onceNear for task t: its next run and
// gap in milliseconds if it is a once task to run, else no gap.
func onceArgs(t Task, gap time.Duration) (at, gapMillis int64) {
	if t.ScheduleType != ScheduleOnce || t.NextRun == nil || gap <= 0 {
		return 0, 0
	}
	return toMillis(*t.NextRun), gap.Milliseconds()
}

// capRefusal says which of caps kept task t out, read in the transaction
// that refused it.
func capRefusal(ctx context.Context, tx *sql.Tx, t Task, caps TaskCaps) error {
	var counted, kept int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE `+countedTask+`), count(*) FROM tasks WHERE folder = ?`,
		t.Folder).Scan(&counted, &kept)
	switch {
	case err != nil:
		return err
	case caps.Counted > 0 && counted >= caps.Counted:
		return &TaskLimitError{Folder: t.Folder, Limit: caps.Counted}
	case caps.Kept > 0 && kept >= caps.Kept:
		return &TaskKeptError{Folder: t.Folder, Limit: caps.Kept}
	}
	return nearestOnce(ctx, tx, t, caps.OnceGap)
}

// nearestOnce returns the *OnceTooCloseError of once task t: the once time
// of its group nearest to its own.
func nearestOnce(ctx context.Context, q rowQuerier, t Task, gap time.Duration) error {
	at, gapMillis := onceArgs(t, gap)
	var near time.Time
	err := q.QueryRowContext(ctx, `SELECT at FROM (`+onceTimes+`) WHERE abs(at - :at) < :gap ORDER BY abs(at - :at) LIMIT 1`,
		sql.Named("folder", t.Folder), sql.Named("self", t.ID), sql.Named("at", at), sql.Named("gap", gapMillis)).Scan(asTime(&near))
	if err != nil {
		if isNoRows(err) {
			return fmt.Errorf("task %q of group %s was refused, and no cap explains it now: try again", t.ID, t.Folder)
		}
		return err
	}
	return &OnceTooCloseError{Folder: t.Folder, At: *t.NextRun, Near: near, Gap: gap}
}

// rowQuerier is *sql.DB or *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
