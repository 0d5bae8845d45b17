package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A migration takes the schema from one version to the next, inside the one
// transaction that applies every missing step.
type migration func(ctx context.Context, tx *sql.Tx) error

// script is a migration that is SQL alone.
func script(q string) migration {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q)
		return err
	}
}

// migrations is the schema history: migrations[i] takes the database from
// version i to version i+1. Append new steps; never edit a released one.
//
// Times are INTEGER unix milliseconds UTC. Booleans are INTEGER 0/1.
var migrations = []migration{
	// v1: the initial schema.
	script(`
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
`),
	// v2: the outbox. A reply is written here in the same transaction that
	// moves its chat's cursor, then sent; a restart sends what is unsent. So
	// a crash can neither lose an answer nor answer the same messages twice.
	script(`
CREATE TABLE outbox (
	id         TEXT PRIMARY KEY,
	chat_jid   TEXT NOT NULL,
	folder     TEXT NOT NULL,
	content    TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	sent_at    INTEGER
);
CREATE INDEX outbox_unsent ON outbox(created_at) WHERE sent_at IS NULL;
`),
	// v3: the host-side uid each group's containers run as when the daemon
	// runs as root (R2). It stays with the folder name when a group is
	// removed, so a group added again under that name owns its files again.
	script(`
CREATE TABLE container_ids (
	folder TEXT PRIMARY KEY,
	uid    INTEGER NOT NULL UNIQUE CHECK (uid >= 65536 AND uid < 2147483647)
) STRICT;
`),
	// v4: who paused a task, the claim of its pending run, skipped runs
	// (R16, R20): see migrationTaskClaims.
	script(migrationTaskClaims),
	// v5: the text a reply quotes, kept apart from the message's own (R18): the
	// trigger is matched on what the sender wrote, and the prompt shows the
	// quote as what it is, the sender's app's claim.
	script(`ALTER TABLE messages ADD COLUMN quote TEXT NOT NULL DEFAULT '';`),
	// v6: every table STRICT, with CHECK constraints (finding 12): see
	// migrationStrict.
	migrationStrict,
}

// SchemaTooNewError reports a database written by a newer NanoClaw: this
// binary does not know its tables, so it refuses to touch them.
type SchemaTooNewError struct {
	Version int // the database's schema version
	Known   int // the newest version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema v%d is newer than this nanoclaw (v%d); upgrade nanoclaw", e.Version, e.Known)
}

// migrate applies the missing migrations in one transaction: all of them or
// none. The version is read inside that (immediate, i.e. write-locked)
// transaction, so two processes opening a new file at once cannot both apply
// the same step.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, migrations)
}

func (s *Store) migrateTo(ctx context.Context, steps []migration) error {
	from, to := 0, 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(steps) {
			return &SchemaTooNewError{Version: current, Known: len(steps)}
		}
		from, to = current, len(steps)
		for v := current + 1; v <= len(steps); v++ {
			if err := steps[v-1](ctx, tx); err != nil {
				return fmt.Errorf("migrate schema to v%d: %w", v, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				v, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("record schema v%d: %w", v, err)
			}
		}
		return nil
	})
	if err == nil && to > from {
		s.log.Info("migrated database schema", "path", s.path, "from", from, "to", to)
	}
	return err
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

