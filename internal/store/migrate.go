package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// schema is the database as this nanoclaw keeps it (finding 12): every
// table STRICT, so a value of the wrong type is refused, with CHECK
// constraints for what SQL can say of the values the store validates. The
// rest (a time zone, a container config, a chat id's characters) each
// type's Validate checks, on every write and every read. Times are INTEGER
// unix milliseconds UTC; booleans INTEGER 0/1. Parents come before the
// tables that refer to them; keep selects the rows of a child whose parent
// is there (see upgradeStrict).
var schema = append(slices.Clip(strictV6), table{"events", eventsColumns, ""})

// table is one table of the schema.
type table struct{ name, columns, keep string }

// strictV6 are the tables as schema step v6 made them, which that released
// step recreates: a later change to one of them is a later step, and a
// changed copy in schema.
var strictV6 = []table{
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
	is_main          INTEGER NOT NULL DEFAULT 0 CHECK (is_main IN (0, 1)), -- one main group: groups_one_main
	added_at         INTEGER NOT NULL CHECK (added_at >= 0),
	container_config TEXT NOT NULL DEFAULT '{}'`, ""},
	// A group may be reached from several chats (local:main and the
	// WhatsApp self-chat both reach main).
	{"group_chats", `
	jid    TEXT NOT NULL PRIMARY KEY CHECK (jid <> ''),
	folder TEXT NOT NULL REFERENCES groups(folder) ON DELETE CASCADE`, "folder IN (SELECT folder FROM groups)"},
	// seq is the cursor unit: timestamps can collide, seq cannot.
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
	folder     TEXT NOT NULL PRIMARY KEY REFERENCES groups(folder) ON DELETE CASCADE,
	session_id TEXT NOT NULL CHECK (session_id <> ''),
	updated_at INTEGER NOT NULL CHECK (updated_at >= 0)`, "folder IN (SELECT folder FROM groups)"},
	// "Answered up to": the seq of the last message handled per chat.
	{"cursors", `
	chat_jid   TEXT NOT NULL PRIMARY KEY,
	last_seq   INTEGER NOT NULL CHECK (last_seq >= 0),
	updated_at INTEGER NOT NULL CHECK (updated_at >= 0)`, ""},
	// R16, R20: who paused a task (exactly while it is paused), and the
	// claim of its pending run.
	{"tasks", `
	id             TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	folder         TEXT NOT NULL REFERENCES groups(folder) ON DELETE CASCADE,
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
	CHECK ((status = 'paused') = (paused_by IS NOT NULL))`, "folder IN (SELECT folder FROM groups)"},
	{"task_runs", `
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	task_id     TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
	started_at  INTEGER NOT NULL CHECK (started_at >= 0),
	duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
	status      TEXT NOT NULL CHECK (status IN ('success', 'error', 'skipped')),
	result      TEXT,
	error       TEXT`, "task_id IN (SELECT id FROM tasks)"},
	{"usage", `
	folder        TEXT NOT NULL CHECK (` + folderRule("folder") + `),
	day           TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
	requests      INTEGER NOT NULL CHECK (requests >= 0),
	input_tokens  INTEGER NOT NULL CHECK (input_tokens >= 0),
	output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
	PRIMARY KEY (folder, day)`, ""},
	// A reply is written here in the same transaction that moves its chat's
	// cursor, then sent; a restart sends what is unsent. So a crash can
	// neither lose an answer nor answer the same messages twice.
	{"outbox", `
	id         TEXT NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
	chat_jid   TEXT NOT NULL CHECK (chat_jid <> ''),
	folder     TEXT NOT NULL CHECK (` + folderRule("folder") + `),
	content    TEXT NOT NULL CHECK (content <> ''),
	created_at INTEGER NOT NULL CHECK (created_at >= 0),
	sent_at    INTEGER CHECK (sent_at >= 0)`, ""},
}

// schemaIndexes are the indexes of strictV6's tables.
const schemaIndexes = `
CREATE UNIQUE INDEX groups_one_main ON groups(is_main) WHERE is_main = 1;
CREATE INDEX group_chats_folder ON group_chats(folder);
CREATE INDEX messages_chat_seq ON messages(chat_jid, seq);
CREATE INDEX tasks_due ON tasks(status, next_run);
CREATE INDEX tasks_folder ON tasks(folder);
CREATE INDEX task_runs_task ON task_runs(task_id, started_at);
CREATE INDEX outbox_unsent ON outbox(created_at) WHERE sent_at IS NULL;
`

