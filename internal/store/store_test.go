package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenSetsPragmasOnEveryConnection(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	// Hold several connections at once so the pool must open new ones.
	var conns []interface{ Close() error }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 3 {
		c, err := s.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		for _, p := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"busy_timeout", fmt.Sprint(busyTimeoutMS)},
			{"temp_store", "2"}, // 2 = memory
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s = %q, want %q", i, p.pragma, got, p.want)
			}
		}
	}
}

func TestOpenPathNeedingEscapes(t *testing.T) {
	// '?', '#', '%' and spaces would corrupt a naive "file:" URI.
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%41")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "my db?.db")
	s, _ := openTestAt(t, path, nil)
	if err := s.UpsertChat(context.Background(), Chat{JID: "c", Channel: "x", LastActivity: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database not created at the exact path: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("new database file mode = %v, want 0600", info.Mode().Perm())
	}
}

func TestOpenRejectsBadKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		path := filepath.Join(t.TempDir(), "x.db")
		_, err := Open(context.Background(), path, Options{Key: make([]byte, n)})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("key is %d bytes, want 32", n)) {
			t.Errorf("key of %d bytes: err = %v", n, err)
		}
	}
}

func TestParseKeyFile(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		name, data string
		wantErr    string // "" = valid
	}{
		{"plain", hex64, ""},
		{"uppercase", strings.ToUpper(hex64), ""},
		{"trailing newline", hex64 + "\n", ""},
		{"surrounding whitespace", " \t\r\n" + hex64 + "\r\n\n", ""},
		{"empty", "", "file is empty"},
		{"only whitespace", " \n", "file is empty"},
		{"too short", hex64[:62], "key is 62 characters, want 64 hex digits"},
		{"too long", hex64 + "00", "key is 66 characters"},
		{"non-hex", "g" + hex64[1:], `byte 1 ('g') is not a hex digit`},
		{"inner space", hex64[:31] + " " + hex64[32:], `byte 32 (' ') is not a hex digit`},
		{"two lines", hex64[:32] + "\n" + hex64[32:], "key is 65 characters"},
		{"0x prefix", "0x" + hex64[2:], `byte 2 ('x') is not a hex digit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := ParseKeyFile([]byte(tc.data))
			if wantErrText(t, err, tc.wantErr); err != nil {
				return
			}
			want, _ := hex.DecodeString(strings.ToLower(strings.TrimSpace(tc.data)))
			if !bytes.Equal(key, want) || len(key) != KeySize {
				t.Fatalf("key = %x, want %x", key, want)
			}
		})
	}
}

// A key written out as a key file reads back.
func TestKeyFileRoundTrip(t *testing.T) {
	key := newKey()
	got, err := ParseKeyFile([]byte(hex.EncodeToString(key) + "\n"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("ParseKeyFile = %x, %v; want %x", got, err, key)
	}
}

// dbFiles reads the database at path and those of its -wal and -shm
// companions that exist.
func dbFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		files[f] = data
	}
	return files
}

// fileHashes returns the SHA-256 of each existing file among path and its
// -wal and -shm companions.
func fileHashes(t *testing.T, path string) map[string]string {
	t.Helper()
	h := map[string]string{}
	for f, data := range dbFiles(t, path) {
		sum := sha256.Sum256(data)
		h[f] = hex.EncodeToString(sum[:])
	}
	return h
}

// assertNoPlaintext checks the raw bytes of the database and its -wal and
// -shm files for the marker and the SQLite header; it returns how many files
// it read.
func assertNoPlaintext(t *testing.T, path, marker string) int {
	t.Helper()
	files := dbFiles(t, path)
	for f, data := range files {
		if bytes.Contains(data, []byte(marker)) {
			t.Errorf("%s contains the marker text in plaintext", filepath.Base(f))
		}
		if bytes.Contains(data, []byte("SQLite format 3")) {
			t.Errorf("%s contains the plaintext SQLite header", filepath.Base(f))
		}
	}
	return len(files)
}

func TestEncryptionAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "secret.db")
	key := newKey()
	otherKey := newKey()
	marker := "MARKER-" + hex.EncodeToString(key[:6]) + "-the-owner's-secret"

	s, _ := openTestAt(t, path, key)
	if !s.Encrypted() {
		t.Fatal("Encrypted() = false for a store opened with a key")
	}
	mustPutGroup(t, s, testGroup("family"))
	if err := s.BindChat(ctx, "fam@g.us", "family"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 { // enough to fill several WAL frames
		if _, _, err := s.AddMessage(ctx, Message{ChatJID: "fam@g.us", ID: fmt.Sprint(i), Sender: "a", SenderName: "A",
			Content: marker, Timestamp: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// While open, the WAL holds the newest pages: it must be encrypted too.
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("expected a -wal file while open: %v", err)
	}
	if n := assertNoPlaintext(t, path, marker); n < 2 {
		t.Fatalf("read %d files while open, want the database and its -wal", n)
	}

	// A wrong key, tried while the right one is still open and the WAL is
	// hot, must not touch any file.
	before := fileHashes(t, path)
	if _, err := Open(ctx, path, Options{Key: otherKey}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("open with a wrong key while open: err = %v, want ErrWrongKey", err)
	}
	if after := fileHashes(t, path); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("wrong-key open changed the files:\nbefore %v\nafter  %v", before, after)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := assertNoPlaintext(t, path, marker); n < 1 {
		t.Fatal("database file missing after close")
	}

	before = fileHashes(t, path)
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"without a key", nil},
		{"with a different key", otherKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, path, Options{Key: tc.key})
			if !errors.Is(err, ErrWrongKey) {
				t.Fatalf("err = %v, want ErrWrongKey", err)
			}
			msg := err.Error()
			for _, want := range []string{"open database " + path, "cannot decrypt", "NANOCLAW_DB_KEY_FILE"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if after := fileHashes(t, path); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("failed open changed the files:\nbefore %v\nafter  %v", before, after)
			}
		})
	}

	t.Run("with the right key", func(t *testing.T) {
		s, _ := openTestAt(t, path, key)
		msgs := messagesOf(t, s, "fam@g.us")
		if len(msgs) != 50 || msgs[0].Content != marker {
			t.Fatalf("read back %d messages (first %+v), want 50 with the marker", len(msgs), msgs)
		}
		if n := assertNoPlaintext(t, path, marker); n < 1 {
			t.Fatal("database file missing")
		}
	})
}

func TestPlainDatabaseOpenedWithKeyFails(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "plain.db")
	s, _ := openTestAt(t, path, nil)
	if s.Encrypted() {
		t.Fatal("Encrypted() = true for a store opened without a key")
	}
	mustPutGroup(t, s, testGroup("main"))
	s.Close()

	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte("SQLite format 3\x00")) {
		t.Fatalf("an unencrypted database should start with the SQLite header (err %v)", err)
	}
	before := fileHashes(t, path)
	key := newKey()
	_, err = Open(ctx, path, Options{Key: key})
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("err = %v, want ErrWrongKey", err)
	}
	if after := fileHashes(t, path); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("open with a key changed the unencrypted file")
	}
	// And it still opens without one.
	s, _ = openTestAt(t, path, nil)
	if _, found, err := s.GetGroup(ctx, "main"); err != nil || !found {
		t.Fatalf("GetGroup after failed keyed open: found=%v err=%v", found, err)
	}
}

func TestNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("this is not sqlite "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("err = %v, want ErrWrongKey (cannot tell junk from ciphertext)", err)
	}
}

// crashCopy writes messages through a store at a new path, then copies the
// database and its -wal file while the store is still open, as a crash would
// leave them: committed transactions that live only in the -wal file.
func crashCopy(t *testing.T, key []byte, messages int) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	s, _ := openTestAt(t, path, key)
	for i := range messages {
		addMsg(t, s, Message{ChatJID: "c@g.us", ID: fmt.Sprint(i)})
	}
	crashed := filepath.Join(dir, "crashed.db")
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatalf("reading %s%s while open: %v", path, suffix, err)
		}
		if err := os.WriteFile(crashed+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return crashed
}

func TestWrongKeyAfterCrashKeepsWAL(t *testing.T) {
	ctx := context.Background()
	right := newKey()
	wrong := newKey()
	for _, tc := range []struct {
		name       string
		key, tried []byte
	}{
		{"encrypted, opened with a wrong key", right, wrong},
		{"encrypted, opened without a key", right, nil},
		{"unencrypted, opened with a key", nil, wrong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const messages = 30
			path := crashCopy(t, tc.key, messages)
			before := fileHashes(t, path)
			if len(before) != 2 {
				t.Fatalf("want a database and a hot -wal, have %v", before)
			}
			if _, err := Open(ctx, path, Options{Key: tc.tried}); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("err = %v, want ErrWrongKey", err)
			}
			if after := fileHashes(t, path); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("failed open changed the files:\nbefore %v\nafter  %v", before, after)
			}
			// The committed messages that lived only in the -wal survive.
			s, _ := openTestAt(t, path, tc.key)
			if n := len(messagesOf(t, s, "c@g.us")); n != messages {
				t.Fatalf("after recovery: %d messages, want %d", n, messages)
			}
		})
	}
}

func TestOpenEdgeFiles(t *testing.T) {
	ctx := context.Background()
	key := newKey()
	t.Run("empty existing file becomes an encrypted database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "empty.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s, _ := openTestAt(t, path, key)
		s.Close()
		if n := assertNoPlaintext(t, path, "\x00never\x00"); n != 1 {
			t.Fatalf("%d files after close, want 1", n)
		}
		if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("open without key: %v", err)
		}
	})
	t.Run("short junk with a key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "short.db")
		if err := os.WriteFile(path, []byte("SQLite format 3\x00 but only 40 bytes..."), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, path, Options{Key: key}); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("err = %v, want ErrWrongKey", err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "dir.db")
		_, err := Open(ctx, path, Options{})
		if err == nil || errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want a plain open error naming the path", err)
		}
	})
}