// strictTables is schema step v6 (finding 12): every table of v1 to v5
// again, STRICT, with CHECK constraints for what the store validates that
// SQL can say, so the database itself refuses a value of the wrong type or
// shape. Columns keep their order. Parents come before the tables that refer
// to them; keep selects the rows of a child whose parent was kept.
var strictTables = []struct{ name, columns, keep string }{
	{"chats", `
	jid           TEXT NOT NULL PRIMARY KEY CHECK (jid <> ''),
	name          TEXT NOT NULL DEFAULT '',
	channel       TEXT NOT NULL CHECK (channel <> ''),
	is_group      INTEGER NOT NULL CHECK (is_group IN (0, 1)),
	last_activity INTEGER NOT NULL CHECK (last_activity >= 0)`, ""},
	{"groups", `
	folder           TEXT NOT NULL PRIMARY KEY CHECK (` + folderRule("folder") + `),
	name             TEXT NOT NULL CHECK (trim(name) <> ''),
	"trigger"        TEXT NOT NULL CHECK (trim("trigger") <> ''),
	requires_trigger INTEGER NOT NULL CHECK (requires_trigger IN (0, 1)),
	is_main          INTEGER NOT NULL DEFAULT 0 CHECK (is_main IN (0, 1)),
	added_at         INTEGER NOT NULL CHECK (added_at >= 0),
	container_config TEXT NOT NULL DEFAULT '{}'`, ""},
	{"group_chats", `
	jid    TEXT NOT NULL PRIMARY KEY CHECK (jid <> ''),
	folder TEXT NOT NULL REFERENCES groups_v6(folder) ON DELETE CASCADE`, "folder IN (SELECT folder FROM groups_v6)"},
	{"messages", `
	seq         INTEGER PRIMARY KEY AUTOINCREMENT CHECK (seq > 0),
	chat_jid    TEXT NOT NULL CHECK (chat_jid <> ''),
	id          TEXT NOT NULL CHECK (id <> ''),
	sender      TEXT NOT NULL,
	sender_name TEXT NOT NULL,
	content     TEXT NOT NULL,
	timestamp   INTEGER NOT NULL CHECK (timestamp >= 0),
	from_me     INTEGER NOT NULL CHECK (from_me IN (0, 1)),
	is_bot      INTEGER NOT NULL CHECK (is_bot IN (0, 1)),
	quote       TEXT NOT NULL DEFAULT '',
	UNIQUE (chat_jid, id)`, ""},
	{"sessions", `
	folder     TEXT NOT NULL PRIMARY KEY REFERENCES groups_v6(folder) ON DELETE CASCADE,
	session_id TEXT NOT NULL CHECK (session_id <> ''),
	updated_at INTEGER NOT NULL CHECK (updated_at >= 0)`, "folder IN (SELECT folder FROM groups_v6)"},
	{"cursors", `
	chat_jid   TEXT NOT NULL PRIMARY KEY,
	last_seq   INTEGER NOT NULL CHECK (last_seq >= 0),
	updated_at INTEGER NOT NULL CHECK (updated_at >= 0)`, ""},
	{"tasks", `
	id             TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	folder         TEXT NOT NULL REFERENCES groups_v6(folder) ON DELETE CASCADE,
	chat_jid       TEXT NOT NULL CHECK (chat_jid <> ''),
	prompt         TEXT NOT NULL CHECK (prompt <> ''),
	schedule_type  TEXT NOT NULL CHECK (schedule_type IN ('cron', 'interval', 'once')),
	schedule_value TEXT NOT NULL CHECK (schedule_value <> ''),
	timezone       TEXT NOT NULL CHECK (timezone NOT IN ('', 'Local')),
	context_mode   TEXT NOT NULL CHECK (context_mode IN ('group', 'isolated')),
	status         TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'cancelled')),
	next_run       INTEGER CHECK (next_run >= 0),
	last_run       INTEGER CHECK (last_run >= 0),
	last_result    TEXT,
	created_at     INTEGER NOT NULL CHECK (created_at >= 0),
	paused_by      TEXT CHECK (paused_by IN ('scheduler', 'group', 'main', 'owner')),
	claimed_at     INTEGER CHECK (claimed_at >= 0),
	CHECK ((status = 'paused') = (paused_by IS NOT NULL))`, "folder IN (SELECT folder FROM groups_v6)"},
	{"task_runs", `
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	task_id     TEXT NOT NULL REFERENCES tasks_v6(id) ON DELETE CASCADE,
	started_at  INTEGER NOT NULL CHECK (started_at >= 0),
	duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
	status      TEXT NOT NULL CHECK (status IN ('success', 'error', 'skipped')),
	result      TEXT,
	error       TEXT`, "task_id IN (SELECT id FROM tasks_v6)"},
	{"usage", `
	folder        TEXT NOT NULL CHECK (` + folderRule("folder") + `),
	day           TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
	requests      INTEGER NOT NULL CHECK (requests >= 0),
	input_tokens  INTEGER NOT NULL CHECK (input_tokens >= 0),
	output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
	PRIMARY KEY (folder, day)`, ""},
	{"outbox", `
	id         TEXT NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
	chat_jid   TEXT NOT NULL CHECK (chat_jid <> ''),
	folder     TEXT NOT NULL CHECK (` + folderRule("folder") + `),
	content    TEXT NOT NULL CHECK (content <> ''),
	created_at INTEGER NOT NULL CHECK (created_at >= 0),
	sent_at    INTEGER CHECK (sent_at >= 0)`, ""},
}

