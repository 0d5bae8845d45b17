package incontainer

// The subreaper's clean-up, in processes of their own: the test binary is
// started again (TestMain dispatches on envReaperRole) so that the test
// process itself is never made a subreaper nor has its children killed.
//
//	subreaper     (becomeSubreaper; runs KillStrays, reports)
//	└─ claude     (the fake Claude Code; kept)
//	   ├─ mcp     (its MCP server; kept)
//	   └─ launch  (a Bash call: starts two detached processes, exits)
//	      ├─ daemon (setsid; like agent-browser's daemon) └─ sleeper (like Chromium)
//	      └─ quick  (setsid; exits on its own: a zombie to reap)

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"time"
)

const (
	envReaperRole = "NANOCLAW_TEST_REAPER_ROLE"
	envReaperDir  = "NANOCLAW_TEST_REAPER_DIR"
	envReaperOff  = "NANOCLAW_TEST_REAPER_OFF" // the subreaper skips KillStrays: proves the test can fail
)

// reaperReport is what the subreaper helper finds, for the test to judge.
type reaperReport struct {
	Subreaper    int               `json:"subreaper"`
	Pids         map[string]int    `json:"pids"`          // role → pid
	Starts       map[string]uint64 `json:"starts"`        // role → start time, before the clean-up
	DaemonParent int               `json:"daemon_parent"` // the detached daemon's parent before the clean-up
	Killed       []string          `json:"killed"`
	Err          string            `json:"err"`
	After        map[string]string `json:"after"` // role → "gone", "zombie" or "alive" after the clean-up
}

func TestKillStraysEndsWhatDetachedAndKeepsClaudeCode(t *testing.T) {
	report := runReaperHelper(t, false)
	if report.DaemonParent != report.Subreaper {
		t.Fatalf("the detached daemon's parent is %d, not the subreaper %d: it was not reparented", report.DaemonParent, report.Subreaper)
	}
	if report.Err != "" {
		t.Errorf("KillStrays: %s", report.Err)
	}
	want := map[string]string{"claude": "alive", "mcp": "alive", "daemon": "gone", "sleeper": "gone", "quick": "gone"}
	for role, w := range want {
		if got := report.After[role]; got != w {
			t.Errorf("%s (pid %d) after the clean-up: %s, want %s", role, report.Pids[role], got, w)
		}
	}
	// The daemon and its child were killed; quick had exited and was only reaped.
	if len(report.Killed) != 2 {
		t.Errorf("killed %q, want the daemon and the sleeper", report.Killed)
	}
}

// The same tree without the clean-up keeps the detached processes: the
// test above can fail.
func TestKillStraysHelperWithoutCleanUpLeavesThem(t *testing.T) {
	report := runReaperHelper(t, true)
	for _, role := range []string{"daemon", "sleeper"} {
		if got := report.After[role]; got != "alive" {
			t.Errorf("%s without the clean-up: %s, want alive", role, got)
		}
	}
	if got := report.After["quick"]; got != "zombie" {
		t.Errorf("quick without the clean-up: %s, want zombie", got)
	}
}

func TestStrayNames(t *testing.T) {
	names := []string{"chromium", "agent-browser", "chromium", "chromium", ""}
	if got, want := strayNames(names), "chromium ×3, agent-browser, ?"; got != want {
		t.Errorf("strayNames = %q, want %q", got, want)
	}
	var many []string
	for i := range 13 {
		many = append(many, "p"+strconv.Itoa(i))
	}
	if got, want := strayNames(many), "p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, and 3 more names"; got != want {
		t.Errorf("strayNames = %q, want %q", got, want)
	}
}

func TestReadProcSelf(t *testing.T) {
	p, err := readProc(os.Getpid())
	if err != nil || p.ppid != os.Getppid() || p.state == 'Z' || p.start == 0 {
		t.Fatalf("readProc(self) = %+v, %v", p, err)
	}
}

