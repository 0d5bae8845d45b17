package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/nanoclaw/nanoclaw/internal/logfile"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

const logsHelp = `Show the daemon's log (logs/nanoclaw.log in the data home), one line a
record: time, level, message, then its attributes as key=value.

  nanoclaw logs                          the last 100 lines
  nanoclaw logs -f                       then follow it, across rotations, until Ctrl-C
  nanoclaw logs --group family           only the lines about the group "family"
  nanoclaw logs --group family --run     that group's latest run log (its agent's output)

The last lines reach back into the rotated files when the current one is
short. --json prints each line as the daemon wrote it, for other tools.
Terminal escape sequences are taken out of everything printed: log lines
quote chat text and the agent's output.`

// logsPollInterval is how often -f looks for new lines; tests shorten it.
var logsPollInterval = 200 * time.Millisecond

func (m *Main) runLogs(ctx context.Context, args []string) error {
	fs := m.flagSet("logs", "[-n N] [-f] [--group FOLDER [--run]] [--json]", logsHelp)
	n := fs.Int("n", 100, "print the last `N` lines")
	follow := fs.Bool("f", false, "then follow: print new lines as they are written, until Ctrl-C")
	group := fs.String("group", "", "only the lines about the group `FOLDER`; with --run, its run log")
	run := fs.Bool("run", false, "print the group's latest run log instead of the daemon's log")
	asJSON := fs.Bool("json", false, "print lines as written (JSON lines), not as readable text")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *n < 0:
		return usagef("-n %d: give the number of lines to print, 0 or more", *n)
	case *run && *group == "":
		return usagef("--run needs --group FOLDER: whose run log?")
	}
	if err := optionalGroup(*group); err != nil {
		return err
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	p := logPrinter{w: m.Stdout, json: *asJSON}
	if *run {
		return p.runLog(ctx, filepath.Join(cfg.LogsDir(), *group), *group, *n, *follow)
	}
	p.group = *group
	return p.daemonLog(ctx, cfg.LogsDir(), *n, *follow)
}

// logPrinter prints log lines: readable or as written, only a group's when
// group is set, always without terminal controls (R10).
type logPrinter struct {
	w     io.Writer
	json  bool
	group string
}

// daemonLog prints the daemon's log in dir: its last n lines, from the
// rotated files too when the current one has fewer, then, with follow, what
// is written until ctx ends.
func (p logPrinter) daemonLog(ctx context.Context, dir string, n int, follow bool) error {
	path := filepath.Join(dir, logfile.Name)
	r, err := logfile.NewReader(logfile.Path(path))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no daemon log at %s: the daemon writes it while it runs ('nanoclaw run')", path)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	lines, err := r.Last(n, p.keep)
	if err != nil {
		return err
	}
	if len(lines) < n {
		backups, err := logfile.Backups(dir)
		if err != nil {
			return err
		}
		for _, b := range backups {
			older, err := p.last(logfile.Path(b), n-len(lines))
			if err != nil {
				return err
			}
			if lines = append(older, lines...); len(lines) >= n {
				break
			}
		}
	}
	return p.finish(ctx, r, lines, follow)
}

// runLog prints the newest run log in dir, group's: its last n lines, then
// with follow what the run adds until ctx ends. R1: a run log is the host's
// file, but what is in it came from the container, so it is read through an
// os.Root of dir, bounded line by line, and printed without controls.
func (p logPrinter) runLog(ctx context.Context, dir, group string, n int, follow bool) error {
	none := fmt.Errorf("no run log of group %s in %s: one is written each time the group's agent runs", group, dir)
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return none
	}
	if err != nil {
		return err
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return err
	}
	newest := ""
	for _, e := range entries { // named by start time: <UTC time>-<container>.log
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".log") && e.Name() > newest {
			newest = e.Name()
		}
	}
	if newest == "" {
		return none
	}
	r, err := logfile.NewReader(logfile.Source{
		Open: func() (*os.File, error) { return root.OpenFile(newest, os.O_RDONLY|syscall.O_NONBLOCK, 0) },
		Stat: func() (fs.FileInfo, error) { return root.Stat(newest) },
	})
	if err != nil {
		return err
	}
	defer r.Close()
	lines, err := r.Last(n, nil)
	if err != nil {
		return err
	}
	return p.finish(ctx, r, lines, follow)
}

