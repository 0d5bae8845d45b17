package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/cli"
)

// run calls the CLI in-process with a clean environment rooted at a temp HOME.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	home := t.TempDir()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return env[k]
	}}
	code = m.Run(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, _ := run(t, nil, args...)
		if code != cli.ExitOK {
			t.Errorf("%v: exit %d, want 0", args, code)
		}
		for _, name := range []string{"run", "setup", "pair", "chat", "send", "groups", "tasks", "status", "doctor", "image", "version"} {
			if !strings.Contains(out, "\n  "+name+" ") {
				t.Errorf("%v: help does not list %q:\n%s", args, name, out)
			}
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands {
		code, out, errOut := run(t, nil, c.Name, "--help")
		if code != cli.ExitOK || !strings.Contains(out, "Usage: nanoclaw "+c.Name) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.Name, code, out, errOut)
		}
		if errOut != "" {
			t.Errorf("%s --help wrote to stderr: %q", c.Name, errOut)
		}
	}
	code, out, _ := run(t, nil, "help", "run")
	if code != cli.ExitOK || !strings.Contains(out, "--print-config") {
		t.Errorf("help run: exit %d, %q", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args    []string
		code    int
		stderr  string
		nothing bool // nothing on stdout
	}{
		{nil, cli.ExitUsage, "Usage: nanoclaw", true},
		{[]string{"frobnicate"}, cli.ExitUsage, `unknown command "frobnicate"`, true},
		{[]string{"--bogus"}, cli.ExitUsage, "flag provided but not defined", true},
		{[]string{"--log-level", "loud", "version"}, cli.ExitUsage, "unknown log level", true},
		{[]string{"run", "--bogus"}, cli.ExitUsage, "nanoclaw run: flag provided but not defined: -bogus", true},
		{[]string{"run", "extra"}, cli.ExitUsage, `unexpected argument "extra"`, true},
		{[]string{"version", "x"}, cli.ExitUsage, `unexpected argument "x"`, true},
		{[]string{"chat"}, cli.ExitFailure, "nanoclaw chat: nanoclaw is not running", true},
		{[]string{"doctor", "x"}, cli.ExitUsage, `unexpected argument "x"`, true},
		{[]string{"status"}, cli.ExitFailure, "nanoclaw status: nanoclaw has not run with data home", true},
		{[]string{"setup", "x"}, cli.ExitUsage, `unexpected argument "x"`, true},
		{[]string{"version"}, cli.ExitOK, "", false},
	}
	for _, tc := range cases {
		code, out, errOut := run(t, nil, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut)
		}
		if !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%v: stderr %q, want it to contain %q", tc.args, errOut, tc.stderr)
		}
		if tc.nothing && out != "" {
			t.Errorf("%v: stdout should be empty, got %q", tc.args, out)
		}
	}
}

func TestVersionPrintsToStdout(t *testing.T) {
	code, out, errOut := run(t, nil, "version")
	if code != cli.ExitOK || !strings.HasPrefix(out, "nanoclaw ") || errOut != "" {
		t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestPrintConfigMasksSecrets(t *testing.T) {
	env := map[string]string{
		"ANTHROPIC_API_KEY":       "sk-ant-api03-TOPSECRETVALUE",
		"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-OTHERSECRET",
		"ASSISTANT_NAME":          "Jarvis",
		"TZ":                      "America/New_York",
	}
	code, out, errOut := run(t, env, "run", "--print-config")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, "TOPSECRET") || strings.Contains(out+errOut, "OTHERSECRET") {
		t.Fatalf("secret printed:\n%s", out)
	}
	for _, want := range []string{
		"ANTHROPIC_API_KEY=(set, 27 characters)",
		"CLAUDE_CODE_OAUTH_TOKEN=(set, 24 characters)",
		"ASSISTANT_NAME=Jarvis",
		"# ASSISTANT_NAME from environment",
		"TZ=America/New_York",
		"MAX_CONCURRENT_CONTAINERS=3",
		"# MAX_CONCURRENT_CONTAINERS from default",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("print-config lacks %q:\n%s", want, out)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	code, _, errOut := run(t, map[string]string{"MAX_CONCURRENT_CONTAINERS": "many"}, "run", "--print-config")
	if code != cli.ExitFailure || !strings.Contains(errOut, "MAX_CONCURRENT_CONTAINERS (from environment)") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
