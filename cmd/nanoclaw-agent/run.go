package main

import (
	"context"
	"os"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/incontainer"
)

const runHelp = `Run Claude Code for the group: take prompts from the host over the gateway
socket, keep Claude Code running between them, post each result back. Ends on
the host's close, after --idle without input, or on SIGTERM (exit 0); exits 3
when the --session to resume does not exist, and 1 when Claude Code dies or
the host cannot be reached.

Options marked test/debug move what is fixed inside the container
(/workspace/..., /home/agent, /tmp, 127.0.0.1:3128) so that the agent can be
run and tested on a host; the host never passes them.`

func (m *Main) runRun(ctx context.Context, args []string) error {
	cfg := incontainer.DefaultConfig()
	fs := m.flagSet("run", "[options]", runHelp)
	fs.StringVar(&cfg.SessionID, "session", "", "resume this Claude Code session")
	fs.StringVar(&cfg.Model, "model", "", "the Claude model to run (default: Claude Code's own)")
	fs.BoolVar(&cfg.Main, "main", false, "this is the main group (global memory is writable)")
	fs.BoolVar(&cfg.Browser, "browser", false, "the group runs on the browser image: tell agent-browser where Chromium and the proxy are")
	fs.StringVar(&cfg.Socket, "socket", cfg.Socket, "the gateway socket")
	fs.StringVar(&cfg.Claude, "claude", cfg.Claude, "the Claude Code program (a bare name is looked up in Claude Code's PATH)")
	fs.DurationVar(&cfg.Idle, "idle", cfg.Idle, "end after this long without input")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "test/debug: the forwarder's loopback address (port 0 picks one)")
	fs.StringVar(&cfg.WorkDir, "workdir", cfg.WorkDir, "test/debug: Claude Code's working directory")
	fs.StringVar(&cfg.GlobalDir, "global-dir", cfg.GlobalDir, "test/debug: the global memory folder")
	fs.StringVar(&cfg.Home, "home", cfg.Home, "test/debug: HOME for Claude Code")
	fs.StringVar(&cfg.ClaudeDir, "claude-dir", cfg.ClaudeDir, "test/debug: CLAUDE_CONFIG_DIR for Claude Code")
	fs.StringVar(&cfg.TempDir, "tmp", cfg.TempDir, "test/debug: where the MCP config is written")
	fs.StringVar(&cfg.Path, "path", cfg.Path, "test/debug: PATH for Claude Code")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	log, err := m.logger(*level, "run")
	if err != nil {
		return err
	}
	cfg.Logger = log
	cfg.TZ = m.Getenv("TZ")
	if self, err := os.Executable(); err == nil {
		cfg.Self = self
	}
	if err := cfg.Validate(); err != nil {
		return cli.UsageError{Msg: err.Error()}
	}
	return incontainer.Run(ctx, cfg)
}