// runReaperHelper runs the subreaper helper and returns its report; off
// disables the clean-up. Whatever it leaves is killed at the end.
func runReaperHelper(t *testing.T, off bool) reaperReport {
	t.Helper()
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{envReaperRole + "=subreaper", envReaperDir + "=" + dir}
	if off {
		cmd.Env = append(cmd.Env, envReaperOff+"=1")
	}
	// A file, not a pipe: what the helpers leave running holds it open.
	logf, err := os.Create(filepath.Join(dir, "helpers.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Run()
	var report reaperReport
	b, rerr := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil || rerr != nil || json.Unmarshal(b, &report) != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("subreaper helper: %v, report %v %q\n%s", err, rerr, b, out)
	}
	t.Cleanup(func() {
		for role, pid := range report.Pids {
			if start, ok := report.Starts[role]; ok {
				killSame(proc{pid: pid, start: start})
			}
		}
	})
	return report
}

// reaperHelper is one role of the tree above; it returns the exit code.
func reaperHelper(role string) int {
	dir := os.Getenv(envReaperDir)
	if err := reaperRole(role, dir); err != nil {
		fmt.Fprintf(os.Stderr, "reaper helper %s: %v\n", role, err)
		return 1
	}
	return 0
}

func reaperRole(role, dir string) error {
	if role != "subreaper" {
		if err := writePid(dir, role); err != nil {
			return err
		}
	}
	switch role {
	case "subreaper":
		return subreaperRole(dir)
	case "claude":
		if _, err := startRole(dir, "mcp", false); err != nil {
			return err
		}
		launch, err := startRole(dir, "launch", false)
		if err != nil {
			return err
		}
		if err := launch.Wait(); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
			return err
		}
		time.Sleep(time.Minute)
	case "launch":
		// Neither is waited for: like `agent-browser open` and `cmd &`.
		if _, err := startRole(dir, "daemon", true); err != nil {
			return err
		}
		if _, err := startRole(dir, "quick", true); err != nil {
			return err
		}
		if _, err := waitPids(dir, "daemon", "sleeper", "quick"); err != nil {
			return err
		}
	case "daemon":
		if _, err := startRole(dir, "sleeper", false); err != nil {
			return err
		}
		time.Sleep(time.Minute)
	case "mcp", "sleeper":
		time.Sleep(time.Minute) // bounded, should a test leave it behind
	case "quick":
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	return nil
}

func subreaperRole(dir string) error {
	report := reaperReport{Subreaper: os.Getpid(), After: map[string]string{}}
	if err := becomeSubreaper(); err != nil {
		return err
	}
	claude, err := startRole(dir, "claude", true)
	if err != nil {
		return err
	}
	defer syscall.Kill(-claude.Process.Pid, syscall.SIGKILL)
	if err := waitFile(filepath.Join(dir, "ready")); err != nil {
		return err
	}
	if report.Pids, err = waitPids(dir, "claude", "mcp", "launch", "daemon", "sleeper", "quick"); err != nil {
		return err
	}
	// quick exits at once; wait until it is dead, so that the clean-up has
	// a zombie to reap rather than a process to kill.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if p, err := readProc(report.Pids["quick"]); err != nil || p.state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("quick did not exit")
		}
	}
	report.Starts = map[string]uint64{}
	for role, pid := range report.Pids {
		if p, err := readProc(pid); err == nil {
			report.Starts[role] = p.start
		}
	}
	if p, err := readProc(report.Pids["daemon"]); err == nil {
		report.DaemonParent = p.ppid
	}
	if os.Getenv(envReaperOff) == "" {
		report.Killed, err = KillStrays(claude.Process.Pid, StrayBound)
		if err != nil {
			report.Err = err.Error()
		}
	}
	for role, pid := range report.Pids {
		switch p, err := readProc(pid); {
		case err != nil:
			report.After[role] = "gone"
		case p.state == 'Z':
			report.After[role] = "zombie"
		default:
			report.After[role] = "alive"
		}
	}
	b, err := json.Marshal(report)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), b, 0o600)
}

// startRole starts this binary as role; detached puts it in a session of
// its own, as a daemon does.
func startRole(dir, role string, detached bool) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = []string{envReaperRole + "=" + role, envReaperDir + "=" + dir}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: detached}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	return cmd, nil
}

func writePid(dir, role string) error {
	name := filepath.Join(dir, role+".pid")
	if err := os.WriteFile(name+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}

func waitFile(name string) error {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(name); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear", name)
		}
	}
}

