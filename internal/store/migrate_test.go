package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func tableNames(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.DB().Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestMigrationsFreshAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, logs := openTestAt(t, path, nil)

	want := []string{"budget_hits", "chats", "container_ids", "cursors", "egress_approvals", "events", "group_chats", "groups", "messages", "outbox", "schema_migrations", "sessions", "task_runs", "tasks", "telegram", "usage", "usage_months"}
	if got := tableNames(t, s); !slices.Equal(got, want) {
		t.Fatalf("tables = %v, want %v", got, want)
	}
	v, err := s.schemaVersion(ctx)
	if err != nil || v != latest || v < 1 {
		t.Fatalf("schema version = %d, %v; want %d", v, err, latest)
	}
	if !strings.Contains(logs.String(), "migrated database schema") {
		t.Errorf("fresh database: no migration logged:\n%s", logs)
	}
	mustPutGroup(t, s, testGroup("main"))
	var appliedAt int64
	if err := s.DB().QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = ?`, latest).Scan(&appliedAt); err != nil || appliedAt <= 0 {
		t.Fatalf("applied_at = %d, %v", appliedAt, err)
	}
	s.Close()

	// Re-opening an up-to-date database changes nothing.
	s, logs = openTestAt(t, path, nil)
	if v2, err := s.schemaVersion(ctx); err != nil || v2 != v {
		t.Fatalf("after reopen: version %d, %v; want %d", v2, err, v)
	}
	var rows int
	if err := s.DB().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("schema_migrations has %d rows (%v), want 1: a new database is made at the newest version", rows, err)
	}
	var appliedAt2 int64
	s.DB().QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = ?`, latest).Scan(&appliedAt2)
	if appliedAt2 != appliedAt {
		t.Errorf("migration 1 re-applied: applied_at %d -> %d", appliedAt, appliedAt2)
	}
	if strings.Contains(logs.String(), "migrated database schema") {
		t.Errorf("reopen logged a migration:\n%s", logs)
	}
	if _, found, err := s.GetGroup(ctx, "main"); err != nil || !found {
		t.Fatalf("data lost on reopen: found=%v err=%v", found, err)
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, _ := openTestAt(t, path, nil)
	future := latest + 1
	if _, err := s.DB().Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err := Open(ctx, path, Options{})
	var tooNew *SchemaTooNewError
	if !errors.As(err, &tooNew) {
		t.Fatalf("err = %v, want a *SchemaTooNewError", err)
	}
	if tooNew.Version != future || tooNew.Known != latest {
		t.Fatalf("SchemaTooNewError = %+v", tooNew)
	}
	want := fmt.Sprintf("database schema v%d is newer than this nanoclaw (v%d); upgrade nanoclaw", future, latest)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestMigrationsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	steps := append(slices.Clone(upgrades),
		script(`CREATE TABLE extra_one (x INTEGER)`),
		script(`CREATE TABLE extra_two (x INTEGER); INSERT INTO no_such_table VALUES (1)`),
	)
	err := s.migrateTo(ctx, steps)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("migrate schema to v%d", len(steps)+1)) {
		t.Fatalf("err = %v, want a failure of the last step", err)
	}
	if v, _ := s.schemaVersion(ctx); v != latest {
		t.Fatalf("version after failed migration = %d, want %d", v, latest)
	}
	for _, name := range tableNames(t, s) {
		if strings.HasPrefix(name, "extra_") {
			t.Errorf("table %s of a failed migration run was kept", name)
		}
	}
	// Without the failing step, both apply, once.
	if err := s.migrateTo(ctx, steps[:len(steps)-1]); err != nil {
		t.Fatal(err)
	}
	if err := s.migrateTo(ctx, steps[:len(steps)-1]); err != nil {
		t.Fatalf("re-running migrations: %v", err)
	}
	if v, _ := s.schemaVersion(ctx); v != len(steps) {
		t.Fatalf("version = %d, want %d", v, len(steps))
	}
}

// latest is the schema version of this nanoclaw.
var latest = 1 + len(upgrades)

