package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
)

// runWithHome calls the CLI in-process with HOME set to home.
func runWithHome(t *testing.T, home string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	code = m.Run(context.Background(), args)
	return code, out.String(), errb.String()
}

// withPairNetwork sends the pair command's WhatsApp connections to addr.
func withPairNetwork(t *testing.T, addr string) {
	t.Helper()
	var d net.Dialer
	pairHTTPClient = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
	}}
	t.Cleanup(func() { pairHTTPClient = nil })
}

func TestPairUsageErrors(t *testing.T) {
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"pair"}, "name the channel to pair"},
		{[]string{"pair", "signal"}, `cannot pair "signal": pair 'whatsapp' or 'telegram'`},
		{[]string{"pair", "telegram", "extra"}, `unexpected argument "extra"`},
		{[]string{"pair", "telegram", "--phone", "+14155550123"}, "--phone is for WhatsApp"},
		{[]string{"pair", "whatsapp", "--token-file", "t"}, "--token-file is for Telegram"},
		{[]string{"pair", "whatsapp", "extra"}, `unexpected argument "extra"`},
		{[]string{"pair", "whatsapp", "--phone", "12ab"}, `--phone: phone number "12ab": unexpected 'a'`},
		{[]string{"pair", "whatsapp", "--phone", "0151 1234567"}, "starts with 0"},
		{[]string{"pair", "--phone", "+1234", "whatsapp"}, "4 digits"},
		{[]string{"pair", "whatsapp", "--timeout", "-1s"}, "--timeout must be positive"},
		{[]string{"pair", "whatsapp", "--timeout", "soon"}, "invalid value"},
		{[]string{"pair", "whatsapp", "--bogus"}, "flag provided but not defined: -bogus"},
	}
	for _, tc := range cases {
		code, out, errOut := run(t, nil, tc.args...)
		if code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, cli.ExitUsage, errOut)
		}
		if !strings.Contains(errOut, tc.stderr) || !strings.Contains(errOut, "nanoclaw pair --help") {
			t.Errorf("%v: stderr %q, want it to contain %q and the help hint", tc.args, errOut, tc.stderr)
		}
		if out != "" {
			t.Errorf("%v: stdout %q", tc.args, out)
		}
	}
	code, out, _ := run(t, nil, "pair", "whatsapp", "--help")
	if code != cli.ExitOK || !strings.Contains(out, "Usage: nanoclaw pair whatsapp") || !strings.Contains(out, "-phone") {
		t.Errorf("pair whatsapp --help: exit %d, %q", code, out)
	}
}

// Without network the command fails with a clear message, within its
// timeout, whether connections are refused or silently dropped.
func TestPairFailsWithoutNetwork(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()

	dropped, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16)
	defer func() {
		dropped.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	}()
	go func() {
		for {
			c, err := dropped.Accept()
			if err != nil {
				return
			}
			held <- c // never answered
		}
	}()

	for _, tc := range []struct {
		name, addr string
		args       []string
		stderr     string
	}{
		{"refused", refusedAddr, []string{"pair", "whatsapp"}, "connection refused"},
		{"dropped", dropped.Addr().String(), []string{"pair", "whatsapp", "--timeout", "1s"}, "no answer within 1s"},
		{"dropped, phone code", dropped.Addr().String(), []string{"pair", "whatsapp", "--phone", "+14155550123", "--timeout", "1s"}, "no answer within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withPairNetwork(t, tc.addr)
			start := time.Now()
			code, out, errOut := runWithHome(t, t.TempDir(), tc.args...)
			took := time.Since(start)
			if code != cli.ExitFailure {
				t.Errorf("exit %d, want %d", code, cli.ExitFailure)
			}
			if !strings.Contains(errOut, "nanoclaw pair: cannot reach WhatsApp") || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr %q, want 'cannot reach WhatsApp' and %q", errOut, tc.stderr)
			}
			if !strings.Contains(errOut, "Connecting to WhatsApp") {
				t.Errorf("no progress shown: %q", errOut)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			if took > 6*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// The real thing, on a machine that cannot resolve WhatsApp's servers (such
// as this project's CI): the real dialer, the real DNS failure.
func TestPairFailsWithoutNetworkForReal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, "web.whatsapp.com"); err == nil {
		t.Skip("SKIP: this machine can resolve web.whatsapp.com; the no-network test needs a machine that cannot")
	}
	start := time.Now()
	code, _, errOut := runWithHome(t, t.TempDir(), "pair", "whatsapp", "--timeout", "5s")
	if code != cli.ExitFailure || !strings.Contains(errOut, "cannot reach WhatsApp") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s with --timeout 5s", took)
	}
}

// The daemon uses the same WhatsApp session: pairing refuses to run beside it.
func TestPairRefusesWhileDaemonRuns(t *testing.T) {
	env, home := homeEnv(t)
	d := startDaemon(t, env)
	d.waitLog(t, "nanoclaw running")
	withPairNetwork(t, "127.0.0.1:1") // must not be reached
	code, _, errOut := runWithHome(t, home, "pair", "whatsapp")
	if code != cli.ExitFailure || !strings.Contains(errOut, "nanoclaw is running") || !strings.Contains(errOut, "stop it first") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(errOut, "Connecting") {
		t.Errorf("pairing started beside the daemon: %q", errOut)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code, out := d.wait(t); code != cli.ExitOK {
		t.Errorf("daemon exit %d:\n%s", code, out)
	}
}
