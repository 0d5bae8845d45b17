package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/cli"
)

func runMain(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = m.Run(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{nil, cli.ExitUsage, "", "Commands:"},
		{[]string{"help"}, cli.ExitOK, "Commands:", ""},
		{[]string{"frobnicate"}, cli.ExitUsage, "", `unknown command "frobnicate"`},
		{[]string{"version"}, cli.ExitOK, "nanoclaw-agent dev", ""},
		{[]string{"version", "extra"}, cli.ExitUsage, "", "unexpected argument"},
		{[]string{"run", "--help"}, cli.ExitOK, "test/debug", ""},
		{[]string{"run", "--help"}, cli.ExitOK, "browser image", ""},
		{[]string{"run", "--browser=maybe"}, cli.ExitUsage, "", "browser"},
		{[]string{"run", "--session", "--resume"}, cli.ExitUsage, "", "not a session id"},
		{[]string{"run", "--session", "../../etc"}, cli.ExitUsage, "", "not a session id"},
		{[]string{"run", "--listen", "0.0.0.0:3128"}, cli.ExitUsage, "", "loopback"},
		{[]string{"run", "--idle", "0s"}, cli.ExitUsage, "", "idle"},
		{[]string{"run", "--log-level", "loud"}, cli.ExitUsage, "", "--log-level"},
		{[]string{"run", "stray"}, cli.ExitUsage, "", "unexpected argument"},
		{[]string{"mcp", "--help"}, cli.ExitOK, "MCP", ""},
		{[]string{"mcp", "--bogus"}, cli.ExitUsage, "", "bogus"},
	}
	for _, c := range cases {
		code, out, errOut := runMain(c.args...)
		if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errOut, c.inErr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.args, code, out, errOut, c.code, c.out, c.inErr)
		}
	}
}
