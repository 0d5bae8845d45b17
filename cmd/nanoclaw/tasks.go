package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

const tasksHelp = `List and manage scheduled tasks, with the owner's rights (every group's tasks).

  nanoclaw tasks list [--group FOLDER] [--all]   active and paused tasks (--all: also completed, cancelled)
  nanoclaw tasks show ID                         one task with its recent runs
  nanoclaw tasks pause ID | resume ID | cancel ID

It talks to the running daemon; when the daemon is down it reads and changes
the database directly (and says so).`

func (m *Main) runTasks(ctx context.Context, args []string) error {
	fs := m.flagSet("tasks", "list|show|pause|resume|cancel [ID] [options]", tasksHelp)
	group := fs.String("group", "", "list: only this group's tasks")
	all := fs.Bool("all", false, "list: include completed and cancelled tasks")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("which tasks command? list, show, pause, resume or cancel")
	}
	verb, rest := rest[0], rest[1:]
	// Flags may also follow the verb.
	if err := m.parse(fs, rest); err != nil {
		return err
	}
	rest = fs.Args()
	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		if len(rest) > 0 {
			return usagef("list takes no arguments, got %q", rest[0])
		}
		// R9: the daemon filters and bounds the list; nothing is filtered here.
		var list ipc.TaskList
		if err := m.ownerTool(ctx, cfg, "list_tasks", ipc.ListTasksArgs{Group: *group, All: *all}, &list); err != nil {
			return err
		}
		m.printTasks(list, cfg.Timezone)
		return nil
	case "show", "pause", "resume", "cancel":
		if len(rest) != 1 {
			return usagef("%s needs one task id", verb)
		}
		tool := map[string]string{"show": "get_task", "pause": "pause_task", "resume": "resume_task", "cancel": "cancel_task"}[verb]
		var t ipc.TaskInfo
		if err := m.ownerTool(ctx, cfg, tool, ipc.TaskIDArgs{TaskID: rest[0]}, &t); err != nil {
			return err
		}
		m.printTask(t, cfg.Timezone)
		return nil
	}
	return usagef("unknown tasks command %q (list, show, pause, resume, cancel)", verb)
}

// ownerTool runs a task or group tool with the owner's rights through the
// daemon, or on the database itself when the daemon is down — the same code
// either way (internal/tools).
func (m *Main) ownerTool(ctx context.Context, cfg *config.Config, tool string, args, out any) error {
	err := control.Dial(cfg.ControlSocket()).Tool(ctx, tool, args, out)
	var apiErr *control.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		return errors.New(apiErr.Message)
	case !errors.Is(err, control.ErrNotRunning):
		return err
	}
	fmt.Fprintln(m.Stderr, "note: nanoclaw is not running; using the database directly")
	if err := daemon.PrepareHome(cfg, m.Logger); err != nil {
		return err
	}
	unlock, err := daemon.LockHome(cfg)
	if err != nil {
		return fmt.Errorf("the daemon holds the data home but its control socket does not answer: %w", err)
	}
	defer unlock()
	st, err := daemon.OpenStore(ctx, cfg, m.Logger)
	if err != nil {
		return err
	}
	defer st.Close()
	raw, _ := json.Marshal(args)
	res, err := daemon.Tools(cfg, st, offline{}, nil, nil, m.Logger).OwnerCall(ctx, tool, raw)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	return json.Unmarshal(b, out)
}

// offline are the chats while the daemon is down: no channel is connected,
// so nothing is sent and no chat is current, but local chats can be
// registered.
type offline struct{}

func (offline) CurrentChat(string) string                    { return "" }
func (offline) Serves(chat string) bool                      { return strings.HasPrefix(chat, local.Prefix) }
func (offline) CheckSend(string) error                       { return nil }
func (offline) Deliver(context.Context, store.Outgoing) bool { return false }
func (offline) Refresh(context.Context)                      {}

func (m *Main) printTasks(list ipc.TaskList, loc *time.Location) {
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGROUP\tSTATUS\tSCHEDULE\tNEXT RUN\tPROMPT")
	for _, t := range list.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s\n", t.ID, t.Group, t.Status, t.ScheduleType, oneLine(t.ScheduleValue, 60),
			when(t.NextRun, loc), oneLine(t.Prompt, 50))
	}
	tw.Flush()
	switch {
	case len(list.Tasks) == 0:
		fmt.Fprintln(m.Stderr, "no tasks")
	case list.More > 0:
		fmt.Fprintf(m.Stderr, "and %d older tasks not shown (the newest %d are); use --group to see one group's\n", list.More, len(list.Tasks))
	}
}

func (m *Main) printTask(t ipc.TaskInfo, loc *time.Location) {
	fmt.Fprintf(m.Stdout, "id:        %s\ngroup:     %s\nstatus:    %s\nschedule:  %s %s (%s)\ncontext:   %s\nnext run:  %s\nlast run:  %s\nprompt:    %s\n",
		t.ID, t.Group, t.Status, t.ScheduleType, oneLine(t.ScheduleValue, 200), sanitize.Name(t.Timezone), t.ContextMode, when(t.NextRun, loc), when(t.LastRun, loc), sanitize.Terminal(t.Prompt))
	if t.LastResult != "" {
		fmt.Fprintf(m.Stdout, "last result: %s\n", oneLine(t.LastResult, 200))
	}
	for _, r := range t.Runs {
		fmt.Fprintf(m.Stdout, "  run %s  %-7s %6d ms  %s\n", r.StartedAt.In(loc).Format("2006-01-02 15:04:05"), r.Status, r.DurationMS, oneLine(cmp.Or(r.Error, r.Result), 80))
	}
}

func when(t *time.Time, loc *time.Location) string {
	if t == nil {
		return "-"
	}
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}

func oneLine(s string, n int) string {
	return sanitize.Clip(strings.Join(strings.Fields(sanitize.Terminal(s)), " "), n, "…") // R10: an agent wrote it
}
