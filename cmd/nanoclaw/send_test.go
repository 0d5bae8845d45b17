package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/control/controltest"
)

// runWith calls the CLI in-process against the control socket in home, with
// in as stdin. Not for parallel tests: stdin is a package variable.
func runWith(t *testing.T, home string, in io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	old := stdin
	stdin = in
	defer func() { stdin = old }()
	userHome := t.TempDir()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		switch k {
		case "HOME":
			return userHome
		case "NANOCLAW_HOME":
			return home
		}
		return ""
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = m.Run(ctx, args)
	return code, out.String(), errb.String()
}

func TestSendWithoutWait(t *testing.T) {
	d := controltest.Start(t)
	code, out, errOut := runWith(t, d.Home, strings.NewReader(""), "send", "hello", "world")
	if code != cli.ExitOK || out != "" || !strings.Contains(errOut, "stored in local:main as message 1") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	msgs := d.Router.Messages()
	if len(msgs) != 1 || msgs[0].Text != "hello world" || msgs[0].ChatJID != "local:main" || msgs[0].SenderName != local.DefaultSender() {
		t.Errorf("stored %+v", msgs)
	}
}

func TestSendWait(t *testing.T) {
	cases := []struct {
		args   []string
		stdin  string
		stdout string
		chat   string
		text   string
		sender string
	}{
		{[]string{"send", "--wait", "hello"}, "", "Andy: echo hello\n", "local:main", "hello", local.DefaultSender()},
		{[]string{"send", "--wait=30s", "--group", "work", "--sender", "Bob B", "@Andy", "hi"}, "", "Andy: echo @Andy hi\n", "local:work", "@Andy hi", "Bob B"},
		{[]string{"send", "--wait", "-"}, "  twice from stdin\n", "Andy: echo twice from stdin\nAndy: and again\n", "local:main", "twice from stdin", local.DefaultSender()},
		{[]string{"send", "--wait"}, "from stdin\n", "Andy: echo from stdin\n", "local:main", "from stdin", local.DefaultSender()},
		{[]string{"send", "--wait", "--", "-x"}, "", "Andy: echo -x\n", "local:main", "-x", local.DefaultSender()},
		{[]string{"send", "--wait=1m", "5m"}, "", "Andy: echo 5m\n", "local:main", "5m", local.DefaultSender()},
	}
	for _, tc := range cases {
		d := controltest.Start(t)
		code, out, errOut := runWith(t, d.Home, strings.NewReader(tc.stdin), tc.args...)
		if code != cli.ExitOK || out != tc.stdout {
			t.Errorf("%q: exit %d stdout %q stderr %q, want stdout %q", tc.args, code, out, errOut, tc.stdout)
			continue
		}
		m := d.Router.Messages()[0]
		if m.ChatJID != tc.chat || m.Text != tc.text || m.SenderName != tc.sender {
			t.Errorf("%q: stored %+v", tc.args, m)
		}
	}
}

func TestSendWaitNotTriggered(t *testing.T) {
	d := controltest.Start(t)
	code, out, errOut := runWith(t, d.Home, nil, "send", "--group", "work", "--wait", "just saying")
	if code != cli.ExitOK || out != "" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "stored; it does not start with @Andy, so no reply — it will be part of the next catch-up") {
		t.Errorf("stderr %q", errOut)
	}
	// The same note without --wait.
	code, _, errOut = runWith(t, d.Home, nil, "send", "--group", "work", "again")
	if code != cli.ExitOK || !strings.Contains(errOut, "does not start with @Andy") {
		t.Errorf("without --wait: exit %d stderr %q", code, errOut)
	}
}

func TestSendWaitFailures(t *testing.T) {
	d := controltest.Start(t)
	code, out, errOut := runWith(t, d.Home, nil, "send", "--wait", "please", "fail")
	if code != cli.ExitFailure || out != "" || !strings.Contains(errOut, "nanoclaw send: no answer: "+controltest.RunError) {
		t.Errorf("failed run: exit %d stdout %q stderr %q", code, out, errOut)
	}
	start := time.Now()
	code, _, errOut = runWith(t, d.Home, nil, "send", "--wait=300ms", "hang")
	if code != cli.ExitFailure || !strings.Contains(errOut, "no complete answer within 300ms; the message is stored") {
		t.Errorf("timeout: exit %d stderr %q", code, errOut)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("--wait=300ms took %s", time.Since(start))
	}
	code, _, errOut = runWith(t, d.Home, nil, "send", "reject", "me")
	if code != cli.ExitFailure || !strings.Contains(errOut, "database is locked") {
		t.Errorf("store failure: exit %d stderr %q", code, errOut)
	}
}

