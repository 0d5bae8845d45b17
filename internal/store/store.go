// Package store keeps NanoClaw's state in one SQLite database: chats seen,
// registered groups and the chats bound to them, stored messages and how far
// each chat has been answered, agent sessions, scheduled tasks and their runs,
// and token usage.
//
// It is the bottom layer: it imports no other NanoClaw package except leaf
// packages that import none themselves: egress (to validate stored egress
// policies with the very parser the gateway enforces), sanitize and ipc (its
// strict JSON decoding). The database itself refuses values of the wrong
// type or shape (STRICT tables with CHECK constraints: see schema), and every
// row read is validated before it is handed out (finding 12); a row that
// fails is skipped by list functions (and logged) and reported as a
// *BadRowError by single-row getters, so a corrupted or tampered database
// can never crash the host.
//
// With a key, the database file and its journal are encrypted at rest through
// the adiantum VFS (finding 11).
package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
	_ "github.com/ncruces/go-sqlite3/driver"       // registers the "sqlite3" database/sql driver
	_ "github.com/ncruces/go-sqlite3/vfs/adiantum" // registers the "adiantum" encrypting VFS
	"lukechampine.com/adiantum"
)

// KeySize is the length in bytes of a database encryption key.
const KeySize = 32

// busyTimeoutMS is how long a connection waits for another writer (another
// pooled connection, or another process on the same file) before giving up.
const busyTimeoutMS = 5000

// ErrWrongKey reports that the database file could not be decrypted: the key
// is wrong, or a key was given for a plain file, or none for an encrypted one.
// Opening with a wrong key only reads the file; it never changes it.
var ErrWrongKey = errors.New("cannot decrypt: wrong key, or the file is not encrypted / is encrypted (set or remove NANOCLAW_DB_KEY_FILE)")

// ErrNotFound reports that a row to change or delete does not exist.
var ErrNotFound = errors.New("not found")

// ErrBoundElsewhere is MoveChat's refusal to move a chat onto one bound to
// another group.
var ErrBoundElsewhere = errors.New("bound to another group")

// Options configures Open.
type Options struct {
	// Key encrypts the database at rest (finding 11). nil means unencrypted;
	// otherwise it must be KeySize bytes (see ParseKeyFile).
	Key []byte
	// Logger receives warnings about invalid rows; nil means slog.Default().
	Logger *slog.Logger
}

// Store is NanoClaw's database. It is safe for concurrent use.
type Store struct {
	db        *sql.DB
	path      string
	encrypted bool
	log       *slog.Logger
}

// Open opens (creating if needed) the database at path, verifies that it can
// be read with opts.Key, and brings its schema up to date.
//
// A key that does not decrypt the file yields an error wrapping ErrWrongKey;
// a schema newer than this binary yields a *SchemaTooNewError.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	s, err := open(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Key != nil && len(opts.Key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(opts.Key), KeySize)
	}
	if err := checkKey(path, opts.Key); err != nil {
		return nil, err
	}
	dsn, err := dataSourceName(path, opts.Key)
	if err != nil {
		return nil, err
	}
	// The messages are private (finding 11): make a new file owner-only.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, encrypted: opts.Key != nil, log: cmp.Or(opts.Logger, slog.Default())}
	for _, step := range []func(context.Context) error{s.verify, s.setWAL, s.migrate} {
		if err := step(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// sqliteHeader starts every unencrypted SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// The adiantum VFS encrypts the file in blocks of this size, each with its
// byte offset (little-endian uint64) as the tweak.
const adiantumBlockSize = 4096

// checkKey reads the start of the database file itself, before SQLite opens
// it, and fails with ErrWrongKey unless key (or, with no key, nothing)
// reveals the SQLite header. This must happen outside SQLite: after a crash
// the -wal file holds committed transactions that are not yet in the main
// file, and a connection that cannot read the database (wrong key, or no key
// for an encrypted file) still checkpoints and DELETES that -wal file when it
// closes, losing them. A missing or empty file is a new database.
func checkKey(path string, key []byte) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	block := make([]byte, adiantumBlockSize)
	n, err := io.ReadFull(f, block)
	switch {
	case n == 0 && err == io.EOF:
		return nil
	case err != nil && err != io.ErrUnexpectedEOF:
		return err
	}
	plain := block[:n]
	if key != nil {
		if n < adiantumBlockSize { // shorter than one encrypted block
			return ErrWrongKey
		}
		var tweak [8]byte // block 0: offset 0
		plain = adiantum.New(key).Decrypt(block, tweak[:])
	}
	if !bytes.HasPrefix(plain, sqliteHeader) {
		return ErrWrongKey
	}
	return nil
}

// dataSourceName builds the driver's URI for path. The per-connection PRAGMAs
// go in _pragma parameters so that each connection the pool opens gets them;
// the key must come first, before anything reads the file. The journal mode
// is not among them: it is stored in the file, and setWAL sets it once.
//
// WAL works with the adiantum VFS: it encrypts the -wal file with the
// database key (the -shm file holds only the WAL index: page numbers, salts
// and checksums, no page contents), and it shares the WAL index through the
// wrapped VFS's shared memory, so readers and one writer still run
// concurrently, also across processes.
func dataSourceName(path string, key []byte) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	// EscapedPath escapes '?', '#' and '%', which would otherwise end or
	// corrupt the file name inside the URI.
	name := (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath()
	q := url.Values{}
	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS),
		"foreign_keys(1)",
		// Temporary files may hold table data; keep them off the disk.
		"temp_store(memory)",
	}
	if key != nil {
		q.Set("vfs", "adiantum")
		pragmas = append([]string{"hexkey('" + hex.EncodeToString(key) + "')"}, pragmas...)
	}
	q["_pragma"] = pragmas
	return "file:" + name + "?" + q.Encode(), nil
}

