// Package logfile is the daemon's log file, logs/nanoclaw.log in the data
// home: written as JSON lines beside the daemon's stderr, rotated by size,
// and read back (its last lines, then following it across rotations) by
// 'nanoclaw logs', which also reads a group's run logs with it.
package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Name is the daemon's log file in the logs directory. Run logs live beside
// it in logs/<folder>/, and no group folder can be named like it or like
// its backups (nanoclaw-<UTC time>.log): folders have no '.'.
const Name = "nanoclaw.log"

// Rotation: at most maxSizeMB in the current file and maxBackups older ones
// (60 MB in all), kept uncompressed so that 'nanoclaw logs -n' reads back
// into the newest backup, and grep and less read them as they are; what
// gzip would save is small beside the data home's other contents.
const (
	maxSizeMB  = 10
	maxBackups = 5
)

// Open adds the daemon's log file in dir to log: every record log handles
// is also written to the file as a JSON line, at the same level switch.
// Call it once the data home is locked, since two daemons must not write
// one file; close, called when the daemon is done, closes the file (records
// after it go to log's handler alone).
func Open(dir string, log *slog.Logger, level slog.Leveler) (_ *slog.Logger, close func(), err error) {
	return open(dir, log, level, maxSizeMB)
}

func open(dir string, log *slog.Logger, level slog.Leveler, sizeMB int) (*slog.Logger, func(), error) {
	path := filepath.Join(dir, Name)
	if err := private(path, log); err != nil {
		return nil, nil, err
	}
	// lumberjack creates the file 0600 and gives each new file the mode of
	// the one it rotates away, so keeping the first private keeps them all.
	w := &writer{lj: &lumberjack.Logger{Filename: path, MaxSize: sizeMB, MaxBackups: maxBackups}}
	// lumberjack opens the file at the first write: do it now, so a log
	// that cannot be written stops the start instead of losing every line.
	if _, err := w.lj.Write(nil); err != nil {
		return nil, nil, fmt.Errorf("open the daemon's log file: %w (check that %s is writable)", err, dir)
	}
	file := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(slog.NewMultiHandler(log.Handler(), file)), w.close, nil
}

// private makes sure an existing log file is a regular file with no
// permission bits beyond 0600.
func private(path string, log *slog.Logger) error {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("the daemon's log file: %w", err)
	case !info.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%v): remove it, and nanoclaw writes a new log there", path, info.Mode().Type())
	case info.Mode().Perm()&0o077 == 0:
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("%s has mode %v and cannot be made private: %w (fix it with chmod 600 %s)", path, info.Mode().Perm(), err, path)
	}
	log.Warn("tightened the permissions of the daemon's log file", "path", path, "was", info.Mode().Perm().String(), "now", "-rw-------")
	return nil
}

// writer is the rotating file, closed for good by close: lumberjack would
// reopen the file at the next write, after the daemon let go of the lock.
type writer struct {
	mu     sync.Mutex
	lj     *lumberjack.Logger
	closed bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	return w.lj.Write(p)
}

func (w *writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.lj.Close()
}

// Backups are the paths of the log's rotated files in dir, newest first.
// lumberjack names them nanoclaw-<UTC time>.log, which sort by time.
func Backups(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	prefix, ext := strings.TrimSuffix(Name, ".log")+"-", ".log"
	var paths []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ext) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	slices.Reverse(paths) // ReadDir sorts by name
	return paths, nil
}
