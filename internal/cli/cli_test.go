package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestExit(t *testing.T) {
	cases := []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, ExitOK, ""},
		{flag.ErrHelp, ExitOK, ""},
		{fmt.Errorf("wrapped: %w", Usagef("unexpected argument %q", "x")), ExitUsage,
			"nanoclaw send: wrapped: unexpected argument \"x\"\nRun 'nanoclaw send --help' for usage.\n"},
		{errors.New("database is locked"), ExitFailure, "nanoclaw send: database is locked\n"},
		// R10: errors, which may carry the agent's or a chat's text, are
		// printed without their control characters.
		{errors.New("the agent failed: \x1b]0;owned\x07ok\x1b[1A\u009b2J"), ExitFailure, "nanoclaw send: the agent failed: ok\n"},
	}
	for _, tc := range cases {
		var errb bytes.Buffer
		if code := Exit(&errb, "nanoclaw send", tc.err); code != tc.code || errb.String() != tc.stderr {
			t.Errorf("Exit(%v) = %d, stderr %q; want %d, %q", tc.err, code, errb.String(), tc.code, tc.stderr)
		}
	}
}

func TestParse(t *testing.T) {
	var stdout, stderr bytes.Buffer
	newFS := func() *flag.FlagSet {
		fs := FlagSet("nanoclaw chat", "[--group FOLDER]", "Chat in this terminal.")
		fs.String("group", "main", "the group")
		return fs
	}
	if err := Parse(newFS(), []string{"--help"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	if out := stdout.String(); !strings.HasPrefix(out, "Usage: nanoclaw chat [--group FOLDER]\n\nChat in this terminal.\n\nOptions:\n") || stderr.Len() != 0 {
		t.Errorf("--help wrote stdout %q, stderr %q", out, stderr.String())
	}
	var ue UsageError
	if err := Parse(newFS(), []string{"--bogus"}, &stdout, &stderr); !errors.As(err, &ue) || !strings.Contains(err.Error(), "-bogus") {
		t.Errorf("a bad flag: %v, want a UsageError", err)
	}
	fs := newFS()
	if err := Parse(fs, []string{"--group", "family", "rest"}, &stdout, &stderr); err != nil || fs.Arg(0) != "rest" {
		t.Errorf("Parse = %v, args %q", err, fs.Args())
	}
}
