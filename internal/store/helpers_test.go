package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openTest opens a fresh unencrypted store in a temporary directory and
// returns it with its captured log.
func openTest(t *testing.T) (*Store, *logBuffer) {
	t.Helper()
	return openTestAt(t, filepath.Join(t.TempDir(), "nanoclaw.db"), nil)
}

func openTestAt(t *testing.T, path string, key []byte) (*Store, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s, err := Open(context.Background(), path, Options{
		Key:    key,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// rawExec runs statements on one connection, bypassing the Store's checks,
// to plant rows the Store would never write. pragmas run first on that same
// connection (e.g. "ignore_check_constraints=ON", "foreign_keys=OFF") and are
// undone afterwards by closing it out of the pool.
func rawExec(t *testing.T, s *Store, pragmas []string, query string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, p := range pragmas {
		if _, err := conn.ExecContext(ctx, "PRAGMA "+p); err != nil {
			t.Fatalf("PRAGMA %s: %v", p, err)
		}
	}
	_, execErr := conn.ExecContext(ctx, query, args...)
	// Restore the defaults so the pooled connection is clean again.
	conn.ExecContext(ctx, "PRAGMA ignore_check_constraints=OFF")
	conn.ExecContext(ctx, "PRAGMA foreign_keys=ON")
	if execErr != nil {
		t.Fatalf("raw exec %q: %v", query, execErr)
	}
}

// wantErrText asserts that err is nil when want is "", and otherwise an
// error whose text contains want.
func wantErrText(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
}

// wantBadRow asserts that err is a *BadRowError for table and key.
func wantBadRow(t *testing.T, err error, table, key string) {
	t.Helper()
	var bad *BadRowError
	if !errors.As(err, &bad) {
		t.Fatalf("err = %v, want a *BadRowError", err)
	}
	if bad.Table != table || bad.Key != key {
		t.Fatalf("BadRowError{Table: %q, Key: %q}, want {%q, %q}", bad.Table, bad.Key, table, key)
	}
	if bad.Err == nil || errors.Unwrap(bad) != bad.Err {
		t.Fatalf("BadRowError without a wrapped cause: %v", bad)
	}
}

// wantSkipLogged asserts that the log reports a skipped row of table with key.
func wantSkipLogged(t *testing.T, logs *logBuffer, table, key string) {
	t.Helper()
	out := logs.String()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "skipping invalid row") &&
			strings.Contains(line, "table="+table) && strings.Contains(line, "key="+quoteIfNeeded(key)) {
			return
		}
	}
	t.Fatalf("no WARN about skipped %s row %q in log:\n%s", table, key, out)
}

// quoteIfNeeded mimics how slog's text handler writes a string value.
func quoteIfNeeded(s string) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})).Info("", "k", s)
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), "k="), "\n")
}

func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func mustPutGroup(t *testing.T, s *Store, g Group) {
	t.Helper()
	if err := s.PutGroup(context.Background(), g); err != nil {
		t.Fatal(err)
	}
}

func testGroup(folder string) Group {
	return Group{
		Folder:          folder,
		Name:            "Group " + folder,
		Trigger:         "@Andy",
		RequiresTrigger: true,
		AddedAt:         time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

// messagesOf reads every message of chat, the assistant's too, oldest first,
// through the store's own row scanner.
func messagesOf(t *testing.T, s *Store, chat string) []Message {
	t.Helper()
	list, err := queryList(context.Background(), s, "messages", "messages", scanMessage,
		`SELECT `+messageColumns+` FROM messages WHERE chat_jid = ? ORDER BY seq`, chat)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// sentTo reads what was sent to chat, oldest first.
func sentTo(t *testing.T, s *Store, chat string) []Outgoing {
	t.Helper()
	list, err := queryList(context.Background(), s, "outbox", "outbox", scanOutgoing,
		`SELECT `+outgoingColumns+` FROM outbox WHERE chat_jid = ? AND sent_at IS NOT NULL ORDER BY sent_at, rowid`, chat)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// schemaVersion returns the version recorded in the database.
func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// wantRefused asserts that the database itself refuses a statement.
func wantRefused(t *testing.T, s *Store, query string, args ...any) {
	t.Helper()
	if _, err := s.DB().Exec(query, args...); err == nil {
		t.Fatalf("the database accepted %s", query)
	}
}

// newKey returns a random database key.
func newKey() []byte {
	key := make([]byte, KeySize)
	rand.Read(key)
	return key
}
