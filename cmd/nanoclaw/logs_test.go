package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
)

// logsHome makes a data home whose logs directory holds the given files.
func logsHome(t *testing.T, files map[string]string) (home, logs string) {
	t.Helper()
	home = t.TempDir()
	logs = filepath.Join(home, ".nanoclaw", "logs")
	for name, content := range files {
		path := filepath.Join(logs, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home, logs
}

// localTime is how logs prints a record's time.
func localTime(t *testing.T, s string) string {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.Local().Format("2006-01-02 15:04:05.000")
}

const (
	lineStart  = `{"time":"2025-06-01T10:00:00.123Z","level":"INFO","msg":"nanoclaw running","home":"/h","encrypted":false}`
	lineFamily = `{"time":"2025-06-01T10:00:01Z","level":"WARN","msg":"agent run failed","group":"family","err":"exit status 1: \u001b]0;owned\u0007 said \"no\""}`
	lineWork   = `{"time":"2025-06-01T10:00:02Z","level":"INFO","msg":"agent started","group":"work","limits":{"memory_mb":512,"cpus":1.5}}`
	lineGroups = `{"time":"2025-06-01T10:00:03Z","level":"ERROR","msg":"send failed","chat":"x@s.whatsapp.net","group":"family","folder":"ignored"}`
	linePlain  = "panic: something \x1b[31mred\x1b[0m happened"
)

func TestLogsRendersAndFilters(t *testing.T) {
	home, _ := logsHome(t, map[string]string{
		"nanoclaw.log": strings.Join([]string{lineStart, lineFamily, lineWork, linePlain, lineGroups}, "\n") + "\n",
	})
	start := localTime(t, "2025-06-01T10:00:00.123Z")
	t1, t2, t3 := localTime(t, "2025-06-01T10:00:01Z"), localTime(t, "2025-06-01T10:00:02Z"), localTime(t, "2025-06-01T10:00:03Z")
	readableStart := start + " INFO  nanoclaw running home=/h encrypted=false"
	// The error's escape sequence arrives quoted, so it prints as text.
	readableFamily := t1 + ` WARN  agent run failed group=family err="exit status 1: \x1b]0;owned\a said \"no\""`
	readableWork := t2 + " INFO  agent started group=work limits.memory_mb=512 limits.cpus=1.5"
	readablePlain := "panic: something red happened" // a raw one is taken out
	readableGroups := t3 + " ERROR send failed chat=x@s.whatsapp.net group=family folder=ignored"

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"all", nil, []string{readableStart, readableFamily, readableWork, readablePlain, readableGroups}},
		{"last two", []string{"-n", "2"}, []string{readablePlain, readableGroups}},
		{"none", []string{"-n", "0"}, nil},
		{"one group", []string{"--group", "family"}, []string{readableFamily, readableGroups}},
		{"one group, last one", []string{"--group", "family", "-n", "1"}, []string{readableGroups}},
		{"a group with no lines", []string{"--group", "other"}, nil},
		{"as written", []string{"--json", "-n", "3"}, []string{lineWork, readablePlain, lineGroups}},
		{"as written, one group", []string{"--json", "--group", "work"}, []string{lineWork}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runWithHome(t, home, append([]string{"logs"}, tc.args...)...)
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want := strings.Join(tc.want, "\n")
			if want != "" {
				want += "\n"
			}
			if out != want {
				t.Errorf("printed\n%s\nwant\n%s", out, want)
			}
		})
	}
}

func TestLogsReachBackIntoRotatedFiles(t *testing.T) {
	home, _ := logsHome(t, map[string]string{
		"nanoclaw-2025-05-01T00-00-00.000.log": "oldest\n",
		"nanoclaw-2025-06-01T00-00-00.000.log": "older 1\nolder 2\nunended by a crash",
		"nanoclaw.log":                         "current\n",
		"family/20250601T100000.000Z-x.log":    "a run log is not the daemon's\n",
	})
	cases := []struct {
		n    string
		want string
	}{
		{"1", "current\n"},
		{"3", "older 2\nunended by a crash\ncurrent\n"},
		{"5", "oldest\nolder 1\nolder 2\nunended by a crash\ncurrent\n"},
		{"100", "oldest\nolder 1\nolder 2\nunended by a crash\ncurrent\n"},
	}
	for _, tc := range cases {
		code, out, errOut := runWithHome(t, home, "logs", "-n", tc.n)
		if code != cli.ExitOK || out != tc.want {
			t.Errorf("-n %s: exit %d, printed %q, want %q (%s)", tc.n, code, out, tc.want, errOut)
		}
	}
}