// eventsIndex serves, newest first: the trace of one group, and its
// trimming (events_folder); the steps of one kind, such as errors, of every
// group (events_kind); and of one group (events_kind_folder), such as its
// last reply, one seek a group.
const eventsIndex = `CREATE INDEX events_folder ON events(folder, id);
CREATE INDEX events_kind ON events(kind, id);
CREATE INDEX events_kind_folder ON events(kind, folder, id);
`

// containerIDs keeps the host-side uid each group's containers run as when
// the daemon runs as root (R2). It stays with the folder name when a group
// is removed, so a group added again under that name owns its files again.
const containerIDs = `
CREATE TABLE container_ids (
	folder TEXT PRIMARY KEY,
	uid    INTEGER NOT NULL UNIQUE CHECK (uid >= 65536 AND uid < 2147483647)
) STRICT;
`

// statusSummaries make what status shows of a group a few seeks of indexes,
// however long the group's history: usage_months is each group's usage by
// month, added to with its day's (AddUsage); tasks_folder also orders a
// group's tasks by state and next run, so their count and the soonest run
// come from the index alone.
var statusSummaries = `
CREATE TABLE usage_months (
	folder        TEXT NOT NULL CHECK (` + folderRule("folder") + `),
	month         TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
	requests      INTEGER NOT NULL CHECK (requests >= 0),
	input_tokens  INTEGER NOT NULL CHECK (input_tokens >= 0),
	output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
	PRIMARY KEY (folder, month)
) STRICT;
INSERT INTO usage_months (folder, month, requests, input_tokens, output_tokens)
	SELECT folder, substr(day, 1, 7), sum(requests), sum(input_tokens), sum(output_tokens) FROM usage GROUP BY folder, substr(day, 1, 7);
DROP INDEX tasks_folder;
CREATE INDEX tasks_folder ON tasks(folder, status, next_run);
`

// mediaColumns keep what a message carries besides its text, and what
// became of a reply the assistant sent: see Message, Attachment and
// Outgoing.
const mediaColumns = `
ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN reply_to TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN quote_sender TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN addressed INTEGER NOT NULL DEFAULT 0 CHECK (addressed IN (0, 1));
ALTER TABLE outbox ADD COLUMN file TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN reply_to TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN failed_at INTEGER CHECK (failed_at >= 0);
ALTER TABLE outbox ADD COLUMN error TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN told INTEGER NOT NULL DEFAULT 0 CHECK (told IN (0, 1));
`

// folderRule is ValidateFolder's rule on column col, in SQL. length and GLOB
// stop at a NUL; octet_length counts every byte.
func folderRule(col string) string {
	return fmt.Sprintf(`octet_length(%[1]s) BETWEEN 1 AND %[2]d AND length(%[1]s) = octet_length(%[1]s)
		AND %[1]s NOT GLOB '*[^a-z0-9-]*' AND %[1]s NOT GLOB '-*' AND %[1]s <> '%[3]s'`, col, MaxFolderLen, ReservedFolder)
}

