package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
		{nil, exitUsage, "", "Commands:"},
		{[]string{"help"}, exitOK, "Commands:", ""},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"version"}, exitOK, "nanoclaw-agent dev", ""},
		{[]string{"version", "extra"}, exitUsage, "", "unexpected argument"},
		{[]string{"run", "--help"}, exitOK, "test/debug", ""},
		{[]string{"run", "--session", "--resume"}, exitUsage, "", "not a session id"},
		{[]string{"run", "--session", "../../etc"}, exitUsage, "", "not a session id"},
		{[]string{"run", "--listen", "0.0.0.0:3128"}, exitUsage, "", "loopback"},
		{[]string{"run", "--idle", "0s"}, exitUsage, "", "idle"},
		{[]string{"run", "--log-level", "loud"}, exitUsage, "", "--log-level"},
		{[]string{"run", "stray"}, exitUsage, "", "unexpected argument"},
		{[]string{"mcp", "--help"}, exitOK, "MCP", ""},
		{[]string{"mcp", "--bogus"}, exitUsage, "", "bogus"},
	}
	for _, c := range cases {
		code, out, errOut := runMain(c.args...)
		if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errOut, c.inErr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.args, code, out, errOut, c.code, c.out, c.inErr)
		}
	}
}
