package logfile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// records reads the JSON records of one log file, failing on a line that
// is not one.
func records(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for line := range strings.Lines(string(data)) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", filepath.Base(path), line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestLogRotatesAndStaysPrivate(t *testing.T) {
	dir := t.TempDir()
	// A file another user could read, as one made by hand would be: it is
	// tightened, and the files rotated after it inherit the tight mode.
	if err := os.WriteFile(filepath.Join(dir, Name), []byte(`{"msg":"before"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	level := new(slog.LevelVar)
	log, closeLog, err := open(dir, slog.New(slog.NewJSONHandler(&stderr, &slog.HandlerOptions{Level: level})), level, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "tightened the permissions") {
		t.Errorf("no warning about the loose log file on stderr: %q", stderr.String())
	}
	const n = 3000 // ~1.5 MB: at least one rotation at 1 MB
	pad := strings.Repeat("x", 400)
	for i := range n {
		log.Info("record", "i", i, "pad", pad)
	}
	closeLog()

	backups, err := Backups(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(backups) == 0 {
		t.Fatalf("no rotation after %d records of a 1 MB log; dir holds %v", n, ls(t, dir))
	}
	var seen []float64
	for _, path := range append(slices.Clone(backups), filepath.Join(dir, Name)) {
		if m := mode(t, path); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(path), m)
		}
		info, _ := os.Stat(path)
		if info.Size() > 1<<20 {
			t.Errorf("%s holds %d bytes, beyond the 1 MB limit", filepath.Base(path), info.Size())
		}
		for _, rec := range records(t, path) {
			if i, ok := rec["i"].(float64); ok {
				seen = append(seen, i)
			}
		}
	}
	// Every record is in exactly one file, whole (records checks that).
	slices.Sort(seen)
	if len(seen) != n || seen[0] != 0 || seen[n-1] != n-1 || len(slices.Compact(seen)) != n {
		t.Errorf("the files hold %d records, want each of %d once", len(seen), n)
	}
	// And stderr had every one too.
	if got := strings.Count(stderr.String(), `"msg":"record"`); got != n {
		t.Errorf("stderr got %d records, want %d", got, n)
	}
}

func TestLogFollowsTheLevelSwitch(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	log, closeLog, err := Open(dir, slog.New(slog.NewTextHandler(&stderr, &slog.HandlerOptions{Level: level})), level)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("quiet")
	log.Warn("loud", "group", "family")
	level.Set(slog.LevelDebug)
	log.Debug("detail")
	closeLog()
	log.Error("after close")

	var msgs []string
	for _, rec := range records(t, filepath.Join(dir, Name)) {
		msgs = append(msgs, rec["msg"].(string))
	}
	if want := []string{"loud", "detail"}; !slices.Equal(msgs, want) {
		t.Errorf("the file holds %q, want %q", msgs, want)
	}
	// stderr keeps its own format, and gets what comes after the file closed.
	for _, want := range []string{"level=WARN msg=loud group=family", "msg=detail", `msg="after close"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "quiet") {
		t.Errorf("stderr has a record below the level:\n%s", stderr.String())
	}
}

func TestLogRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, Name)); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(dir, slog.New(slog.DiscardHandler), new(slog.LevelVar))
	if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("a symlink as the log file: err %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); err == nil {
		t.Error("the link was followed")
	}
}

func TestBackupsNewestFirst(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{Name, "nanoclaw-2025-01-02T03-04-05.000.log", "nanoclaw-2025-03-01T00-00-00.000.log", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o600)
	}
	os.Mkdir(filepath.Join(dir, "nanoclaw-x.log"), 0o700) // not a file
	got, err := Backups(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "nanoclaw-2025-03-01T00-00-00.000.log"), filepath.Join(dir, "nanoclaw-2025-01-02T03-04-05.000.log")}
	if !slices.Equal(got, want) {
		t.Errorf("Backups = %q, want %q", got, want)
	}
}

