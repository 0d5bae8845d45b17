package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

	want := []string{"chats", "container_ids", "cursors", "group_chats", "groups", "messages", "outbox", "schema_migrations", "sessions", "task_runs", "tasks", "usage"}
	if got := tableNames(t, s); !slices.Equal(got, want) {
		t.Fatalf("tables = %v, want %v", got, want)
	}
	v, err := s.schemaVersion(ctx)
	if err != nil || v != SchemaVersion() || v < 1 {
		t.Fatalf("schema version = %d, %v; want %d", v, err, SchemaVersion())
	}
	if !strings.Contains(logs.String(), "migrated database schema") {
		t.Errorf("fresh database: no migration logged:\n%s", logs)
	}
	mustPutGroup(t, s, testGroup("main"))
	var appliedAt int64
	if err := s.DB().QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&appliedAt); err != nil || appliedAt <= 0 {
		t.Fatalf("applied_at = %d, %v", appliedAt, err)
	}
	s.Close()

	// Re-opening an up-to-date database changes nothing.
	s, logs = openTestAt(t, path, nil)
	if v2, err := s.schemaVersion(ctx); err != nil || v2 != v {
		t.Fatalf("after reopen: version %d, %v; want %d", v2, err, v)
	}
	var rows int
	if err := s.DB().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", rows, err, SchemaVersion())
	}
	var appliedAt2 int64
	s.DB().QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&appliedAt2)
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
	future := SchemaVersion() + 1
	if _, err := s.DB().Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err := Open(ctx, path, Options{})
	var tooNew *SchemaTooNewError
	if !errors.As(err, &tooNew) {
		t.Fatalf("err = %v, want a *SchemaTooNewError", err)
	}
	if tooNew.Version != future || tooNew.Known != SchemaVersion() {
		t.Fatalf("SchemaTooNewError = %+v", tooNew)
	}
	want := fmt.Sprintf("database schema v%d is newer than this nanoclaw (v%d); upgrade nanoclaw", future, SchemaVersion())
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestMigrationsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	steps := append(slices.Clone(migrations),
		`CREATE TABLE extra_one (x INTEGER)`,
		`CREATE TABLE extra_two (x INTEGER); INSERT INTO no_such_table VALUES (1)`,
	)
	err := s.migrateTo(ctx, steps)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("migrate schema to v%d", len(steps))) {
		t.Fatalf("err = %v, want a failure of the last step", err)
	}
	if v, _ := s.schemaVersion(ctx); v != SchemaVersion() {
		t.Fatalf("version after failed migration = %d, want %d", v, SchemaVersion())
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
	if v, _ := s.schemaVersion(ctx); v != len(steps)-1 {
		t.Fatalf("version = %d, want %d", v, len(steps)-1)
	}
}
