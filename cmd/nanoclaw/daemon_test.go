package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nanoclaw-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nanoclaw")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nanoclaw:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running `nanoclaw run` whose JSON log lines are collected.
type daemonProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	done  chan error
}

// homeEnv is a clean environment with its own HOME, data home and config dir.
func homeEnv(t *testing.T) (env []string, home string) {
	home = t.TempDir()
	return []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"TZ=UTC",
	}, home
}

func startDaemon(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: exec.Command(binary, append([]string{"run"}, args...)...), done: make(chan error, 1)}
	d.cmd.Env = env
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			d.mu.Lock()
			d.raw.WriteString(sc.Text() + "\n")
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				d.lines = append(d.lines, rec)
			}
			d.mu.Unlock()
		}
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() { d.cmd.Process.Kill() })
	return d
}

// waitLog waits for a log record with the given message.
func (d *daemonProc) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		for _, rec := range d.lines {
			if rec["msg"] == msg {
				d.mu.Unlock()
				return rec
			}
		}
		d.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	t.Fatalf("no log %q within 20s; stderr so far:\n%s", msg, d.raw.String())
	return nil
}

// wait waits for the daemon to exit and returns its exit code and stderr.
func (d *daemonProc) wait(t *testing.T) (int, string) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not exit within 20s")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.ProcessState.ExitCode(), d.raw.String()
}

func TestDaemonStartsAndStopsCleanly(t *testing.T) {
	env, home := homeEnv(t)
	d := startDaemon(t, env)
	rec := d.waitLog(t, "nanoclaw running")
	if rec["encrypted"] != false {
		t.Errorf("no key file, yet encrypted=%v", rec["encrypted"])
	}
	data := filepath.Join(home, ".nanoclaw")
	for _, sub := range []string{"", "groups", "sessions", "ipc", "store", "logs"} {
		info, err := os.Stat(filepath.Join(data, sub))
		if err != nil {
			t.Fatalf("data dir %q: %v", sub, err)
		}
		if info.Mode().Perm() != 0o700 {
			t.Errorf("data dir %q has mode %v, want 0700", sub, info.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(data, "store", "nanoclaw.db")); err != nil {
		t.Errorf("database not created: %v", err)
	}

	// A second daemon on the same data home would answer everything twice.
	second := startDaemon(t, env)
	code, out := second.wait(t)
	if code != cli.ExitFailure || !strings.Contains(out, "already running") {
		t.Errorf("second daemon: exit %d, stderr %q", code, out)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	if code, out := d.wait(t); code != cli.ExitOK {
		t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, out)
	}
}

func TestDaemonEncryptedDatabaseNeedsItsKey(t *testing.T) {
	env, home := homeEnv(t)
	confDir := filepath.Join(home, ".config", "nanoclaw")
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(confDir, "db.key")
	key := strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, env)
	if rec := d.waitLog(t, "nanoclaw running"); rec["encrypted"] != true {
		t.Fatalf("key file present, yet encrypted=%v", rec["encrypted"])
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait(t)

	db, err := os.ReadFile(filepath.Join(home, ".nanoclaw", "store", "nanoclaw.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte("SQLite format 3")) || bytes.Contains(db, []byte("CREATE TABLE")) {
		t.Error("encrypted database file shows plaintext SQLite structures")
	}

	cases := []struct {
		name  string
		setup func()
		want  string
	}{
		{"wrong key", func() { os.WriteFile(keyFile, []byte(strings.Repeat("cd", 32)), 0o600) }, "wrong key"},
		{"no key", func() { os.Remove(keyFile) }, "wrong key"},
		{"malformed key", func() { os.WriteFile(keyFile, []byte("not-hex"), 0o600) }, "database key " + keyFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			code, out := startDaemon(t, env).wait(t)
			if code != cli.ExitFailure || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 mentioning %q", code, out, tc.want)
			}
		})
	}
	// The failed attempts must not have damaged the database.
	os.WriteFile(keyFile, []byte(key), 0o600)
	d = startDaemon(t, env)
	d.waitLog(t, "nanoclaw running")
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code, out := d.wait(t); code != cli.ExitOK {
		t.Errorf("reopen with the right key: exit %d\n%s", code, out)
	}
}

func TestDaemonExplicitKeyFileMustExist(t *testing.T) {
	env, home := homeEnv(t)
	env = append(env, "NANOCLAW_DB_KEY_FILE="+filepath.Join(home, "missing.key"))
	code, out := startDaemon(t, env).wait(t)
	if code != cli.ExitFailure || !strings.Contains(out, "missing.key does not exist") {
		t.Errorf("exit %d, stderr %q", code, out)
	}
}

func TestLogsAreJSONWhenNotATerminal(t *testing.T) {
	env, _ := homeEnv(t)
	d := startDaemon(t, append(env, "LOG_LEVEL=debug"))
	d.waitLog(t, "nanoclaw running")
	d.cmd.Process.Signal(syscall.SIGTERM)
	_, out := d.wait(t)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr line is not JSON: %q", line)
		}
	}
}

// Containers a killed earlier run of this host left behind are removed at
// the next start; another host's are not.
func TestDaemonRemovesLeftoverContainers(t *testing.T) {
	for _, name := range []string{"podman", "docker"} {
		t.Run(name, func(t *testing.T) {
			bin := testenv.Runtime(t, name)
			env, home := homeEnv(t)
			env = append(env, "NANOCLAW_RUNTIME="+name)
			mine := &sandbox.Runtime{Kind: sandbox.Kind(name), Bin: bin,
				Instance: daemon.Instance(&config.Config{Home: filepath.Join(home, ".nanoclaw")})}
			other := &sandbox.Runtime{Kind: sandbox.Kind(name), Bin: bin, Instance: "someoneelse"}
			leftover := leftoverContainer(t, mine, "family")
			foreign := leftoverContainer(t, other, "family")

			d := startDaemon(t, env)
			d.waitLog(t, "nanoclaw running")
			d.cmd.Process.Signal(syscall.SIGTERM)
			d.wait(t)
			ctx := context.Background()
			if left, _ := mine.List(ctx, "nanoclaw-"); slices.Contains(left, leftover) {
				t.Errorf("leftover %s still runs after a restart", leftover)
			}
			if left, _ := other.List(ctx, "nanoclaw-"); !slices.Contains(left, foreign) {
				t.Errorf("another host's container %s was removed", foreign)
			}
		})
	}
}

// leftoverContainer starts a sleeping container as a host would, then kills
// the host's side of it, as a crash would.
func leftoverContainer(t *testing.T, rt *sandbox.Runtime, folder string) string {
	t.Helper()
	name, _ := sandbox.ContainerName(folder, time.Now())
	cmd, err := rt.Command(context.Background(), sandbox.Spec{
		Name: name, Image: testenv.BaseImage, User: testenv.ContainerUser(),
		MemoryMB: 64, CPUs: 0.5, PidsLimit: 16, Cmd: []string{"sleep", "300"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Stop(context.Background(), name, time.Second)
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if names, _ := rt.List(context.Background(), "nanoclaw-"+folder+"-"); slices.Contains(names, name) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not start", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if names, _ := rt.List(context.Background(), "nanoclaw-"+folder+"-"); !slices.Contains(names, name) {
		t.Fatalf("container %s did not outlive its host side; the test would prove nothing", name)
	}
	return name
}