// schemaV1 is the first schema, which the upgrades start from.
const schemaV1 = `
CREATE TABLE chats (
	jid           TEXT PRIMARY KEY,
	name          TEXT NOT NULL DEFAULT '',
	channel       TEXT NOT NULL,
	is_group      INTEGER NOT NULL,
	last_activity INTEGER NOT NULL
);

CREATE TABLE groups (
	folder           TEXT PRIMARY KEY,
	name             TEXT NOT NULL,
	"trigger"        TEXT NOT NULL,
	requires_trigger INTEGER NOT NULL,
	is_main          INTEGER NOT NULL DEFAULT 0,
	added_at         INTEGER NOT NULL,
	container_config TEXT NOT NULL DEFAULT '{}'
);
-- At most one main group.
CREATE UNIQUE INDEX groups_one_main ON groups(is_main) WHERE is_main = 1;

-- A group may be reached from several chats (local:main and the WhatsApp
-- self-chat both reach main).
CREATE TABLE group_chats (
	jid    TEXT PRIMARY KEY,
	folder TEXT NOT NULL REFERENCES groups(folder) ON DELETE CASCADE
);
CREATE INDEX group_chats_folder ON group_chats(folder);

-- seq is the cursor unit: timestamps can collide, seq cannot.
CREATE TABLE messages (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	chat_jid    TEXT NOT NULL,
	id          TEXT NOT NULL,
	sender      TEXT NOT NULL,
	sender_name TEXT NOT NULL,
	content     TEXT NOT NULL,
	timestamp   INTEGER NOT NULL,
	from_me     INTEGER NOT NULL,
	is_bot      INTEGER NOT NULL,
	UNIQUE (chat_jid, id)
);
CREATE INDEX messages_chat_seq ON messages(chat_jid, seq);

CREATE TABLE sessions (
	folder     TEXT PRIMARY KEY REFERENCES groups(folder) ON DELETE CASCADE,
	session_id TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);

-- "Answered up to": the seq of the last message handled per chat.
CREATE TABLE cursors (
	chat_jid   TEXT PRIMARY KEY,
	last_seq   INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE tasks (
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
	created_at     INTEGER NOT NULL
);
CREATE INDEX tasks_due ON tasks(status, next_run);
CREATE INDEX tasks_folder ON tasks(folder);

CREATE TABLE task_runs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
	started_at  INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('success', 'error')),
	result      TEXT,
	error       TEXT
);
CREATE INDEX task_runs_task ON task_runs(task_id, started_at);

CREATE TABLE usage (
	folder        TEXT NOT NULL,
	day           TEXT NOT NULL, -- YYYY-MM-DD
	requests      INTEGER NOT NULL,
	input_tokens  INTEGER NOT NULL,
	output_tokens INTEGER NOT NULL,
	PRIMARY KEY (folder, day)
);
`

// openAtVersion opens a new database with the schema of version v, as an
// older nanoclaw left it.
func openAtVersion(t *testing.T, v int) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	dsn, err := dataSourceName(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &Store{db: db, path: path, log: slog.New(slog.DiscardHandler)}
	if _, err := db.Exec(schemaV1 + `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
		INSERT INTO schema_migrations VALUES (1, 0);`); err != nil {
		t.Fatal(err)
	}
	if err := s.migrateTo(context.Background(), upgrades[:v-1]); err != nil {
		t.Fatal(err)
	}
	return s
}

