package selftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// The credential findings: the environment, and every readable file.

// credentialEnv are the variables Claude Code reads a credential from.
var credentialEnv = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"}

// environment: no variable holds a credential; the placeholder the agent
// hands Claude Code is fine (finding 1).
func environment(env []string) Finding {
	f := Finding{Name: FindingEnv, OK: true, Detail: fmt.Sprintf("%d variables, none a credential", len(env))}
	var bad []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(credentialEnv, k) && v != "" && v != ipc.PlaceholderAPIKey || credentialShaped([]byte(v)) >= 0 {
			bad = append(bad, k) // never the value: this report is printed
		}
	}
	if len(bad) > 0 {
		f.OK, f.Detail = false, "credential in "+strings.Join(bad, ", ")
	}
	return f
}

// The shapes of a credential: an Anthropic key or token ("sk-ant-" and a
// long run of key characters: api03-…, oat01-…) or an HTTP bearer token.
// Short runs are names in programs (Claude Code's own source mentions the
// prefix), not keys.
var (
	keyPrefix     = []byte("sk-ant-")
	bearerPrefix  = []byte("Bearer ")
	minSecretRun  = 32
	maxPatternLen = len(bearerPrefix) + minSecretRun
)

func keyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func tokenChar(c byte) bool { return keyChar(c) || c == '.' || c == '~' || c == '+' || c == '/' }

// credentialShaped returns the offset of the first credential-shaped run
// in b, or -1.
func credentialShaped(b []byte) int {
	for _, p := range []struct {
		prefix []byte
		ok     func(byte) bool
	}{{keyPrefix, keyChar}, {bearerPrefix, tokenChar}} {
		for off := 0; ; {
			i := bytes.Index(b[off:], p.prefix)
			if i < 0 {
				break
			}
			start := off + i + len(p.prefix)
			n := 0
			for n < minSecretRun && start+n < len(b) && p.ok(b[start+n]) {
				n++
			}
			if n >= minSecretRun {
				return off + i
			}
			off = start
		}
	}
	return -1
}

// walk searches every readable regular file under the walk root, without
// following links and without entering the skipped directories, for
// credential-shaped bytes, within its bounds.
func walk(ctx context.Context, cfg Config) Finding {
	f := Finding{Name: FindingFiles, OK: true}
	deadline := time.Now().Add(cfg.WalkTime)
	var files, unreadable, cut int
	var read int64
	var found []string
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(cfg.WalkRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			unreadable++
			return nil // a directory we may not enter: nothing readable there
		}
		if d.IsDir() && slices.Contains(cfg.SkipDirs, path) {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) || read >= cfg.WalkBytes {
			cut++
			return nil
		}
		n, at, err := scanFile(path, buf, cfg.WalkBytes-read)
		read += n
		switch {
		case err != nil:
			unreadable++
		case at >= 0:
			found = append(found, fmt.Sprintf("%s (at byte %d)", path, at))
		default:
			files++
		}
		return nil
	})
	if err != nil {
		return Finding{Name: FindingFiles, Detail: "walk " + cfg.WalkRoot + ": " + err.Error()}
	}
	f.Detail = fmt.Sprintf("%d files read (%d MiB) under %s, skipping %s; %d unreadable", files, read>>20, cfg.WalkRoot, strings.Join(cfg.SkipDirs, ", "), unreadable)
	if cut > 0 {
		f.Detail += fmt.Sprintf("; %d files not read within the bounds (%d MiB, %v)", cut, cfg.WalkBytes>>20, cfg.WalkTime)
	}
	if len(found) > 0 {
		f.OK = false
		f.Detail = clip("credential-shaped bytes in " + strings.Join(found, ", ") + "; " + f.Detail)
	}
	return f
}

// scanFile reads at most limit bytes of the regular file at path (never
// through a link, never blocking on a FIFO put there after the walk saw
// it) and returns how many it read and the offset of the first
// credential-shaped run, or -1.
func scanFile(path string, buf []byte, limit int64) (int64, int64, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, -1, err
	}
	defer file.Close()
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		return 0, -1, fmt.Errorf("%s: not a regular file", path)
	}
	r := io.LimitReader(file, limit)
	var total int64
	keep := 0 // bytes of the previous chunk kept, so a match across chunks is seen
	for {
		n, err := io.ReadFull(r, buf[keep:])
		if n > 0 {
			data := buf[:keep+n]
			if i := credentialShaped(data); i >= 0 {
				return total + int64(n), total - int64(keep) + int64(i), nil
			}
			total += int64(n)
			keep = min(maxPatternLen, len(data))
			copy(buf, data[len(data)-keep:])
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return total, -1, nil
		}
		if err != nil {
			return total, -1, err
		}
	}
}