// strictIndexes are the indexes of strictTables, as v1 and v2 made them.
const strictIndexes = `
CREATE UNIQUE INDEX groups_one_main ON groups(is_main) WHERE is_main = 1;
CREATE INDEX group_chats_folder ON group_chats(folder);
CREATE INDEX messages_chat_seq ON messages(chat_jid, seq);
CREATE INDEX tasks_due ON tasks(status, next_run);
CREATE INDEX tasks_folder ON tasks(folder);
CREATE INDEX task_runs_task ON task_runs(task_id, started_at);
CREATE INDEX outbox_unsent ON outbox(created_at) WHERE sent_at IS NULL;
`

// folderRule is ValidateFolder's rule on column col, in SQL. length and GLOB
// stop at a NUL; octet_length counts every byte.
func folderRule(col string) string {
	return fmt.Sprintf(`octet_length(%[1]s) BETWEEN 1 AND %[2]d AND length(%[1]s) = octet_length(%[1]s)
		AND %[1]s NOT GLOB '*[^a-z0-9-]*' AND %[1]s NOT GLOB '-*' AND %[1]s <> '%[3]s'`, col, MaxFolderLen, ReservedFolder)
}

// migrationStrict is schema step v6: each table is copied into its STRICT
// successor (SQLite cannot make a table STRICT or add a CHECK in place).
// A row is left behind if a value does not fit its new column's type
// (SQLite would fail the whole step on it), a constraint refuses it (OR
// IGNORE), or its parent was left behind: rows the store could never read.
// The AUTOINCREMENT counters come along, so no seq or run id is handed out
// twice, not even one of a row left behind. The old tables are dropped
// children first, so that no drop cascades.
func migrationStrict(ctx context.Context, tx *sql.Tx) error {
	for _, t := range strictTables {
		next := t.name + "_v6"
		if _, err := tx.ExecContext(ctx, `CREATE TABLE `+next+` (`+t.columns+`) STRICT`); err != nil {
			return fmt.Errorf("create %s: %w", next, err)
		}
		fit, err := typesFit(ctx, tx, next)
		if err != nil {
			return err
		}
		if t.keep != "" {
			fit += " AND " + t.keep
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT ?, seq FROM sqlite_sequence WHERE name = ?`, next, t.name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO `+next+` SELECT * FROM `+t.name+` WHERE `+fit); err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
	}
	for _, t := range slices.Backward(strictTables) {
		if _, err := tx.ExecContext(ctx, `DROP TABLE `+t.name); err != nil {
			return err
		}
	}
	for _, t := range strictTables {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+t.name+`_v6 RENAME TO `+t.name); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, strictIndexes)
	return err
}

// typesFit is an SQL condition that the values of a row fit the column types
// of table, a STRICT table. NULL fits: NOT NULL is a constraint.
func typesFit(ctx context.Context, tx *sql.Tx, table string) (string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, lower(type) FROM pragma_table_info(?)`, table)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var fit []string
	for rows.Next() {
		var col, typ string
		if err := rows.Scan(&col, &typ); err != nil {
			return "", err
		}
		fit = append(fit, fmt.Sprintf(`typeof("%s") IN ('null', '%s')`, col, typ))
	}
	return strings.Join(fit, " AND "), rows.Err()
}
