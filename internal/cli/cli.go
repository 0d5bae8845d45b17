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