// last is a closed file's last n kept lines, an unended last line among them.
func (p logPrinter) last(src logfile.Source, n int) ([]string, error) {
	r, err := logfile.NewReader(src)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	lines, err := r.Last(n, p.keep)
	if rest := r.Partial(); rest != "" && p.keep(rest) && n > 0 {
		lines = append(lines, rest)[max(0, len(lines)+1-n):]
	}
	return lines, err
}

// finish prints lines, then follows r, or prints its unended last line.
func (p logPrinter) finish(ctx context.Context, r *logfile.Reader, lines []string, follow bool) error {
	for _, line := range lines {
		p.print(line)
	}
	if follow {
		r.Poll = logsPollInterval
		return r.Follow(ctx, func(line string) {
			if p.keep(line) {
				p.print(line)
			}
		})
	}
	if rest := r.Partial(); rest != "" && p.keep(rest) {
		p.print(rest)
	}
	return nil
}

// keep reports whether a line is printed: with a group, only the records
// whose "group" attribute names it (the one name the daemon's parts use).
func (p logPrinter) keep(line string) bool {
	if p.group == "" {
		return true
	}
	for _, a := range jsonObject([]byte(line)) {
		if a.key == "group" {
			var g string
			return json.Unmarshal(a.value, &g) == nil && g == p.group
		}
	}
	return false
}

func (p logPrinter) print(line string) {
	if !p.json {
		if attrs := jsonObject([]byte(line)); attrs != nil {
			line = readable(attrs)
		}
	}
	fmt.Fprintln(p.w, sanitize.Terminal(line))
}

// attr is one member of a JSON object, in the order written.
type attr struct {
	key   string
	value json.RawMessage
}

// jsonObject is data's members when data is one JSON object, else nil.
func jsonObject(data []byte) []attr {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	attrs := []attr{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		attrs = append(attrs, attr{key, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil
	}
	return attrs
}

// readable is a record as one line: local time, level, message, then each
// attribute as key=value (a nested group's as group.key=value).
func readable(attrs []attr) string {
	var head [3]string // time, level, message
	var b strings.Builder
	for _, a := range attrs {
		switch a.key {
		case slog.TimeKey:
			head[0] = jsonString(a.value)
			if t, err := time.Parse(time.RFC3339Nano, head[0]); err == nil {
				head[0] = t.Local().Format("2006-01-02 15:04:05.000")
			}
		case slog.LevelKey:
			head[1] = fmt.Sprintf("%-5s", jsonString(a.value))
		case slog.MessageKey:
			head[2] = quoteUnless(jsonString(a.value), unicode.IsPrint)
		default:
			writeAttr(&b, a.key, a.value)
		}
	}
	var line []string
	for _, h := range head {
		if h != "" {
			line = append(line, h)
		}
	}
	return strings.Join(line, " ") + b.String()
}

func writeAttr(b *strings.Builder, key string, v json.RawMessage) {
	if group := jsonObject(v); group != nil {
		for _, a := range group {
			writeAttr(b, key+"."+a.key, a.value)
		}
		return
	}
	b.WriteString(" " + key + "=" + quoteUnless(jsonString(v), func(r rune) bool {
		return unicode.IsPrint(r) && r != ' ' && r != '=' && r != '"'
	}))
}

// jsonString is v's text when v is a JSON string, else v as written
// (a number, true, false, null, an array).
func jsonString(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return string(v)
	}
	return s
}

// quoteUnless quotes s, as Go would, unless every character of it is ok:
// a value stays one word of one line.
func quoteUnless(s string, ok func(rune) bool) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !ok(r) }) {
		return s
	}
	return strconv.Quote(s)
}
