package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// R12, R21: a data home that others could read is made private at start,
// with a log line, and every file the daemon makes — the database's -wal
// and -shm included — is private whatever the umask it was started with.
func TestDaemonMakesTheDataHomePrivate(t *testing.T) {
	env, home := homeEnv(t)
	data := filepath.Join(home, ".nanoclaw")
	for _, d := range []string{data, filepath.Join(data, "groups"), filepath.Join(data, "store")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o755)
	}
	old := syscall.Umask(0o022) // the daemon inherits it
	d := startDaemon(t, env)
	syscall.Umask(old)
	d.waitLog(t, "nanoclaw running")
	rec := d.waitLog(t, "tightened the permissions of a data file other users could read")
	if rec["was"] != "-rwxr-xr-x" && rec["was"] != "drwxr-xr-x" {
		t.Errorf("log line: %v", rec)
	}
	for _, sub := range []string{"", "groups", "store"} {
		if st, _ := os.Stat(filepath.Join(data, sub)); st == nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", filepath.Join(data, sub), st.Mode().Perm())
		}
	}
	files, _ := filepath.Glob(filepath.Join(data, "store", "nanoclaw.db*"))
	if len(files) < 3 {
		t.Fatalf("want the database with its -wal and -shm, got %v", files)
	}
	for _, f := range append(files, filepath.Join(data, "nanoclaw.lock")) {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait(t)

	// A store file loosened by hand is tightened at the next start.
	os.Chmod(filepath.Join(data, "store", "nanoclaw.db"), 0o644)
	d = startDaemon(t, env)
	d.waitLog(t, "nanoclaw running")
	if st, _ := os.Stat(filepath.Join(data, "store", "nanoclaw.db")); st.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v after restart, want 0600", st.Mode().Perm())
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait(t)
}
