package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

func TestProgramDispatch(t *testing.T) {
	var ran []string
	p := &Program[*[]string]{Name: "prog", Intro: "prog — a test.", Synopsis: "<command>", Commands: []Command[*[]string]{
		{Name: "hello", Summary: "say hello", Run: func(m *[]string, _ context.Context, args []string) error {
			fs := FlagSet("prog hello", "", "Say hello.")
			if err := Parse(fs, args, io.Discard, io.Discard); err != nil {
				return err
			}
			*m = append(*m, "hello")
			return nil
		}},
		{Name: "fail", Summary: "fail", Run: func(*[]string, context.Context, []string) error { return errors.New("boom") }},
	}}
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, ExitUsage, "", "Usage: prog <command>"},
		{[]string{"nope"}, ExitUsage, "", `prog: unknown command "nope"`},
		{[]string{"help"}, ExitOK, "  hello    say hello", ""},
		{[]string{"help", "hello"}, ExitOK, "", ""},
		{[]string{"hello"}, ExitOK, "", ""},
		{[]string{"fail"}, ExitFailure, "", "prog fail: boom"},
	} {
		var out, errb strings.Builder
		code := p.Dispatch(&ran, context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errb.String())
		}
	}
	if len(ran) != 1 {
		t.Errorf("hello ran %d times, want once (help hello only prints its help)", len(ran))
	}
	p.Exit = func(w io.Writer, cmd string, err error) int { return 7 }
	if code := p.Dispatch(&ran, context.Background(), []string{"fail"}, io.Discard, io.Discard); code != 7 {
		t.Errorf("custom Exit: %d", code)
	}
}
