// Command nanoclaw-agent runs inside each agent container, next to Claude
// Code. It is bind-mounted read-only from the host at every run, so host and
// agent are always the same build. It holds no credential: everything it needs
// from outside goes through the group's gateway socket.
//
// Its stdout and stderr carry only its own logs (JSON on stderr); Claude
// Code's output is read from pipes and never mixed in.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/incontainer"
)

// exitNoSession is the exit code when run --session named a session Claude
// Code does not have; the host should start a new one. The others are cli's.
const exitNoSession = 3

// Main holds what every command shares (tests substitute all of it).
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// commands is the table of contents.
var commands = []cli.Command[*Main]{
	{Name: "run", Summary: "drive Claude Code for the group: prompts from the host, results back", Run: (*Main).runRun},
	{Name: "mcp", Summary: "serve the nanoclaw MCP tools on stdin/stdout (started by Claude Code)", Run: (*Main).runMCP},
	{Name: "hook", Summary: "run a Claude Code hook (precompact: archive the transcript; started by Claude Code)", Run: (*Main).runHook},
	{Name: "selftest", Summary: "probe the container's boundary from inside (started by nanoclaw doctor --sandbox)", Run: (*Main).runSelftest},
	{Name: "version", Summary: "print the version", Run: (*Main).runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	code := m.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Run dispatches to a subcommand and turns its error into an exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	return program.Dispatch(m, ctx, args, m.Stdout, m.Stderr)
}

var program = cli.Program[*Main]{
	Name:     "nanoclaw-agent",
	Intro:    "nanoclaw-agent — the in-container side of nanoclaw.",
	Synopsis: "<command> [options]",
	Commands: commands,
	Exit: func(w io.Writer, cmd string, err error) int {
		if errors.Is(err, incontainer.ErrSessionNotFound) {
			fmt.Fprintf(w, "%s: %v\n", cmd, err)
			return exitNoSession
		}
		return cli.Exit(w, cmd, err)
	},
}

// flagSet makes a subcommand's flag set (cli.FlagSet).
func (m *Main) flagSet(name, usage, help string) *flag.FlagSet {
	return cli.FlagSet("nanoclaw-agent "+name, usage, help)
}

// parse parses a subcommand's flags (cli.Parse); none of this binary's
// commands takes an argument.
func (m *Main) parse(fs *flag.FlagSet, args []string) error {
	if err := cli.Parse(fs, args, m.Stdout, m.Stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// logger logs JSON to stderr at the given level.
func (m *Main) logger(level string, cmd string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: l})).With("cmd", "nanoclaw-agent "+cmd), nil
}
