// Command nanoclaw is the host: it connects to the chat channels, keeps the
// store, and runs Claude Code for each group inside its own hardened container.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // schedules need IANA zones even on hosts without tzdata

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/config"
)

// usagef is cli.Usagef, short for the many places that say how a command
// was called wrongly.
var usagef = cli.Usagef

// Main holds what every command shares: where output goes and how the
// environment is read (tests substitute both).
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Logger         *slog.Logger

	level         slog.LevelVar
	levelFromFlag bool // --log-level given: it beats the config file's LOG_LEVEL
}

// commands is the table of contents of the CLI.
var commands = []cli.Command[*Main]{
	{Name: "run", Summary: "run the assistant (the daemon, in the foreground)", Run: (*Main).runDaemon},
	{Name: "setup", Summary: "set up from nothing: machine, credential, image, WhatsApp, service, proof", Run: (*Main).runSetup},
	{Name: "pair", Summary: "pair a chat channel (WhatsApp)", Run: (*Main).runPair},
	{Name: "chat", Summary: "chat with the assistant in this terminal", Run: (*Main).runChat},
	{Name: "send", Summary: "send one message to a group, optionally wait for the reply", Run: (*Main).runSend},
	{Name: "groups", Summary: "list, add, remove and configure groups", Run: (*Main).runGroups},
	{Name: "tasks", Summary: "list and manage scheduled tasks", Run: (*Main).runTasks},
	{Name: "status", Summary: "show what the daemon is doing, and why a group did or did not reply", Run: (*Main).runStatus},
	{Name: "usage", Summary: "show model usage and its cost per group and day", Run: (*Main).runUsage},
	{Name: "doctor", Summary: "check the installation and say what to fix (--sandbox: prove the boundary)", Run: (*Main).runDoctor},
	{Name: "service", Summary: "install, start, stop or remove the background service", Run: (*Main).runService},
	{Name: "image", Summary: "build the agent container image", Run: (*Main).runImage},
	{Name: "logs", Summary: "show or follow the daemon's log, or a group's latest run log", Run: (*Main).runLogs},
	{Name: "mounts", Summary: "check the mount allowlist and print verdicts", Run: (*Main).runMounts},
	{Name: "version", Summary: "print the version", Run: (*Main).runVersion},
}

func main() {
	// R21: whatever a command creates (a database's -wal file while the
	// daemon is down, a key, a log) is private unless it says otherwise.
	syscall.Umask(0o077)
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
			return cli.ExitOK
		}
		fmt.Fprintf(m.Stderr, "nanoclaw: %v\n\n", err)
		m.usage(m.Stderr)
		return cli.ExitUsage
	}
	lvl, err := config.ParseLevel(cmp.Or(*logLevel, m.Getenv("LOG_LEVEL")))
	if err != nil {
		fmt.Fprintf(m.Stderr, "nanoclaw: --log-level: %v\n", err)
		return cli.ExitUsage
	}
	m.level.Set(lvl)
	m.levelFromFlag = *logLevel != ""
	m.Logger = newLogger(m.Stderr, &m.level)

	return program.Dispatch(m, ctx, fs.Args(), m.Stdout, m.Stderr)
}

var program = cli.Program[*Main]{
	Name:     "nanoclaw",
	Intro:    "nanoclaw — a personal assistant that runs Claude Code for each chat group in its own sandbox.",
	Synopsis: "[--log-level LEVEL] <command> [arguments]",
	Outro:    "Settings come from the environment or ~/.config/nanoclaw/config; see 'nanoclaw run --help'.\n",
	Commands: commands,
}

func (m *Main) usage(w io.Writer) { program.Usage(w) }

// useConfig applies what the config says to this command's logging: its
// LOG_LEVEL, unless --log-level was given, and its warnings.
func (m *Main) useConfig(cfg *config.Config) {
	if !m.levelFromFlag {
		m.level.Set(cfg.LogLevel) // LOG_LEVEL may come from the config file
	}
	for _, w := range cfg.Warnings {
		m.Logger.Warn(w)
	}
}

// flagSet makes a subcommand's flag set (cli.FlagSet).
func (m *Main) flagSet(name, usage, help string) *flag.FlagSet {
	return cli.FlagSet("nanoclaw "+name, usage, help)
}

// parse parses a subcommand's flags with this Main's output (cli.Parse).
func (m *Main) parse(fs *flag.FlagSet, args []string) error {
	return cli.Parse(fs, args, m.Stdout, m.Stderr)
}

// parseNoArgs parses the flags of a command that takes no arguments.
func (m *Main) parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// loadConfig loads the configuration and applies it to this command's
// logging (useConfig).
func (m *Main) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(m.Getenv)
	if err == nil {
		m.useConfig(cfg)
	}
	return cfg, err
}

// newLogger logs to stderr: readable text on a terminal, JSON otherwise (for
// journald and log collectors). stdout is kept for command output alone.
func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
