package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

// Bounds of the host's scan of the mounts' sources and the owner's trees.
const (
	scanBytes = 1 << 30
	scanTime  = 10 * time.Second
	scanFiles = 100_000
)

// scanSources looks for the exact bytes of each non-empty secret in the
// host-side source of every mount and in each of trees (the owner's own
// trees containers mount). What a container writes is hostile, so every
// tree is walked through os.Root, no link is followed and no FIFO is
// waited on. The detail says what was read and what was not.
func scanSources(mounts []sandbox.Mount, trees []string, secrets [][]byte) selftest.Finding {
	f := selftest.Finding{Name: FindingSources, OK: true}
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(b []byte) bool { return len(b) == 0 })
	if len(secrets) == 0 {
		f.Detail = "no credential is configured on the host; nothing to look for"
		return f
	}
	sc := &sourceScan{secrets: secrets, deadline: time.Now().Add(scanTime), left: scanBytes}
	var sources []string
	for _, m := range mounts {
		sources = append(sources, m.Source)
	}
	for _, t := range trees {
		if !slices.Contains(sources, t) {
			sources = append(sources, t)
		}
	}
	var read []string
	for _, src := range sources {
		files, read0 := sc.files, sc.read
		if sc.source(src) {
			read = append(read, fmt.Sprintf("%s (%d files, %d KiB)", src, sc.files-files, (sc.read-read0)>>10))
		}
	}
	f.Detail = fmt.Sprintf("read %d files (%d MiB): %s", sc.files, sc.read>>20, strings.Join(read, ", "))
	var skipped []string
	if sc.cut > 0 {
		skipped = append(skipped, fmt.Sprintf("%d files past the bounds (%d MiB, %v, %d files)", sc.cut, scanBytes>>20, scanTime, scanFiles))
	}
	if sc.other > 0 {
		skipped = append(skipped, fmt.Sprintf("%d links, FIFOs and other non-regular files (never followed or opened)", sc.other))
	}
	if len(sc.missing) > 0 {
		skipped = append(skipped, "missing "+strings.Join(sc.missing, ", "))
	}
	if len(sc.errs) > 0 {
		skipped = append(skipped, fmt.Sprintf("%d unreadable: %s", len(sc.errs), strings.Join(sc.errs[:min(len(sc.errs), 10)], ", ")))
	}
	if len(skipped) > 0 {
		f.Detail += "; not read: " + strings.Join(skipped, "; ")
	}
	if len(sc.found) > 0 {
		f.OK = false
		f.Detail = "the host's credential is in " + strings.Join(sc.found, ", ") + "; " + f.Detail
	}
	return f
}

// sourceScan is one scan's bounds and what it found.
type sourceScan struct {
	secrets              [][]byte
	deadline             time.Time
	left                 int64
	files, cut, other    int // files read (or begun), cut by the bounds, not regular
	read                 int64
	found, errs, missing []string
}

// source scans one tree: a directory through os.Root, or a file. The
// source's own path is the host's (the runtime follows it too); inside a
// directory no link is followed. It reports whether src was there to scan.
func (sc *sourceScan) source(src string) bool {
	real, err := filepath.EvalSymlinks(src)
	if errors.Is(err, fs.ErrNotExist) {
		sc.missing = append(sc.missing, src) // the run's socket directory goes with the container
		return false
	}
	if err != nil {
		sc.errs = append(sc.errs, src)
		return false
	}
	src = real
	st, err := os.Lstat(src)
	if err != nil {
		sc.errs = append(sc.errs, src)
		return false
	}
	if !st.IsDir() {
		root, err := os.OpenRoot(filepath.Dir(src))
		if err != nil {
			sc.errs = append(sc.errs, src)
			return false
		}
		defer root.Close()
		sc.file(root, filepath.Base(src), src)
		return true
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		sc.errs = append(sc.errs, src)
		return false
	}
	defer root.Close()
	fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // errors are noted per entry
		switch {
		case err != nil:
			sc.errs = append(sc.errs, path.Join(src, p))
		case d.Type().IsRegular():
			sc.file(root, p, filepath.Join(src, p))
		case !d.IsDir():
			sc.other++
		}
		return nil
	})
	return true
}

// file scans one regular file of root, opened without following a link
// and without blocking on a FIFO swapped in after the walk saw a file.
func (sc *sourceScan) file(root *os.Root, name, shown string) {
	if sc.left <= 0 || sc.files+sc.cut >= scanFiles || time.Now().After(sc.deadline) {
		sc.cut++
		return
	}
	file, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		sc.errs = append(sc.errs, shown)
		return
	}
	defer file.Close()
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		sc.other++
		return
	}
	longest := 0
	for _, s := range sc.secrets {
		longest = max(longest, len(s))
	}
	buf := make([]byte, max(1<<20, 2*longest))
	keep := 0
	r := io.LimitReader(file, sc.left)
	for {
		n, err := io.ReadFull(r, buf[keep:])
		sc.read += int64(n)
		sc.left -= int64(n)
		data := buf[:keep+n]
		for _, s := range sc.secrets {
			if bytes.Contains(data, s) {
				sc.found = append(sc.found, shown)
				sc.files++
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				sc.errs = append(sc.errs, shown)
			}
			sc.files++
			return
		}
		// Keep the end of this chunk: a secret may straddle two.
		keep = min(longest-1, len(data))
		copy(buf, data[len(data)-keep:])
	}
}
