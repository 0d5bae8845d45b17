package main

import (
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/cli"
)

func TestSelftestCommandLine(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{[]string{"selftest", "--help"}, cli.ExitOK, "test/debug", ""},
		{[]string{"selftest", "--host-addr", "not-an-ip"}, cli.ExitUsage, "", "not an IP address"},
		{[]string{"selftest", "--host-addr", "fe80::1%eth0"}, cli.ExitUsage, "", "not an IP address"},
		{[]string{"selftest", "--listen", "0.0.0.0:3128"}, cli.ExitUsage, "", "loopback"},
		{[]string{"selftest", "stray"}, cli.ExitUsage, "", "unexpected argument"},
	}
	for _, c := range cases {
		code, out, errOut := runMain(c.args...)
		if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errOut, c.inErr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.args, code, out, errOut, c.code, c.out, c.inErr)
		}
	}
}

// Run on this host, outside any container (no gateway socket, a writable
// directory where the root should be): the report is printed and the
// command fails.
func TestSelftestOnTheHostFails(t *testing.T) {
	code, out, errOut := runMain("selftest", "--socket", t.TempDir()+"/none.sock", "--walk-root", t.TempDir(), "--read-only-dir", t.TempDir())
	if code != cli.ExitFailure || !strings.Contains(out, `"findings"`) || !strings.Contains(errOut, "findings failed") {
		t.Errorf("exit %d, stdout %.200q, stderr %q; want exit %d with the report and a failure", code, out, errOut, cli.ExitFailure)
	}
}