// verify runs a real read through SQLite, so that a database SQLite cannot
// read fails here, clearly, instead of at the first query. It backs up
// checkKey, which has already refused a wrong key.
func (s *Store) verify(ctx context.Context) error {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n)
	if errors.Is(err, sqlite3.NOTADB) {
		return ErrWrongKey
	}
	return err
}

// setWAL puts the database in WAL mode (readers never block the writer). The
// mode is stored in the file, so this is a no-op after the first time. SQLite
// does not call the busy handler for this switch, so two processes opening a
// new file at once get "database is locked": retry for the busy timeout.
func (s *Store) setWAL(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	for {
		var mode string
		err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode = wal`).Scan(&mode)
		switch {
		case err == nil && !strings.EqualFold(mode, "wal"):
			return fmt.Errorf("set WAL journal mode: journal mode is %q", mode)
		case err == nil:
			return nil
		case !errors.Is(err, sqlite3.BUSY) || time.Now().After(deadline):
			return fmt.Errorf("set WAL journal mode: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// DB returns the underlying database handle, for code that keeps its own
// tables in the same file (whatsmeow's session store). Do not close it; call
// Close on the Store.
func (s *Store) DB() *sql.DB { return s.db }

// Encrypted reports whether the database is encrypted at rest (opened with a
// key).
func (s *Store) Encrypted() bool { return s.encrypted }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", s.path, err)
	}
	return nil
}

// inTx runs fn in a transaction, committing if it returns nil and rolling
// back otherwise, so a multi-statement change is never half applied. The
// transaction is IMMEDIATE (the driver's serializable): it takes the write
// lock at BEGIN, so its reads cannot go stale before its writes, and another
// writer waits (busy timeout) instead of interleaving.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// ParseKeyFile decodes the contents of a key file: exactly 64 hex digits
// (KeySize bytes), optionally surrounded by whitespace such as a final newline.
func ParseKeyFile(data []byte) ([]byte, error) {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return nil, errors.New("parse key file: file is empty, want 64 hex digits")
	}
	if len(text) != 2*KeySize {
		return nil, fmt.Errorf("parse key file: key is %d characters, want %d hex digits", len(text), 2*KeySize)
	}
	key, err := hex.DecodeString(text)
	if bad, ok := errors.AsType[hex.InvalidByteError](err); ok {
		return nil, fmt.Errorf("parse key file: byte %d (%q) is not a hex digit", strings.IndexByte(text, byte(bad))+1, byte(bad))
	}
	return key, err // nil: an even number of characters fails only on a byte that is not a hex digit
}
