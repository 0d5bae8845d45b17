package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// A group's run logs are kept within these bounds, newest first: what a
// container writes to its output must not fill the host's disk.
const (
	maxRunLogs      = 50
	maxRunLogBytes  = 100 << 20
	maxRunLogOutput = 10 << 20 // of one run's container output
)

// pruneRunLogs removes a group's oldest run logs beyond the bounds,
// keeping current (the host's own directory: nothing there is a
// container's).
func pruneRunLogs(dir, current string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var total int64
	kept := 0
	for i := len(entries) - 1; i >= 0; i-- { // names sort by start time
		e := entries[i]
		path := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || path == current {
			continue
		}
		kept++
		total += info.Size()
		if kept >= maxRunLogs || total > maxRunLogBytes {
			if err := os.Remove(path); err != nil {
				log.Warn("remove an old run log", "path", path, "err", err)
			}
		}
	}
}

// cappedWriter keeps at most left bytes, then notes what was cut. It is
// the container's stdout and stderr both, which exec.Cmd then writes from
// one goroutine at a time: no lock.
type cappedWriter struct {
	w    io.Writer
	left int64
	cut  bool
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if c.left <= 0 {
		if !c.cut {
			c.cut = true
			io.WriteString(c.w, "\n[nanoclaw: output cap reached; the rest of this run's output is not kept]\n")
		}
		return n, nil
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	c.left -= int64(len(p))
	c.w.Write(p)
	return n, nil
}
