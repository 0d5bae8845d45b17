package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/status"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

const statusHelp = `Show what nanoclaw is doing: its channels, the run queue, each group's
state, last message and reply, tasks and model usage, and recent errors and
refused destinations. With --group, that group alone and its trace: each
recent message's way (stored → answered or not, and why → queued → container
started → prompt sent → reply or error), which answers "why didn't it reply?".
From the running daemon, or from the database when it is down.`

func (m *Main) runStatus(ctx context.Context, args []string) error {
	fs := m.flagSet("status", "[--group FOLDER] [--json]", statusHelp)
	group := fs.String("group", "", "one group's status and trace")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := optionalGroup(*group); err != nil {
		return err
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	raw, err := m.statusJSON(ctx, cfg, *group)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeRawJSON(m.Stdout, raw)
	}
	var rep status.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	m.printStatus(&rep, cfg)
	return nil
}

// optionalGroup checks a --group that may be left out (finding 5).
func optionalGroup(folder string) error {
	if folder == "" {
		return nil
	}
	if err := store.ValidateFolder(folder); err != nil {
		return usagef("--group: %v", err)
	}
	return nil
}

// statusJSON is the report as JSON: the daemon's own (printed as it is,
// not decoded and encoded again: that would cost the time status is meant
// to answer in), or made from the database when the daemon is down.
func (m *Main) statusJSON(ctx context.Context, cfg *config.Config, group string) ([]byte, error) {
	raw, err := control.Dial(cfg.ControlSocket()).StatusJSON(ctx, group)
	var apiErr *control.APIError
	switch {
	case err == nil:
		return raw, nil
	case errors.As(err, &apiErr):
		return nil, errors.New(apiErr.Message)
	case !errors.Is(err, control.ErrNotRunning):
		return nil, err
	}
	if _, err := os.Stat(cfg.DBPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("nanoclaw has not run with data home %s yet: start it with 'nanoclaw run' (or 'nanoclaw setup')", cfg.Home)
	}
	st, err := daemon.OpenStore(ctx, cfg, m.Logger)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rep, err := status.Collect(ctx, st, group, time.Now(), nil)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rep)
}

func (m *Main) printStatus(r *status.Report, cfg *config.Config) {
	loc := cfg.Timezone
	out := m.Stdout
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(loc).Format("01-02 15:04:05")
	}
	if r.Running {
		fmt.Fprintf(out, "nanoclaw %s, running since %s (up %s)\n", r.Version, at(r.Started), time.Since(r.Started).Round(time.Second))
	} else {
		fmt.Fprintf(out, "nanoclaw is not running (start it with 'nanoclaw run' or 'nanoclaw service start'); from the database:\n")
	}
	if len(r.Channels) > 0 {
		fmt.Fprintln(out, "\nCHANNELS")
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, c := range r.Channels {
			state := "connected as " + oneLine(c.Account, 60)
			if !c.Connected {
				state = "not connected"
			}
			fmt.Fprintf(tw, "  %s\t%s\tlast message %s\t%s\n", c.Name, state, at(c.LastEvent), c.Note)
		}
		tw.Flush()
	}
	if q := r.Queue; q != nil {
		fmt.Fprintf(out, "\nQUEUE  %d of %d agents running", q.Running, q.Limit)
		if len(q.Waiting) > 0 {
			fmt.Fprintf(out, "; waiting: %v", q.Waiting)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "\nGROUPS  (usage: requests / input tokens / output tokens, as the gateway counted them)")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FOLDER\tSTATE\tLAST MESSAGE\tLAST REPLY\tTASKS\tNEXT RUN\tTODAY\tTHIS MONTH")
	for _, g := range r.Groups {
		name, state := g.Folder, g.State
		if g.Main {
			name += " (main)"
		}
		if state == "" {
			state = "-"
		} else if state != "idle" {
			state += " " + time.Since(g.Since).Round(time.Second).String()
		}
		next := "-"
		if g.NextRun != nil {
			next = at(*g.NextRun)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", name, state, at(g.LastMessage), at(g.LastReply), g.Tasks, next, usageCell(g.Today), usageCell(g.Month))
	}
	tw.Flush()
	m.printSpend(r, cfg.Budget)
	if len(r.Tasks) > 0 {
		fmt.Fprintln(out, "\nNEXT TASKS")
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, t := range r.Tasks {
			next := "-"
			if t.NextRun != nil {
				next = at(*t.NextRun)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.ID, t.Folder, next, oneLine(t.LastResult, 60))
		}
		tw.Flush()
	}
	m.printEvents("RECENT ERRORS", r.Errors, at)
	m.printEvents("REFUSED DESTINATIONS", r.Denials, at)
	if len(r.Approvals) > 0 {
		fmt.Fprintln(out, "\nEGRESS QUESTIONS TO THE OWNER (newest first)")
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, a := range r.Approvals {
			answer := "waiting"
			if a.DecidedAt != nil {
				answer = a.Decision + " at " + at(*a.DecidedAt)
				if a.DecidedBy != "" {
					answer += " by " + oneLine(a.DecidedBy, 80)
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", at(a.AskedAt), a.Folder, oneLine(a.Target, 80), a.Code, answer)
		}
		tw.Flush()
	}
	if len(r.Groups) == 1 && r.Trace != nil {
		if len(r.Trace) == 0 {
			fmt.Fprintf(out, "\nTRACE OF %s\n  nothing yet: no message reached this group since the trace began\n", r.Groups[0].Folder)
		}
		m.printEvents("TRACE OF "+r.Groups[0].Folder+" (oldest first)", r.Trace, at)
	}
}

func (m *Main) printEvents(title string, evs []status.Event, at func(time.Time) string) {
	if len(evs) == 0 {
		return
	}
	fmt.Fprintf(m.Stdout, "\n%s\n", title)
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	for _, e := range evs {
		where := e.Folder
		if e.Chat != "" {
			where += " " + oneLine(e.Chat, 40)
		}
		if e.Seq > 0 {
			where += fmt.Sprintf(" #%d", e.Seq)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", at(e.At), where, e.Kind, oneLine(e.Detail, 160))
	}
	tw.Flush()
}

// writeJSON prints v as indented JSON for a terminal or a script. Beyond
// what encoding/json escapes, the C1 controls (U+0080–U+009F, which some
// terminals obey like escape sequences) are written as \u escapes: the
// report carries chat and model text (R10).
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeRawJSON(w, b)
}

// writeRawJSON prints the JSON text b as writeJSON does.
func writeRawJSON(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := io.WriteString(w, escapeC1(out.String()))
	return err
}

// escapeC1 writes the C1 controls of JSON text as \u escapes.
func escapeC1(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 && r <= 0x9f }) {
		return s
	}
	var out strings.Builder
	for _, r := range s {
		if r >= 0x80 && r <= 0x9f {
			fmt.Fprintf(&out, "\\u%04x", r)
		} else {
			out.WriteRune(r)
		}
	}
	return out.String()
}

// usageCell is "requests / input / output", short.
func usageCell(u status.Usage) string {
	return fmt.Sprintf("%d / %s / %s", u.Requests, short(u.InputTokens), short(u.OutputTokens))
}

func short(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