func TestLogsUsageAndMissingLog(t *testing.T) {
	home := t.TempDir()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"logs"}, cli.ExitFailure, "no daemon log at " + filepath.Join(home, ".nanoclaw", "logs", "nanoclaw.log") + ": the daemon writes it while it runs"},
		{[]string{"logs", "--group", "family", "--run"}, cli.ExitFailure, "no run log of group family in " + filepath.Join(home, ".nanoclaw", "logs", "family")},
		{[]string{"logs", "--run"}, cli.ExitUsage, "--run needs --group FOLDER"},
		{[]string{"logs", "-n", "-1"}, cli.ExitUsage, "-n -1: give the number of lines"},
		{[]string{"logs", "--group", "../etc"}, cli.ExitUsage, "invalid group folder"},
		{[]string{"logs", "extra"}, cli.ExitUsage, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		code, out, errOut := runWithHome(t, home, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d saying %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

func TestLogsRunPrintsTheNewestRunLogStripped(t *testing.T) {
	home, logs := logsHome(t, map[string]string{
		"family/20250601T100000.000Z-nanoclaw-family-1.log": "container nanoclaw-family-1\nolder run\n",
		"family/20250602T090000.000Z-nanoclaw-family-2.log": "container nanoclaw-family-2\n" +
			"the agent said \x1b]52;c;ZXZpbA==\a\x1b[2Jhello\x1b[0m\n" +
			`{"time":"2025-06-02T09:00:01Z","level":"INFO","msg":"claude started"}` + "\n",
		"work/20250603T000000.000Z-nanoclaw-work-1.log": "another group's\n",
	})
	// A link named as the newest run must not be followed out of the
	// group's log directory.
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("SECRET\n"), 0o600)
	if err := os.Symlink(secret, filepath.Join(logs, "family", "20250609T000000.000Z-nanoclaw-family-9.log")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runWithHome(t, home, "logs", "--group", "family", "--run")
	want := "container nanoclaw-family-2\nthe agent said hello\n" +
		localTime(t, "2025-06-02T09:00:01Z") + " INFO  claude started\n"
	if code != cli.ExitOK || out != want {
		t.Errorf("exit %d, printed %q, want %q (%s)", code, out, want, errOut)
	}
	if _, out, _ := runWithHome(t, home, "logs", "--group", "family", "--run", "-n", "1", "--json"); out != `{"time":"2025-06-02T09:00:01Z","level":"INFO","msg":"claude started"}`+"\n" {
		t.Errorf("-n 1 --json printed %q", out)
	}
}

// syncBuffer is a bytes.Buffer a following command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogsFollowAcrossARotation(t *testing.T) {
	home, logs := logsHome(t, map[string]string{"nanoclaw.log": "before\n"})
	logsPollInterval = time.Millisecond
	t.Cleanup(func() { logsPollInterval = 200 * time.Millisecond })
	path := filepath.Join(logs, "nanoclaw.log")
	appendLine := func(line string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(line + "\n")
		f.Close()
	}

	var out syncBuffer
	var errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"logs", "-f", "--group", "family"}) }()
	waitOut := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("printed %q, want %q", out.String(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitOut("") // "before" is no group's

	appendLine(`{"msg":"appended","group":"family"}`)
	appendLine(`{"msg":"not ours","group":"work"}`)
	waitOut("appended group=family\n")

	// The daemon's rotation: the file moves aside, a new one takes its name.
	appendLine(`{"msg":"last before the rotation","group":"family"}`)
	if err := os.Rename(path, filepath.Join(logs, "nanoclaw-2025-06-01T00-00-00.000.log")); err != nil {
		t.Fatal(err)
	}
	appendLine(`{"msg":"after the rotation","group":"family"}`)
	waitOut("appended group=family\nlast before the rotation group=family\nafter the rotation group=family\n")

	cancel()
	select {
	case code := <-done:
		if code != cli.ExitOK {
			t.Errorf("exit %d after Ctrl-C: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end with its context")
	}
}

// A real daemon writes its log file, private, and 'nanoclaw logs' reads it.
func TestDaemonWritesTheLogFile(t *testing.T) {
	env, home := homeEnv(t)
	d := startDaemon(t, env)
	d.waitLog(t, "nanoclaw running")
	path := filepath.Join(home, ".nanoclaw", "logs", "nanoclaw.log")
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code, out := d.wait(t); code != cli.ExitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"msg":"nanoclaw running"`, `"msg":"nanoclaw stopping"`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("the log file lacks %s:\n%s", want, data)
		}
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("the log file has mode %v, want 0600", info.Mode().Perm())
	}

	cmd := exec.Command(binary, "logs")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(" INFO  nanoclaw running home="+filepath.Join(home, ".nanoclaw"))) {
		t.Errorf("nanoclaw logs: %v\n%s", err, out)
	}
}
