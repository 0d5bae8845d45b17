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
	"strings"
	"syscall"

	"github.com/nanoclaw/nanoclaw/internal/agentrun"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitNoSession: run --session named a session Claude Code does not
	// have; the host should start a new one.
	exitNoSession = 3
)

// usageError marks a mistake in how the command was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Main holds what every command shares (tests substitute all of it).
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// command is one subcommand: its one-line summary and how it runs.
type command struct {
	name, summary string
	run           func(m *Main, ctx context.Context, args []string) error
}

// commands is the table of contents.
var commands = []command{
	{"run", "drive Claude Code for the group: prompts from the host, results back", (*Main).runRun},
	{"mcp", "serve the nanoclaw MCP tools on stdin/stdout (started by Claude Code)", (*Main).runMCP},
	{"hook", "run a Claude Code hook (precompact: archive the transcript; started by Claude Code)", (*Main).runHook},
	{"version", "print the version", (*Main).runVersion},
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
	if len(args) == 0 {
		m.usage(m.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		m.usage(m.Stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return m.exit(name, c.run(m, ctx, args[1:]))
		}
	}
	fmt.Fprintf(m.Stderr, "nanoclaw-agent: unknown command %q\n\n", name)
	m.usage(m.Stderr)
	return exitUsage
}

func (m *Main) exit(name string, err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, agentrun.ErrSessionNotFound):
		fmt.Fprintf(m.Stderr, "nanoclaw-agent %s: %v\n", name, err)
		return exitNoSession
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "nanoclaw-agent %s: %v\nRun 'nanoclaw-agent %s --help' for usage.\n", name, err, name)
		return exitUsage
	default:
		fmt.Fprintf(m.Stderr, "nanoclaw-agent %s: %v\n", name, err)
		return exitFailure
	}
}

func (m *Main) usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("nanoclaw-agent — the in-container side of nanoclaw.\n\nUsage: nanoclaw-agent <command> [options]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'nanoclaw-agent <command> --help' for a command's options.\n")
	io.WriteString(w, b.String())
}

// flagSet makes a subcommand's flag set.
func (m *Main) flagSet(name, usage, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: nanoclaw-agent %s %s\n\n%s\n", name, usage, help)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nOptions:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses a subcommand's flags: --help goes to stdout and ends the
// command successfully; a bad flag or a stray argument is a usage error.
func (m *Main) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(m.Stdout)
		fs.Usage()
		return flag.ErrHelp
	}
	fs.SetOutput(m.Stderr)
	if err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// logger logs JSON to stderr at the given level.
func (m *Main) logger(level string, cmd string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	return slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: l})).With("cmd", "nanoclaw-agent "+cmd), nil
}
