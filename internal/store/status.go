package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Activity is a group as `status` shows it: its name and what it did.
type Activity struct {
	Folder      string
	Name        string
	Main        bool
	LastMessage time.Time  // the newest message in any of its chats; zero: none
	LastReply   time.Time  // the newest step of its trace that was a reply; zero: none
	Tasks       int        // active and paused tasks
	NextRun     *time.Time // the soonest run of an active task; nil: none
	Month       UsageSum   // model usage in the month of the day asked for
	Day         UsageSum   // model usage on that day
}

// UsageSum is model usage summed over days.
type UsageSum struct {
	Requests     int64
	InputTokens  int64
	OutputTokens int64
}

// activityQuery is one row a group, each value a seek of an index (see
// statusSummaries): status costs the same per group however many messages,
// events, tasks and days of usage the groups have. ?1 is a folder (empty
// for every group), ?2 the month, ?3 the day.
const activityQuery = `SELECT g.folder, g.name, g.is_main,
	(SELECT max(c.last_activity) FROM group_chats gc JOIN chats c ON c.jid = gc.jid WHERE gc.folder = g.folder),
	-- a task's run (seq 0: no message) is no reply
	(SELECT e.at FROM events e WHERE e.kind = 'replied' AND e.folder = g.folder AND e.seq > 0 ORDER BY e.id DESC LIMIT 1),
	(SELECT count(*) FROM tasks t WHERE t.folder = g.folder AND t.status IN ('active', 'paused')),
	(SELECT min(t.next_run) FROM tasks t WHERE t.folder = g.folder AND t.status = 'active'),
	coalesce(m.requests, 0), coalesce(m.input_tokens, 0), coalesce(m.output_tokens, 0),
	coalesce(d.requests, 0), coalesce(d.input_tokens, 0), coalesce(d.output_tokens, 0)
FROM groups g
LEFT JOIN usage_months m ON m.folder = g.folder AND m.month = ?2
LEFT JOIN usage d ON d.folder = g.folder AND d.day = ?3
WHERE (?1 = '' OR g.folder = ?1)
ORDER BY g.folder`

// Activity returns every group's Activity by folder, or the group's in
// folder alone (none when there is no such group), with its usage on day
// (YYYY-MM-DD, UTC as the gateway counts) and in day's month.
func (s *Store) Activity(ctx context.Context, folder, day string) ([]Activity, error) {
	if err := ValidateDay(day); err != nil {
		return nil, fmt.Errorf("activity on %s: %w", day, err)
	}
	rows, err := s.db.QueryContext(ctx, activityQuery, folder, day[:7], day)
	if err != nil {
		return nil, fmt.Errorf("read what each group did: %w", err)
	}
	defer rows.Close()
	var acts []Activity
	for rows.Next() {
		var a Activity
		var lastMessage, lastReply, nextRun sql.NullInt64
		if err := rows.Scan(&a.Folder, &a.Name, &a.Main, &lastMessage, &lastReply, &a.Tasks, &nextRun,
			&a.Month.Requests, &a.Month.InputTokens, &a.Month.OutputTokens,
			&a.Day.Requests, &a.Day.InputTokens, &a.Day.OutputTokens); err != nil {
			return nil, fmt.Errorf("read what each group did: %w", err)
		}
		a.LastMessage, a.LastReply, a.NextRun = deref(millis(lastMessage)), deref(millis(lastReply)), millis(nextRun)
		acts = append(acts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read what each group did: %w", err)
	}
	return acts, nil
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