// The v6 step makes every table STRICT: every row the store could read
// survives, with its AUTOINCREMENT counter; rows of the wrong type or shape,
// and the rows that belong to them, are left behind.
func TestMigrationStrictKeepsData(t *testing.T) {
	ctx := context.Background()
	s := openAtVersion(t, 5)
	for _, q := range []string{
		`INSERT INTO chats VALUES ('g@g.us', 'Fam', 'whatsapp', 1, 1000), ('odd@g.us', '', 'whatsapp', 7, 1000)`,
		`INSERT INTO groups VALUES ('family', 'Family', '@Andy', 1, 0, 1000, '{"memory_mb":1024}'),
			('main', 'Main', '@Andy', 0, 1, 1000, '{}'), ('Bad Folder', 'X', '@A', 1, 0, 1000, '{}')`,
		`INSERT INTO group_chats VALUES ('g@g.us', 'family'), ('local:main', 'main'), ('bad@g.us', 'Bad Folder')`,
		`INSERT INTO messages (seq, chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot, quote) VALUES
			(1, 'g@g.us', 'm1', 's', 'S', 'hello', 1000, 0, 0, 'a quote'), (2, 'g@g.us', 'm2', 'bot', 'Andy', 'Andy: hi', 1001, 1, 1, ''),
			(4, 'g@g.us', 'm4', 's', 'S', 'late', 'noon', 0, 0, ''), (5, 'g@g.us', 'm5', 's', 'S', 'blob', 1002, 0, 0, x'00')`,
		`INSERT INTO sessions VALUES ('family', 'sess-1', 1000), ('Bad Folder', 'sess-2', 1000)`,
		`INSERT INTO cursors VALUES ('g@g.us', 1, 1000)`,
		`INSERT INTO tasks VALUES ('t1', 'family', 'g@g.us', 'p', 'cron', '0 8 * * *', 'UTC', 'group', 'paused', 5000, 4000, 'ok', 1000, 'owner', NULL),
			('t2', 'family', 'g@g.us', 'p', 'cron', '0 8 * * *', 'UTC', 'group', 'active', 'soon', NULL, NULL, 1000, NULL, NULL),
			('t3', 'Bad Folder', 'g@g.us', 'p', 'cron', '0 8 * * *', 'UTC', 'group', 'active', 5000, NULL, NULL, 1000, NULL, NULL)`,
		`INSERT INTO task_runs VALUES (7, 't1', 4000, 12, 'success', 'ok', NULL), (8, 't2', 4500, 0, 'error', NULL, 'boom')`,
		`INSERT INTO usage VALUES ('family', '2025-07-01', 2, 150, 15)`,
		`INSERT INTO outbox VALUES ('OUT1', 'g@g.us', 'family', 'Andy: hi', 1000, NULL), ('OUT2', 'g@g.us', 'family', 'Andy: yo', 1000, 2000)`,
		`INSERT INTO container_ids VALUES ('family', 70000)`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	logs := &logBuffer{}
	s.log = slog.New(slog.NewTextHandler(logs, nil))
	if err := s.migrateTo(ctx, upgrades); err != nil {
		t.Fatal(err)
	}
	// What is left behind is said, table by table.
	for _, want := range []string{"table=messages rows=2", "table=tasks rows=2", "table=groups rows=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the upgrade's log lacks %q:\n%s", want, logs)
		}
	}

	var loose []string
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM pragma_table_list WHERE schema = 'main' AND strict = 0 AND type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		rows.Scan(&name)
		loose = append(loose, name)
	}
	rows.Close()
	if !slices.Equal(loose, []string{"schema_migrations"}) {
		t.Errorf("tables not STRICT after the step: %v", loose)
	}
	var violations int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&violations); err != nil || violations != 0 {
		t.Errorf("%d foreign key violations (%v)", violations, err)
	}

	if chats, err := s.ListChats(ctx); err != nil || len(chats) != 1 || chats[0].Name != "Fam" || !chats[0].IsGroup {
		t.Errorf("chats = %+v, %v", chats, err)
	}
	if groups, err := s.ListGroups(ctx); err != nil || len(groups) != 2 || groups[0].Folder != "main" || groups[1].Config.MemoryMB != 1024 {
		t.Errorf("groups = %+v, %v", groups, err)
	}
	if g, found, err := s.GroupForChat(ctx, "local:main"); err != nil || !found || !g.IsMain {
		t.Errorf("group of local:main = %+v, %v, %v", g, found, err)
	}
	if _, found, err := s.GroupForChat(ctx, "bad@g.us"); err != nil || found {
		t.Errorf("the bad group's chat is still bound: %v, %v", found, err)
	}
	msgs := messagesOf(t, s, "g@g.us")
	if len(msgs) != 2 || msgs[0].Quote != "a quote" || !msgs[1].IsBot || !msgs[1].FromMe {
		t.Errorf("messages = %+v", msgs)
	}
	if seq, _, err := s.AddMessage(ctx, Message{ChatJID: "g@g.us", ID: "m6", Timestamp: time.Now()}); err != nil || seq != 6 {
		t.Errorf("the next message is seq %d (%v), want 6: a seq of a row left behind was handed out again", seq, err)
	}
	if id, err := s.Session(ctx, "family"); err != nil || id != "sess-1" {
		t.Errorf("session = %q, %v", id, err)
	}
	if c, err := s.Cursor(ctx, "g@g.us"); err != nil || c != 1 {
		t.Errorf("cursor = %d, %v", c, err)
	}
	if tasks, _, err := s.ListTasksPage(ctx, TaskQuery{Finished: true, Limit: 1000}); err != nil || len(tasks) != 1 || tasks[0].ID != "t1" || tasks[0].PausedBy != ActorOwner || tasks[0].LastResult != "ok" {
		t.Errorf("tasks = %+v, %v", tasks, err)
	}
	if runs, err := s.TaskRuns(ctx, "t1", 0); err != nil || len(runs) != 1 || runs[0].ID != 7 || runs[0].Duration != 12*time.Millisecond {
		t.Errorf("runs = %+v, %v", runs, err)
	}
	if id, err := s.AddTaskRun(ctx, TaskRun{TaskID: "t1", StartedAt: time.UnixMilli(6000), Status: RunSuccess}); err != nil || id != 9 {
		t.Errorf("the next run is id %d (%v), want 9", id, err)
	}
	var left int
	s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM task_runs) + (SELECT count(*) FROM group_chats)`).Scan(&left)
	if left != 1+2+2 {
		t.Errorf("%d sessions, runs and bindings, want 5: those of rows left behind are gone", left)
	}
	if u, err := s.Usage(ctx, "family", "2025-07-01", "2025-07-01"); err != nil || len(u) != 1 || u[0].InputTokens != 150 {
		t.Errorf("usage = %+v, %v", u, err)
	}
	if unsent, err := s.Unsent(ctx); err != nil || len(unsent) != 1 || unsent[0].ID != "OUT1" {
		t.Errorf("unsent = %+v, %v", unsent, err)
	}
	if sent := sentTo(t, s, "g@g.us"); len(sent) != 1 || sent[0].ID != "OUT2" {
		t.Errorf("sent = %+v", sent)
	}
	if uid, err := s.ContainerID(ctx, "family", 65536, 80000, func(int) bool { return false }); err != nil || uid != 70000 {
		t.Errorf("container id = %d, %v", uid, err)
	}
	// Deleting a group still cascades, now through the new tables.
	if err := s.DeleteGroup(ctx, "family"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.GetTask(ctx, "t1"); found {
		t.Error("the task of a deleted group is kept")
	}
}

// A database brought up from v1 by the upgrades has exactly the schema a
// new one is made with.
func TestUpgradesEndAtTheSchema(t *testing.T) {
	dump := func(s *Store) string {
		t.Helper()
		rows, err := s.DB().Query(`SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema WHERE name <> 'schema_migrations' ORDER BY type, name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var typ, name, table, sql string
			if err := rows.Scan(&typ, &name, &table, &sql); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %s on %s: %s\n", typ, name, table, sql)
		}
		return b.String()
	}
	fresh, _ := openTest(t)
	if got, want := dump(openAtVersion(t, latest)), dump(fresh); got != want {
		t.Fatalf("upgraded schema:\n%s\nnew schema:\n%s", got, want)
	}
}