func waitPids(dir string, roles ...string) (map[string]int, error) {
	pids := map[string]int{}
	for _, role := range roles {
		name := filepath.Join(dir, role+".pid")
		if err := waitFile(name); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if pids[role], err = strconv.Atoi(string(b)); err != nil {
			return nil, err
		}
	}
	return pids, nil
}

// detachTree starts, from the fake Claude Code, a launcher that leaves the
// daemon (with its sleeper) and quick running detached and exits; it
// returns once all have written their pids into dir.
func detachTree(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	launch, err := startRole(dir, "launch", false)
	if err != nil {
		return err
	}
	return launch.Wait()
}

// envRunConfig carries a Config (JSON) to runHelper: a Run as the
// container's agent, a subreaper, in a process of its own.
const envRunConfig = "NANOCLAW_TEST_RUN_CONFIG"

func runHelper(config string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "run helper:", err)
		return 2
	}
	cfg.Subreaper = true
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "run helper:", err)
		return 1
	}
	return 0
}

// A turn that leaves processes running detached: once its answer is
// posted they are killed and reaped, Claude Code is kept and answers the
// next prompt, and the run logs what it killed.
func TestRunKillsWhatATurnLeftRunning(t *testing.T) {
	h := newHarness(t, nil)
	cfg := h.cfg
	cfg.Logger = nil
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// Queued before the run starts, which also orders the harness's
	// writes before the gateway's reads for the race detector.
	h.gw.Prompt("p1", "detach")
	cmd := exec.Command(self)
	cmd.Env = []string{envRunConfig + "=" + string(b)}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("the run did not end after SIGTERM")
		}
	})
	runLog := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	if o := h.output(t); o.Result != "detached" || o.IsError {
		t.Fatalf("output %+v\n%s", o, runLog())
	}
	dir := filepath.Join(h.cfg.WorkDir, "reaper")
	pids, err := waitPids(dir, "daemon", "sleeper", "quick")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left := 0
		for _, pid := range pids {
			if _, err := readProc(pid); err == nil {
				left++ // running, or dead and not reaped
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the detached processes %v still in /proc after the turn\n%s", left, pids, runLog())
		}
	}
	h.gw.Prompt("p2", "hello")
	if o := h.output(t); o.Result != "echo hello #2" {
		t.Errorf("output %+v; want the same Claude Code's second answer", o)
	}
	recs := h.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d Claude Code processes, want 1", len(recs))
	}
	if p, err := readProc(recs[0].PID); err != nil || p.state == 'Z' || p.ppid != cmd.Process.Pid {
		t.Errorf("Claude Code (pid %d) after the clean-up: %+v, %v", recs[0].PID, p, err)
	}
	h.gw.Send(ipc.Input{Kind: ipc.InputClose})
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("run: %v\n%s", err, runLog())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run did not end after close")
	}
	var found bool
	for line := range strings.Lines(runLog()) {
		var rec struct {
			Msg       string `json:"msg"`
			After     string `json:"after"`
			Processes int    `json:"processes"`
			Names     string `json:"names"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "killed what the run left running" {
			found = true
			if rec.After != "turn" || rec.Processes != 2 || rec.Names != "incontainer.tes ×2" {
				t.Errorf("clean-up logged %+v; want after=turn processes=2 names=incontainer.tes ×2", rec)
			}
		}
	}
	if !found {
		t.Errorf("no clean-up logged:\n%s", runLog())
	}
}

// Without the subreaper (nothing detached comes back to Run) a process
// Claude Code left holding its stderr cannot keep Run from ending.
func TestRunEndsThoughALeftProcessHoldsClaudesOutput(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.gw.Prompt("p1", "detach")
	if o := h.output(t); o.Result != "detached" {
		t.Fatalf("output %+v", o)
	}
	pids, err := waitPids(filepath.Join(h.cfg.WorkDir, "reaper"), "daemon", "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if p, err := readProc(pid); err == nil {
			t.Cleanup(func() { killSame(p) })
		}
	}
	start := time.Now()
	if err := h.resultAfterClose(t, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < releaseBound || d > releaseBound+5*time.Second {
		t.Errorf("Run ended %v after close; want about releaseBound (%v): the daemon holds the output", d, releaseBound)
	}
}
