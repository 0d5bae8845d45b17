package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/incontainer"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

const hookHelp = `Run one of Claude Code's hooks (Claude Code starts this; see
incontainer.HookSettings). The only hook is precompact: it reads Claude Code's
PreCompact payload (JSON) on stdin and archives the session's transcript as
Markdown in <group folder>/conversations/<date>-<slug>.md.

The transcript is read only from inside CLAUDE_CONFIG_DIR (default
/home/agent/.claude); the group folder is NANOCLAW_GROUP_DIR (default
/workspace/group), which the run sets and a host-side test may set.

It never exits 2, which would block the compaction: a failure is reported on
stderr with exit status 1, and Claude Code compacts anyway.`

// stdin is the hook's input (tests substitute it).
var stdin io.Reader = os.Stdin

func (m *Main) runHook(ctx context.Context, args []string) error {
	fs := m.flagSet("hook", "precompact", hookHelp)
	if len(args) == 0 || args[0] != "precompact" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return m.parse(fs, args)
		}
		// Not a usage error: exit 2 from a hook blocks what it hooks.
		return fmt.Errorf("want the hook name precompact, got %q", args)
	}
	if err := m.parse(fs, args[1:]); err != nil {
		var ue cli.UsageError
		if errors.As(err, &ue) {
			return errors.New(ue.Msg)
		}
		return err
	}
	b, err := io.ReadAll(io.LimitReader(stdin, incontainer.MaxHookPayloadBytes+1))
	if err != nil {
		return fmt.Errorf("reading the hook payload: %w", err)
	}
	p, err := incontainer.ParseHookPayload(b)
	if err != nil {
		return err
	}
	claudeDir := cmp.Or(m.Getenv("CLAUDE_CONFIG_DIR"), ipc.ContainerClaudeDir)
	groupDir := cmp.Or(m.Getenv(incontainer.EnvGroupDir), ipc.ContainerGroupDir)
	path, err := incontainer.Archive(p, claudeDir, groupDir, time.Now())
	if err != nil {
		return err
	}
	// Claude Code shows a hook's stdout only in verbose transcripts; this
	// line is for whoever reads them.
	fmt.Fprintf(m.Stdout, "transcript archived to %s\n", path)
	return nil
}
