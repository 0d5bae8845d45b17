package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
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
	return runWithEnv(t, home, nil, in, args...)
}

// runWithEnv is runWith with settings in the environment.
func runWithEnv(t *testing.T, home string, env map[string]string, in io.Reader, args ...string) (code int, stdout, stderr string) {
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
		return env[k]
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

// png is the start of a PNG file, enough for the daemon to know it as one.
var png = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 32)...)

// writeFile writes data to a new file name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendFile(t *testing.T) {
	d := controltest.Start(t)
	dir := t.TempDir()
	cat, notes := writeFile(t, dir, "cat.png", png), writeFile(t, dir, "notes.txt", []byte("milk\n"))

	code, out, errOut := runWith(t, d.Home, nil, "send", "--wait", "--file", cat, "--caption", "look at her", "--reply-to", "earlier-1")
	if code != cli.ExitOK || out != "Andy: echo look at her\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	m := d.Router.Messages()[0]
	if m.Text != "look at her" || m.ReplyTo != "earlier-1" || len(m.Attachments) != 1 {
		t.Fatalf("stored %+v", m)
	}
	if a := m.Attachments[0]; a.Kind != "image" || a.MIME != "image/png" || a.FileName != "cat.png" || a.Size != int64(len(png)) {
		t.Errorf("attachment %+v", a)
	}
	if want := "stored in local:main as message 1 (id " + m.ID + ")\n"; errOut != want {
		t.Errorf("stderr %q, want %q: the id is what --reply-to names", errOut, want)
	}

	// Two files, no caption: stdin is not read for a text.
	code, _, errOut = runWith(t, d.Home, strings.NewReader("not the caption"), "send", "--file", cat, "--file", notes)
	if code != cli.ExitOK || !strings.Contains(errOut, "stored in local:main as message 2 (id ") {
		t.Fatalf("two files: exit %d stderr %q", code, errOut)
	}
	m = d.Router.Messages()[1]
	if m.Text != "" || len(m.Attachments) != 2 || m.Attachments[1].FileName != "notes.txt" || m.Attachments[1].Kind != "document" {
		t.Errorf("stored %+v", m)
	}
	// The arguments are the caption as well.
	code, _, errOut = runWith(t, d.Home, nil, "send", "--file", notes, "the", "list")
	if code != cli.ExitOK || d.Router.Messages()[2].Text != "the list" {
		t.Errorf("caption from arguments: exit %d stderr %q, stored %+v", code, errOut, d.Router.Messages()[2])
	}
}