// The v4 tasks step rebuilds tasks and task_runs: every row survives, a pause
// of unknown origin becomes the owner's, and runs still belong to their task.
func TestMigrationTaskClaimsKeepsData(t *testing.T) {
	ctx := context.Background()
	// The tables as they were before the step, with data in them.
	s := openAtVersion(t, 3)
	for _, q := range []string{
		`INSERT INTO groups VALUES ('family', 'Family', '@Andy', 1, 0, 0, '{}')`,
		`INSERT INTO tasks VALUES ('a', 'family', 'c@g.us', 'p', 'cron', '0 8 * * *', 'UTC', 'group', 'active', 5000, NULL, NULL, 1)`,
		`INSERT INTO tasks VALUES ('p', 'family', 'c@g.us', 'p', 'cron', '0 8 * * *', 'UTC', 'group', 'paused', 5000, 4000, 'ok', 1)`,
		`INSERT INTO task_runs VALUES (7, 'p', 4000, 12, 'success', 'ok', NULL)`,
		`INSERT INTO task_runs VALUES (8, 'a', 4500, 0, 'error', NULL, 'boom')`,
	} {
		rawExec(t, s, nil, q)
	}
	// Only up to this step (v4): later ones are not this test's to run.
	if err := s.migrateTo(ctx, upgrades[:3]); err != nil {
		t.Fatal(err)
	}
	p, found, err := s.GetTask(ctx, "p")
	if err != nil || !found || p.Status != TaskPaused || p.PausedBy != ActorOwner || p.LastResult != "ok" || p.ClaimedAt != nil {
		t.Fatalf("paused task after the step: %+v, %v, %v", p, found, err)
	}
	if a, _, err := s.GetTask(ctx, "a"); err != nil || a.Status != TaskActive || a.PausedBy != "" {
		t.Fatalf("active task after the step: %+v, %v", a, err)
	}
	if runs, err := s.TaskRuns(ctx, "p", 0); err != nil || len(runs) != 1 || runs[0].ID != 7 || runs[0].Result != "ok" {
		t.Fatalf("runs of p after the step: %+v, %v", runs, err)
	}
	if id, err := s.AddTaskRun(ctx, TaskRun{TaskID: "a", StartedAt: time.UnixMilli(6000), Status: RunSkipped, Error: "skipped"}); err != nil || id != 9 {
		t.Fatalf("a skipped run after the step: id %d, %v; want 9", id, err)
	}
	// The runs still cascade with their task.
	rawExec(t, s, nil, `DELETE FROM tasks WHERE id = 'a'`)
	var left int
	if err := s.DB().QueryRow(`SELECT count(*) FROM task_runs WHERE task_id = 'a'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d runs of a deleted task left (%v)", left, err)
	}
}

// The v8 step sums the usage an older nanoclaw counted into usage_months,
// so status and budgets see this month's usage from before the upgrade.
func TestMigrationSumsUsageByMonth(t *testing.T) {
	ctx := context.Background()
	s := openAtVersion(t, 7)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO usage VALUES ('family', '2025-07-01', 2, 150, 15),
		('family', '2025-07-31', 1, 10, 1), ('family', '2025-08-01', 1, 5, 5), ('work', '2025-07-02', 3, 30, 3)`); err != nil {
		t.Fatal(err)
	}
	if err := s.migrateTo(ctx, upgrades); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		folder string
		want   UsageSum
	}{{"family", UsageSum{3, 160, 16}}, {"work", UsageSum{3, 30, 3}}} {
		var got UsageSum
		err := s.db.QueryRowContext(ctx, `SELECT requests, input_tokens, output_tokens FROM usage_months WHERE folder = ? AND month = '2025-07'`,
			tc.folder).Scan(&got.Requests, &got.InputTokens, &got.OutputTokens)
		if err != nil || got != tc.want {
			t.Errorf("July of %s = %+v, %v; want %+v", tc.folder, got, err, tc.want)
		}
	}
	// And counting goes on from there.
	if err := s.AddUsage(ctx, "family", "2025-08-09", 100, 10); err != nil {
		t.Fatal(err)
	}
	var requests, in int64
	if err := s.db.QueryRowContext(ctx, `SELECT requests, input_tokens FROM usage_months WHERE folder = 'family' AND month = '2025-08'`).Scan(&requests, &in); err != nil || requests != 2 || in != 105 {
		t.Errorf("August of family = %d requests, %d input tokens, %v; want 2, 105", requests, in, err)
	}
}