// createSchema makes schema in a new database.
func createSchema(ctx context.Context, tx *sql.Tx) error {
	for _, t := range schema {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE `+t.name+` (`+t.columns+`) STRICT`); err != nil {
			return fmt.Errorf("create %s: %w", t.name, err)
		}
	}
	_, err := tx.ExecContext(ctx, containerIDs+schemaIndexes+eventsIndex+statusSummaries+mediaColumns+telegramTable+usageCosts+egressApprovals)
	return err
}

// A migration takes the schema from one version to the next, inside the one
// transaction that applies every missing step.
type migration func(ctx context.Context, tx *sql.Tx) error

// logKey carries the store's logger to a migration step.
type logKey struct{}

// script is a migration that is SQL alone.
func script(q string) migration {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q)
		return err
	}
}

// upgrades bring a database made by an older nanoclaw up to schema:
// upgrades[i] takes it from version i+1 to i+2 (v1 was the first schema).
// A change of schema is a new step appended here; never edit a released one.
var upgrades = []migration{
	// v2: the outbox.
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
	// v3: the container ids (R2).
	script(containerIDs),
	// v4: who paused a task, the claim of its pending run, skipped runs
	// (R16, R20): see migrationTaskClaims.
	script(migrationTaskClaims),
	// v5: the text a reply quotes, kept apart from the message's own (R18): the
	// trigger is matched on what the sender wrote, and the prompt shows the
	// quote as what it is, the sender's app's claim.
	script(`ALTER TABLE messages ADD COLUMN quote TEXT NOT NULL DEFAULT '';`),
	// v6: every table STRICT, with CHECK constraints (finding 12).
	upgradeStrict,
	// v7: the trace of each group's steps (events).
	script(`CREATE TABLE events (` + eventsColumns + `) STRICT;` + eventsIndex),
	// v8: usage by month, and tasks_folder by state and next run (status);
	// media, replies and mentions of messages, files and failures of
	// replies; the Telegram bot's session.
	script(statusSummaries + mediaColumns + telegramTable + usageCosts + egressApprovals),
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

// migrate brings the database to schema in one transaction: all of it or
// none. A new database is made from schema; an older one takes the upgrades
// it lacks. The version is read inside that (immediate, i.e. write-locked)
// transaction, so two processes opening a new file at once cannot both
// apply the same step.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, upgrades)
}

// migrateTo is migrate with steps for upgrades; schema is their end.
func (s *Store) migrateTo(ctx context.Context, steps []migration) error {
	from, to := 0, len(steps)+1
	ctx = context.WithValue(ctx, logKey{}, s.log) // for what a step leaves behind
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&from); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if from > to {
			return &SchemaTooNewError{Version: from, Known: to}
		}
		record := func(v int) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixMilli())
			return err
		}
		if from == 0 {
			if err := createSchema(ctx, tx); err != nil {
				return fmt.Errorf("create schema v%d: %w", to, err)
			}
			return record(to)
		}
		for v := from + 1; v <= to; v++ {
			if err := steps[v-2](ctx, tx); err != nil {
				return fmt.Errorf("migrate schema to v%d: %w", v, err)
			}
			if err := record(v); err != nil {
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

// upgradeStrict is schema step v6: each table is moved aside and copied
// into its STRICT successor of schema (SQLite cannot make a table STRICT or
// add a CHECK in place). Renaming a table also renames it in the REFERENCES
// of the tables that refer to it, so the old ones keep referring to each
// other until they are dropped, children first, and no drop cascades. A row
// is left behind if a value does not fit its new column's type (SQLite
// would fail the whole step on it), a constraint refuses it (OR IGNORE), or
// its parent was left behind: rows the store could never read. The
// AUTOINCREMENT counters come along, so no seq or run id is handed out
// twice, not even one of a row left behind.
func upgradeStrict(ctx context.Context, tx *sql.Tx) error {
	for _, t := range strictV6 {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+t.name+` RENAME TO `+t.name+`_v5`); err != nil {
			return err
		}
	}
	for _, t := range strictV6 {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE `+t.name+` (`+t.columns+`) STRICT`); err != nil {
			return fmt.Errorf("create %s: %w", t.name, err)
		}
		keep, err := typesFit(ctx, tx, t.name)
		if err != nil {
			return err
		}
		if t.keep != "" {
			keep += " AND " + t.keep
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT ?, seq FROM sqlite_sequence WHERE name = ?`, t.name, t.name+"_v5"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO `+t.name+` SELECT * FROM `+t.name+`_v5 WHERE `+keep); err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM `+t.name+`_v5) - (SELECT count(*) FROM `+t.name+`)`).Scan(&left); err != nil {
			return err
		}
		if log, ok := ctx.Value(logKey{}).(*slog.Logger); ok && left > 0 {
			log.Warn("rows the store could never read were left behind by the upgrade", "table", t.name, "rows", left)
		}
	}
	for _, t := range slices.Backward(strictV6) {
		if _, err := tx.ExecContext(ctx, `DROP TABLE `+t.name+`_v5`); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, schemaIndexes)
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
