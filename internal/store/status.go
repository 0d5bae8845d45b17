package store

import (
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
}

// Activity returns each group's Activity, by folder; a group with none of
// it is missing. Each part is one grouped query over an index, so status
// costs the same few statements however many groups and tasks there are.
func (s *Store) Activity(ctx context.Context) (map[string]Activity, error) {
	// Each query gives folder, a count and a time (unix ms or NULL).
	parts := []struct {
		what, query string
		set         func(a *Activity, n int, t *time.Time)
	}{
		{"last message", `SELECT gc.folder, 0, max(c.last_activity) FROM group_chats gc JOIN chats c ON c.jid = gc.jid GROUP BY gc.folder`,
			func(a *Activity, _ int, t *time.Time) { a.LastMessage = deref(t) }},
		{"last reply", `SELECT folder, 0, max(at) FROM events WHERE kind = 'replied' GROUP BY folder`,
			func(a *Activity, _ int, t *time.Time) { a.LastReply = deref(t) }},
		{"tasks", `SELECT folder, count(*), min(CASE WHEN status = 'active' THEN next_run END) FROM tasks
			WHERE status IN ('active', 'paused') GROUP BY folder`,
			func(a *Activity, n int, t *time.Time) { a.Tasks, a.NextRun = n, t }},
	}
	acts := make(map[string]Activity)
	for _, p := range parts {
		if err := s.activity(ctx, p.query, func(folder string, n int, t *time.Time) {
			a := acts[folder]
			p.set(&a, n, t)
			acts[folder] = a
		}); err != nil {
			return nil, fmt.Errorf("read the %s of each group: %w", p.what, err)
		}
	}
	return acts, nil
}

func (s *Store) activity(ctx context.Context, query string, add func(folder string, n int, t *time.Time)) error {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var folder string
		var n int
		var ms sql.NullInt64
		if err := rows.Scan(&folder, &n, &ms); err != nil {
			return err
		}
		var t *time.Time
		if ms.Valid {
			t = new(time.UnixMilli(ms.Int64))
		}
		add(folder, n, t)
	}
	return rows.Err()
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
	return queryList(ctx, s, fmt.Sprintf("next tasks of group %q", folder), "tasks", scanTask,
		`SELECT `+taskColumns+` FROM tasks WHERE status = 'active' AND next_run IS NOT NULL AND (?1 = '' OR folder = ?1)
		ORDER BY next_run LIMIT ?2`, folder, limit)
}