func TestSendUsageErrors(t *testing.T) {
	d := controltest.Start(t)
	cases := []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"send", "--group", "Bad", "x"}, "", "--group: invalid group folder"},
		{[]string{"send", "--group", "global", "x"}, "", "reserved"},
		{[]string{"send", "--sender", "a\nb", "x"}, "", "--sender: "},
		{[]string{"send", "--wait=0s", "x"}, "", "must be positive"},
		{[]string{"send", "--wait=soon", "x"}, "", "want a duration"},
		{[]string{"send", "--wait", "30s", "hi"}, "", "write --wait=30s"},
		{[]string{"send"}, "  \n", "no message"},
		{[]string{"send", "-"}, "", "no message"},
		{[]string{"send"}, strings.Repeat("x", local.MaxTextBytes+1), "at most 65536"},
		{[]string{"send", "bad \xff"}, "", "UTF-8"},
		{[]string{"send", "--bogus", "x"}, "", "flag provided but not defined"},
	}
	for _, tc := range cases {
		code, out, errOut := runWith(t, d.Home, strings.NewReader(tc.stdin), tc.args...)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d stdout %q stderr %q, want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if n := len(d.Router.Messages()); n != 0 {
		t.Errorf("%d messages sent by wrong calls", n)
	}
}

func TestSendNotRunning(t *testing.T) {
	home, _ := os.MkdirTemp("", "nc")
	defer os.RemoveAll(home)
	for _, args := range [][]string{{"send", "hi"}, {"send", "--wait", "hi"}, {"chat"}} {
		code, _, errOut := runWith(t, home, strings.NewReader("hi\n"), args...)
		want := "nanoclaw " + args[0] + ": nanoclaw is not running (no control socket at " + home + "/control.sock): start it with 'nanoclaw run'\n"
		if code != cli.ExitFailure || errOut != want {
			t.Errorf("%q: exit %d stderr %q\nwant %q", args, code, errOut, want)
		}
	}
}

func TestOptionalDurationFlag(t *testing.T) {
	f := &optionalDuration{def: time.Minute}
	if f.set || f.String() != "" {
		t.Error("zero value is set")
	}
	for _, tc := range []struct {
		v   string
		set bool
		d   time.Duration
	}{{"true", true, time.Minute}, {"90s", true, 90 * time.Second}, {"false", false, 0}} {
		if err := f.Set(tc.v); err != nil || f.set != tc.set || f.d != tc.d {
			t.Errorf("Set(%q): %v, set %v d %v", tc.v, err, f.set, f.d)
		}
	}
	if !f.IsBoolFlag() {
		t.Error("a bare --wait needs IsBoolFlag")
	}
}

func TestSendRetryWithID(t *testing.T) {
	d := controltest.Start(t)
	code, _, errOut := runWith(t, d.Home, nil, "send", "--id", "job-7", "hello")
	if code != cli.ExitOK || !strings.Contains(errOut, "stored in local:main as message 1") {
		t.Fatalf("first: exit %d stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"send", "--id", "job-7", "hello"}, {"send", "--id", "job-7", "--wait", "hello"}} {
		code, out, errOut := runWith(t, d.Home, nil, args...)
		if code != cli.ExitOK || out != "" || !strings.Contains(errOut, "already stored: local:main has a message with id job-7, so nothing new was stored") {
			t.Errorf("%q: exit %d stdout %q stderr %q", args, code, out, errOut)
		}
	}
	if msgs := d.Router.Messages(); len(msgs) != 1 || msgs[0].ID != "job-7" {
		t.Errorf("stored %+v", msgs)
	}
	code, _, errOut = runWith(t, d.Home, nil, "send", "--id", "no spaces", "hello")
	if code != cli.ExitUsage || !strings.Contains(errOut, "--id: message id") {
		t.Errorf("bad id: exit %d stderr %q", code, errOut)
	}
}

func TestSendToUnregisteredGroup(t *testing.T) {
	d := controltest.Start(t)
	for _, args := range [][]string{{"send", "--group", "unknown1", "hi"}, {"send", "--group", "unknown1", "--wait", "@Andy hi"}} {
		code, out, errOut := runWith(t, d.Home, nil, args...)
		want := `nanoclaw send: local:unknown1 is not a registered group, so the message was not stored: register the group "unknown1" first`
		if code != cli.ExitFailure || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("%q: exit %d stdout %q stderr %q", args, code, out, errOut)
		}
	}
}

// R10: a reply that carries an OSC 52 clipboard write, a screen clear and a
// carriage-return overwrite reaches the terminal as plain text.
func TestSendWaitStripsEscapeSequences(t *testing.T) {
	d := controltest.Start(t)
	text := "look \x1b]52;c;cm0gLXJmIH4K\x07here \x1b[2J\x1b[31mred\x1b[0m\rfake \u202Eevil"
	code, out, errOut := runWith(t, d.Home, nil, "send", "--wait", text)
	if code != cli.ExitOK {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	if d.Router.Messages()[0].Text != text {
		t.Errorf("the message itself was changed: %q", d.Router.Messages()[0].Text)
	}
	if want := "Andy: echo look here redfake evil\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
}
