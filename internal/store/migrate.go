package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations is the schema history: migrations[i] takes the database from
// version i to version i+1. Append new steps; never edit a released one.
//
// Times are INTEGER unix milliseconds UTC. Booleans are INTEGER 0/1.
var migrations = []string{
	// v1: the initial schema.
	`
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
`,
	// v2: the outbox. A reply is written here in the same transaction that
	// moves its chat's cursor, then sent; a restart sends what is unsent. So
	// a crash can neither lose an answer nor answer the same messages twice.
	`
CREATE TABLE outbox (
	id         TEXT PRIMARY KEY,
	chat_jid   TEXT NOT NULL,
	folder     TEXT NOT NULL,
	content    TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	sent_at    INTEGER
);
CREATE INDEX outbox_unsent ON outbox(created_at) WHERE sent_at IS NULL;
`,
	// v3: the host-side uid each group's containers run as when the daemon
	// runs as root (R2). It stays with the folder name when a group is
	// removed, so a group added again under that name owns its files again.
	`
CREATE TABLE container_ids (
	folder TEXT PRIMARY KEY,
	uid    INTEGER NOT NULL UNIQUE CHECK (uid >= 65536 AND uid < 2147483647)
) STRICT;
`,
	// v4: who paused a task, the claim of its pending run, skipped runs
	// (R16, R20): see migrationTaskClaims.
	migrationTaskClaims,
	// v5: the text a reply quotes, kept apart from the message's own (R18): the
	// trigger is matched on what the sender wrote, and the prompt shows the
	// quote as what it is, the sender's app's claim.
	`ALTER TABLE messages ADD COLUMN quote TEXT NOT NULL DEFAULT '';`,
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

// SchemaVersion returns the newest schema version this binary knows.
func SchemaVersion() int { return len(migrations) }

// migrate applies the missing migrations in one transaction: all of them or
// none. The version is read inside that (immediate, i.e. write-locked)
// transaction, so two processes opening a new file at once cannot both apply
// the same step.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, migrations)
}

func (s *Store) migrateTo(ctx context.Context, steps []string) error {
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
			if _, err := tx.ExecContext(ctx, steps[v-1]); err != nil {
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

// schemaVersion returns the version recorded in the database.
func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// inTx runs fn in a transaction, committing if it returns nil and rolling
// back otherwise, so a multi-statement change is never half applied.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
