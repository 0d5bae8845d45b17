package logfile

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// MaxLine is the longest line a Reader hands on, in bytes; the rest of a
// longer line is left out and "…" marks the cut. It bounds what a run log,
// whose content came from a container, can make 'nanoclaw logs' print.
const MaxLine = 64 << 10

// Source is a log file known by its name: Open opens what is at the name
// now, Stat says what that is (another file once the log was rotated).
type Source struct {
	Open func() (*os.File, error)
	Stat func() (fs.FileInfo, error)
}

// Path is the Source of the file at path. It is opened non-blocking: a
// FIFO left at the name must not hang the reader before it is refused.
func Path(path string) Source {
	return Source{
		Open: func() (*os.File, error) { return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) },
		Stat: func() (fs.FileInfo, error) { return os.Stat(path) },
	}
}

// Reader reads a log file's lines from its start, then follows it as the
// writer appends, rotates or truncates it (as tail -F does).
type Reader struct {
	// Poll is how often Follow looks for more at the end of the file
	// (default 200ms).
	Poll time.Duration

	src  Source
	f    *os.File
	off  int64  // bytes of f read so far
	line []byte // the line read so far, not yet ended, at most MaxLine bytes
	cut  bool   // line lost bytes beyond MaxLine
	buf  []byte
}

// NewReader opens src for reading from its start. It must be a regular file.
func NewReader(src Source) (*Reader, error) {
	r := &Reader{src: src, buf: make([]byte, 32<<10)}
	f, err := r.open()
	if err != nil {
		return nil, err
	}
	r.f = f
	return r, nil
}

func (r *Reader) open() (*os.File, error) {
	f, err := r.src.Open()
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%v)", f.Name(), info.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close closes the file being read.
func (r *Reader) Close() error { return r.f.Close() }

// Last reads to the end of the file and returns the last n ended lines
// that keep (nil: every line) keeps, oldest first. A line still being
// written is kept for Partial and Follow.
func (r *Reader) Last(n int, keep func(string) bool) ([]string, error) {
	var last []string
	err := r.read(func(line string) {
		if n <= 0 || keep != nil && !keep(line) {
			return
		}
		if len(last) == n {
			last = last[1:]
		}
		last = append(last, line)
	})
	return last, err
}

// Partial is the line after the file's last newline, as read so far: what a
// crashed writer left unended, or what a live one has not ended yet.
func (r *Reader) Partial() string {
	return r.text()
}

// Follow hands each line appended to the file to emit until ctx ends, then
// returns nil. When the name comes to hold another file (the log was
// rotated), the rest of the old one is read, then the new one from its
// start; a file that shrank (truncated) is read again from its start.
func (r *Reader) Follow(ctx context.Context, emit func(string)) error {
	tick := time.NewTicker(cmp.Or(r.Poll, 200*time.Millisecond))
	defer tick.Stop()
	for {
		if err := r.read(emit); err != nil {
			return err
		}
		moved, err := r.reopen(emit)
		if err != nil {
			return err
		}
		if moved {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// reopen switches to the file now at the name, or back to the start of a
// truncated file, and reports whether it did.
func (r *Reader) reopen(emit func(string)) (bool, error) {
	now, err := r.src.Stat()
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // between the rotation's rename and its new file
	}
	if err != nil {
		return false, err
	}
	cur, err := r.f.Stat()
	if err != nil {
		return false, err
	}
	if os.SameFile(now, cur) {
		if now.Size() >= r.off {
			return false, nil
		}
		if _, err := r.f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		r.off, r.line, r.cut = 0, r.line[:0], false
		return true, nil
	}
	// Rotated: what was written to the old file before its rename first.
	if err := r.read(emit); err != nil {
		return false, err
	}
	f, err := r.open()
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(r.line) > 0 {
		emit(r.text()) // the old file's unended last line
	}
	r.f.Close()
	r.f, r.off, r.line, r.cut = f, 0, r.line[:0], false
	return true, nil
}

// read hands emit every line ended from here to the file's end.
func (r *Reader) read(emit func(string)) error {
	for {
		n, err := r.f.Read(r.buf)
		r.off += int64(n)
		r.feed(r.buf[:n], emit)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// feed adds p to the line being read, handing each ended line to emit.
func (r *Reader) feed(p []byte, emit func(string)) {
	for len(p) > 0 {
		end := bytes.IndexByte(p, '\n')
		part := p
		if end >= 0 {
			part = p[:end]
		}
		if room := MaxLine - len(r.line); len(part) > room {
			part, r.cut = part[:room], true
		}
		r.line = append(r.line, part...)
		if end < 0 {
			return
		}
		emit(r.text())
		r.line, r.cut = r.line[:0], false
		p = p[end+1:]
	}
}

func (r *Reader) text() string {
	if r.cut {
		return string(r.line) + "…"
	}
	return string(r.line)
}
