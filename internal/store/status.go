package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Activity is what `status` shows of a group beside its settings.
type Activity struct {
	LastMessage time.Time  // the newest message in any of its chats; zero: none
	LastReply   time.Time  // the newest step of its trace that was a reply; zero: none
	Tasks       int        // active and paused tasks
	NextRun     *time.Time // the soonest run of an active task; nil: none
	Used        UsageSum   // model usage over the days asked for
	UsedLastDay UsageSum   // model usage on the last of them
}

// UsageSum is model usage summed over days.
type UsageSum struct {
	Requests     int64
	InputTokens  int64
	OutputTokens int64
}

// Activity returns the Activity of every group, or of the group in folder
// alone, by folder, with the usage from fromDay to toDay (YYYY-MM-DD); a
// group with none of it may be missing. Each part is one statement that
// seeks an index once per group, so status costs a few statements and a
// little per group however many messages, events, tasks and days of usage
// the groups have.
func (s *Store) Activity(ctx context.Context, folder, fromDay, toDay string) (map[string]Activity, error) {
	if err := cmp.Or(ValidateDay(fromDay), ValidateDay(toDay)); err != nil {
		return nil, fmt.Errorf("activity from %s to %s: %w", fromDay, toDay, err)
	}
	// Each query gives a folder, then numbers: counts, or unix ms, or NULL.
	// CROSS JOIN keeps groups the outer loop, so each group is a seek of
	// the other table's index (without statistics SQLite would rather scan
	// all of usage, or walk tasks_due once per group).
	const groups = `FROM groups g WHERE (?1 = '' OR g.folder = ?1)`
	// Each binds what it uses: SQLite refuses an unused argument.
	byGroup, byDays, byDay := []any{folder}, []any{folder, fromDay, toDay}, []any{folder, toDay}
	parts := []struct {
		what, query string
		args        []any
		set         func(a *Activity, v []sql.NullInt64)
	}{
		{"last message", `SELECT gc.folder, max(c.last_activity) FROM group_chats gc JOIN chats c ON c.jid = gc.jid
			WHERE (?1 = '' OR gc.folder = ?1) GROUP BY gc.folder`, byGroup,
			func(a *Activity, v []sql.NullInt64) { a.LastMessage = deref(millis(v[0])) }},
		// Each group's newest reply is one seek of events_kind_folder; a
		// task's run (seq 0: no message) is no reply.
		{"last reply", `SELECT g.folder, (SELECT e.at FROM events e WHERE e.kind = 'replied' AND e.folder = g.folder
			AND e.seq > 0 ORDER BY e.id DESC LIMIT 1) ` + groups, byGroup,
			func(a *Activity, v []sql.NullInt64) { a.LastReply = deref(millis(v[0])) }},
		{"tasks", `SELECT g.folder, count(*), min(iif(t.status = 'active', t.next_run, NULL))
			FROM groups g CROSS JOIN tasks t ON t.folder = g.folder AND t.status IN ('active', 'paused')
			WHERE (?1 = '' OR g.folder = ?1) GROUP BY g.folder`, byGroup,
			func(a *Activity, v []sql.NullInt64) { a.Tasks, a.NextRun = int(v[0].Int64), millis(v[1]) }},
		// Summed here, not row by row in Go: a month of 1 000 groups is
		// 30 000 rows. The last day is a seek a group of its own, cheaper
		// than a condition on each of those rows.
		{"usage", `SELECT g.folder, sum(u.requests), sum(u.input_tokens), sum(u.output_tokens)
			FROM groups g CROSS JOIN usage u ON u.folder = g.folder AND u.day BETWEEN ?2 AND ?3
			WHERE (?1 = '' OR g.folder = ?1) GROUP BY g.folder`, byDays,
			func(a *Activity, v []sql.NullInt64) { a.Used = UsageSum{v[0].Int64, v[1].Int64, v[2].Int64} }},
		{"usage of the last day", `SELECT g.folder, u.requests, u.input_tokens, u.output_tokens
			FROM groups g CROSS JOIN usage u ON u.folder = g.folder AND u.day = ?2
			WHERE (?1 = '' OR g.folder = ?1)`, byDay,
			func(a *Activity, v []sql.NullInt64) { a.UsedLastDay = UsageSum{v[0].Int64, v[1].Int64, v[2].Int64} }},
	}
	acts := make(map[string]Activity)
	for _, p := range parts {
		if err := s.activity(ctx, p.query, p.args, func(folder string, v []sql.NullInt64) {
			a := acts[folder]
			p.set(&a, v)
			acts[folder] = a
		}); err != nil {
			return nil, fmt.Errorf("read the %s of each group: %w", p.what, err)
		}
	}
	return acts, nil
}

// activity runs query and hands each row's folder and numbers to add.
func (s *Store) activity(ctx context.Context, query string, args []any, add func(folder string, v []sql.NullInt64)) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var folder string
	v := make([]sql.NullInt64, len(cols)-1)
	dest := []any{&folder}
	for i := range v {
		dest = append(dest, &v[i])
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		add(folder, v)
	}
	return rows.Err()
}

// millis is the time of unix milliseconds ms; nil for NULL.
func millis(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	return new(time.UnixMilli(ms.Int64))
}

// deref is *t, or the zero time for nil.
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// NextTasks returns the active tasks of the group in folder ("" = of every
// group) that run soonest, at most limit of them, soonest first. Invalid
// rows are skipped and logged.
func (s *Store) NextTasks(ctx context.Context, folder string, limit int) ([]Task, error) {
	what := fmt.Sprintf("next tasks of group %q", folder)
	// Two statements, not one with "?1 = '' OR folder = ?1", which no
	// index serves: tasks_due gives every group's in order, tasks_folder
	// one group's few (named: SQLite would walk tasks_due for them too).
	if folder == "" {
		return queryList(ctx, s, what, "tasks", scanTask,
			`SELECT `+taskColumns+` FROM tasks WHERE status = 'active' AND next_run IS NOT NULL ORDER BY next_run LIMIT ?`, limit)
	}
	return queryList(ctx, s, what, "tasks", scanTask,
		`SELECT `+taskColumns+` FROM tasks INDEXED BY tasks_folder WHERE folder = ? AND status = 'active' AND next_run IS NOT NULL ORDER BY next_run LIMIT ?`,
		folder, limit)
}
