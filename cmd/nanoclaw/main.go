// Command nanoclaw is the host: it connects to the chat channels, keeps the
// store, and runs Claude Code for each group inside its own hardened container.
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
	_ "time/tzdata" // schedules need IANA zones even on hosts without tzdata

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks a mistake in how the command was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Main holds what every command shares: where output goes and how the
// environment is read (tests substitute both).
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Logger         *slog.Logger

	level         slog.LevelVar
	levelFromFlag bool // --log-level given: it beats the config file's LOG_LEVEL
}

// command is one subcommand: its one-line summary and how it runs.
type command struct {
	name, summary string
	run           func(m *Main, ctx context.Context, args []string) error
}

// commands is the table of contents of the CLI.
var commands = []command{
	{"run", "run the assistant (the daemon, in the foreground)", (*Main).runDaemon},
	{"setup", "first-time set-up: check the machine, build the agent image", notYet("setup")},
	{"pair", "pair a chat channel (WhatsApp)", (*Main).runPair},
	{"chat", "chat with the assistant in this terminal", (*Main).runChat},
	{"send", "send one message to a group, optionally wait for the reply", (*Main).runSend},
	{"groups", "list, add, remove and configure groups", (*Main).runGroups},
	{"tasks", "list and manage scheduled tasks", (*Main).runTasks},
	{"status", "show what the daemon is doing", notYet("status")},
	{"doctor", "check the installation and say what to fix", notYet("doctor")},
	{"image", "build the agent container image", (*Main).runImage},
	{"mounts", "check the mount allowlist and print verdicts", (*Main).runMounts},
	{"version", "print the version", (*Main).runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	code := m.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Run parses the global flags, dispatches to a subcommand and turns its error
// into an exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("nanoclaw", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (default $LOG_LEVEL or info)")
	fs.Usage = func() { m.usage(m.Stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			m.usage(m.Stdout)
			return exitOK
		}
		fmt.Fprintf(m.Stderr, "nanoclaw: %v\n\n", err)
		m.usage(m.Stderr)
		return exitUsage
	}
	level := *logLevel
	if level == "" {
		level = m.Getenv("LOG_LEVEL")
	}
	lvl, err := config.ParseLevel(level)
	if err != nil {
		fmt.Fprintf(m.Stderr, "nanoclaw: --log-level: %v\n", err)
		return exitUsage
	}
	m.level.Set(lvl)
	m.levelFromFlag = *logLevel != ""
	m.Logger = newLogger(m.Stderr, &m.level)

	rest := fs.Args()
	if len(rest) == 0 {
		m.usage(m.Stderr)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			return m.Run(ctx, []string{rest[1], "--help"})
		}
		m.usage(m.Stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == name {
			return m.exit(name, c.run(m, ctx, rest[1:]))
		}
	}
	fmt.Fprintf(m.Stderr, "nanoclaw: unknown command %q\n\n", name)
	m.usage(m.Stderr)
	return exitUsage
}

func (m *Main) exit(name string, err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "nanoclaw %s: %v\nRun 'nanoclaw %s --help' for usage.\n", name, err, name)
		return exitUsage
	default:
		// R10: an error may carry the agent's or a chat's text.
		fmt.Fprintf(m.Stderr, "nanoclaw %s: %s\n", name, sanitize.Terminal(err.Error()))
		return exitFailure
	}
}

func (m *Main) usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("nanoclaw — a personal assistant that runs Claude Code for each chat group in its own sandbox.\n\n")
	b.WriteString("Usage: nanoclaw [--log-level LEVEL] <command> [arguments]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'nanoclaw <command> --help' for a command's options.\n")
	b.WriteString("Settings come from the environment or ~/.config/nanoclaw/config; see 'nanoclaw run --help'.\n")
	io.WriteString(w, b.String())
}

// flagSet makes a subcommand's flag set whose --help prints to stdout.
func (m *Main) flagSet(name, usage, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: nanoclaw %s %s\n\n%s\n", name, usage, help)
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
// command successfully; a bad flag is a usage error.
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
	return nil
}

// notYet is the placeholder for a command whose work is still ahead.
func notYet(name string) func(*Main, context.Context, []string) error {
	return func(m *Main, _ context.Context, args []string) error {
		fs := m.flagSet(name, "", "This command is not yet available in this version of nanoclaw.")
		if err := m.parse(fs, args); err != nil {
			return err
		}
		return fmt.Errorf("not yet available in this version")
	}
}

// newLogger logs to stderr: readable text on a terminal, JSON otherwise (for
// journald and log collectors). stdout is kept for command output alone.
func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := w.(*os.File); ok {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