func ls(t *testing.T, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestReaderLast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	long := strings.Repeat("é", MaxLine) // twice MaxLine bytes
	os.WriteFile(path, []byte("one\ntwo\n"+long+"\nthree\nunend"), 0o600)
	short := func(line string) bool { return len(line) < 10 }
	cases := []struct {
		n    int
		keep func(string) bool
		want []string
	}{
		{0, nil, nil},
		{2, nil, []string{long[:MaxLine] + "…", "three"}},
		{10, nil, []string{"one", "two", long[:MaxLine] + "…", "three"}},
		{2, short, []string{"two", "three"}},
	}
	for _, tc := range cases {
		r, err := NewReader(Path(path))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Last(tc.n, tc.keep)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Last(%d) = %.40q, want %.40q", tc.n, got, tc.want)
		}
		if r.Partial() != "unend" {
			t.Errorf("Partial = %q, want the unended line", r.Partial())
		}
		r.Close()
	}
}

func TestReaderRefusesAFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := NewReader(Path(path))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("a FIFO: err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}
}

// follower runs Follow in the background and collects its lines; the test's
// end stops it and closes the reader.
type follower struct {
	mu    sync.Mutex
	lines []string
	stop  context.CancelFunc
	done  chan error
}

func follow(t *testing.T, r *Reader) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{stop: cancel, done: make(chan error, 1)}
	r.Poll = time.Millisecond
	go func() {
		f.done <- r.Follow(ctx, func(line string) {
			f.mu.Lock()
			f.lines = append(f.lines, line)
			f.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-f.done; err != nil {
			t.Errorf("Follow: %v", err)
		}
		r.Close()
	})
	return f
}

// waitFor waits until the follower has collected want, in order.
func (f *follower) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		got := slices.Clone(f.lines)
		f.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("followed %q, want %q", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, text)
	f.Close()
}

func TestReaderFollowsAcrossRotationAndTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	appendTo(t, path, "old\nhalf")
	r, err := NewReader(Path(path))
	if err != nil {
		t.Fatal(err)
	}
	if last, _ := r.Last(5, nil); !slices.Equal(last, []string{"old"}) {
		t.Fatalf("Last = %q", last)
	}
	f := follow(t, r)
	appendTo(t, path, " done\nnew 1\n")
	f.waitFor(t, "half done", "new 1")

	// Rotation: the old file gets a last line, then moves away; a new one
	// takes its name.
	appendTo(t, path, "last of old\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "first of new\n")
	f.waitFor(t, "half done", "new 1", "last of old", "first of new")

	// Truncation in place: read again from the start. (A file seen only
	// after it grew past the point read, as tail -F, cannot tell.)
	if err := os.WriteFile(path, []byte("cut\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "half done", "new 1", "last of old", "first of new", "cut")
}

func TestReaderFollowsTheDaemonsRotation(t *testing.T) {
	dir := t.TempDir()
	log, closeLog, err := open(dir, slog.New(slog.DiscardHandler), new(slog.LevelVar), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	log.Info("started")
	r, err := NewReader(Path(filepath.Join(dir, Name)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Last(0, nil)
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r.Poll = time.Millisecond
	go func() {
		done <- r.Follow(ctx, func(line string) {
			var rec struct{ Msg string }
			json.Unmarshal([]byte(line), &rec)
			mu.Lock()
			got = append(got, rec.Msg)
			mu.Unlock()
		})
	}()
	const n = 2500 // beyond 1 MB: lumberjack rotates at least once
	pad := strings.Repeat("x", 500)
	for i := range n {
		log.Info(fmt.Sprint(i), "pad", pad)
	}
	if b, _ := Backups(dir); len(b) == 0 {
		t.Fatal("no rotation: the test would prove nothing")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		count := len(got)
		mu.Unlock()
		if count >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("followed %d records across the rotation, want %d", len(got), n)
	}
	for i, msg := range got {
		if msg != fmt.Sprint(i) {
			t.Fatalf("record %d is %q: lost or repeated across the rotation", i, msg)
		}
	}
}