func TestSendFileRefusals(t *testing.T) {
	d := controltest.Start(t)
	dir := t.TempDir()
	small := writeFile(t, dir, "small", make([]byte, 700))
	big := writeFile(t, dir, "big", make([]byte, 1025))
	empty := writeFile(t, dir, "empty", nil)
	unreadable := writeFile(t, dir, "secret", []byte("x"))
	os.Chmod(unreadable, 0)
	env := map[string]string{"MEDIA_MAX_BYTES": "1KiB"}
	eleven := []string{"send"}
	for range 11 {
		eleven = append(eleven, "--file", small)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"send", "--caption", "hi", "text"}, cli.ExitUsage, "--caption goes with --file"},
		{[]string{"send", "--file", small, "--caption", "hi", "text"}, cli.ExitUsage, "either with --caption or as arguments"},
		{[]string{"send", "--file", small, "--reply-to", "a b"}, cli.ExitUsage, "--reply-to: message id"},
		{[]string{"send", "--file", small, "--wait", "--save-dir", filepath.Join(dir, "nowhere")}, cli.ExitUsage, "--save-dir: stat"},
		{[]string{"send", "--file", small, "--wait", "--save-dir", small}, cli.ExitUsage, "is not a directory"},
		{[]string{"send", "--file", dir}, cli.ExitFailure, dir + " is a directory: attach the files in it one by one"},
		{[]string{"send", "--file", filepath.Join(dir, "missing")}, cli.ExitFailure, "no such file or directory"},
		{[]string{"send", "--file", empty}, cli.ExitFailure, empty + " is empty"},
		{[]string{"send", "--file", big}, cli.ExitFailure, big + " is 1025 bytes, more than MEDIA_MAX_BYTES (1024 bytes)"},
		{[]string{"send", "--file", small, "--file", small}, cli.ExitFailure, "is 700 bytes, more than the 324 bytes left of MEDIA_MAX_BYTES (1024 bytes for one message's files)"},
		{eleven, cli.ExitUsage, "11 files: at most 10"},
	}
	if os.Getuid() != 0 { // root reads it anyway
		cases = append(cases, struct {
			args []string
			code int
			want string
		}{[]string{"send", "--file", unreadable}, cli.ExitFailure, "permission denied"})
	}
	for _, tc := range cases {
		code, out, errOut := runWithEnv(t, d.Home, env, nil, tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d stdout %q stderr %q, want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	if n := len(d.Router.Messages()); n != 0 {
		t.Errorf("%d messages sent by refused calls", n)
	}
}

func TestSendWaitSavesFilesWithoutClobbering(t *testing.T) {
	d := controltest.Start(t)
	saveDir := t.TempDir()
	mine := writeFile(t, saveDir, savedPrefix+controltest.FileName, []byte("my own report"))
	for i, want := range []string{savedPrefix + "report (2).txt", savedPrefix + "report (3).txt"} {
		code, out, errOut := runWith(t, d.Home, nil, "send", "--wait", "--save-dir", saveDir, "react", "file")
		saved := filepath.Join(saveDir, want)
		wantOut := "Andy: echo react file\nAndy sent report.txt, saved as " + saved + "\n" + controltest.FileCaption + "\n"
		if code != cli.ExitOK || out != wantOut {
			t.Fatalf("send %d: exit %d stdout %q stderr %q\nwant stdout %q", i, code, out, errOut, wantOut)
		}
		id := d.Router.Messages()[i].ID
		for _, line := range []string{"· Andy reacted 👀 to " + id + "\n", "· Andy reacted ✅ to " + id + "\n"} {
			if !strings.Contains(errOut, line) {
				t.Errorf("send %d: stderr %q lacks %q", i, errOut, line)
			}
		}
		info, err := os.Stat(saved)
		if data, _ := os.ReadFile(saved); err != nil || string(data) != controltest.FileData || info.Mode().Perm() != 0o600 {
			t.Errorf("saved file %s: %v, %q", saved, err, data)
		}
	}
	if data, _ := os.ReadFile(mine); string(data) != "my own report" {
		t.Errorf("the file already there was overwritten: %q", data)
	}
}

// The saver copies only files directly in the daemon's files directory,
// whatever an event names, and nothing a link there leads to outside it.
func TestFileSaverCopiesOnlyFromTheFilesDirectory(t *testing.T) {
	from, to, outside := t.TempDir(), t.TempDir(), t.TempDir()
	secret := writeFile(t, outside, "id_ed25519", []byte("PRIVATE KEY"))
	os.Symlink(secret, filepath.Join(from, "abc-link.txt"))
	os.Mkdir(filepath.Join(from, "abc-dir"), 0o700)
	writeFile(t, from, "abc-big", make([]byte, 11))
	s := &fileSaver{dir: to, from: from, max: 10}
	for _, path := range []string{secret, filepath.Join(from, "..", filepath.Base(outside), "id_ed25519"), filepath.Join(from, "abc-link.txt"),
		filepath.Join(from, "abc-dir"), filepath.Join(from, "abc-big"), "relative"} {
		if got, err := s.save(local.Event{Type: local.EventFile, Name: "x.txt", Path: path}); err == nil {
			t.Errorf("saved %s as %s", path, got)
		}
	}
	if left, _ := os.ReadDir(to); len(left) != 0 {
		t.Errorf("left behind in the save directory: %v", left)
	}
	// A name the model chose is cleaned before it is used.
	writeFile(t, from, "abc-ok", []byte("fine"))
	got, err := s.save(local.Event{Type: local.EventFile, Name: "../.bashrc", Path: filepath.Join(from, "abc-ok")})
	if err != nil || got != filepath.Join(to, savedPrefix+"bashrc") {
		t.Errorf("save = %q, %v; want %s", got, err, filepath.Join(to, savedPrefix+"bashrc"))
	}
}
