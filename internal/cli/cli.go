// Package cli is the scaffold both nanoclaw binaries share: their
// subcommand table, flag sets whose --help prints to stdout, usage errors
// and the exit codes errors map to.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2 // the command was called wrongly
)

// UsageError is a mistake in how a command was called (ExitUsage).
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef makes a UsageError.
func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }

// Command is one subcommand of a binary whose shared state is M: its name,
// its one-line summary and how it runs.
type Command[M any] struct {
	Name, Summary string
	Run           func(m M, ctx context.Context, args []string) error
}

// FlagSet makes the flag set of the command cmd ("nanoclaw groups"). Its
// usage is "Usage: cmd usage", the help text, and the options if it has any.
func FlagSet(cmd, usage, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s %s\n\n%s\n", cmd, usage, help)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nOptions:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// Parse parses a command's flags: --help prints its usage on stdout and
// returns flag.ErrHelp, which Exit counts as success; a bad flag is a
// UsageError. Afterwards fs writes to stderr.
func Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return flag.ErrHelp
	}
	fs.SetOutput(stderr)
	if err != nil {
		return UsageError{err.Error()}
	}
	return nil
}

// Exit says on w how the command cmd ended and returns its exit code:
// ExitOK for nil and flag.ErrHelp (the help was printed), ExitUsage for a
// UsageError, ExitFailure for any other error.
func Exit(w io.Writer, cmd string, err error) int {
	var ue UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(w, "%s: %v\nRun '%s --help' for usage.\n", cmd, err, cmd)
		return ExitUsage
	}
	// R10: an error may carry the agent's or a chat's text.
	fmt.Fprintf(w, "%s: %s\n", cmd, sanitize.Terminal(err.Error()))
	return ExitFailure
}

// Program is a binary's table of contents: what its usage says around the
// list of Commands, and how a command's error becomes an exit code (Exit
// when nil).
type Program[M any] struct {
	Name     string // the binary, "nanoclaw"
	Intro    string // the usage's first line
	Synopsis string // after "Usage: Name ", e.g. "<command> [arguments]"
	Outro    string // after the command list
	Commands []Command[M]
	Exit     func(w io.Writer, cmd string, err error) int
}

// Usage prints the program's usage: intro, synopsis, commands, outro.
func (p *Program[M]) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage: %s %s\n\nCommands:\n", p.Intro, p.Name, p.Synopsis)
	for _, c := range p.Commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's options.\n%s", p.Name, p.Outro)
}

// Dispatch runs the command args[0] names with the rest of args and returns
// the exit code. No command, or an unknown one, prints the usage on stderr
// (ExitUsage); "help" (or -h, --help) prints it on stdout, and "help CMD"
// is "CMD --help".
func (p *Program[M]) Dispatch(m M, ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		p.Usage(stderr)
		return ExitUsage
	}
	switch name := args[0]; name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			return p.Dispatch(m, ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		p.Usage(stdout)
		return ExitOK
	}
	for _, c := range p.Commands {
		if c.Name == args[0] {
			exit := p.Exit
			if exit == nil {
				exit = Exit
			}
			return exit(stderr, p.Name+" "+c.Name, c.Run(m, ctx, args[1:]))
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
	p.Usage(stderr)
	return ExitUsage
}
