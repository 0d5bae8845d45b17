package main

// End-to-end on the host, without a container: the nanoclaw-agent binary
// (built by the test) runs the REAL Claude Code as uid 1000 against a fake
// gateway on a unix socket, whose /v1/* is the scripted fake model. It
// skips (or fails, with NANOCLAW_E2E=required) without the Claude Code
// binary or root (needed to run as uid 1000, as the container does).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/fakegateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

var (
	buildOnce sync.Once
	agentBin  string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if agentBin != "" {
		os.RemoveAll(filepath.Dir(agentBin))
	}
	os.Exit(code)
}

// buildAgent builds nanoclaw-agent as the container gets it (static) into
// a directory uid 1000 can read.
func buildAgent(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nanoclaw-agent-bin-")
		if err != nil {
			buildErr = err
			return
		}
		os.Chmod(dir, 0o755)
		agentBin = filepath.Join(dir, "nanoclaw-agent")
		cmd := exec.Command("go", "build", "-o", agentBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build nanoclaw-agent: %v\n%s", buildErr, buildOut)
	}
	return agentBin
}

// sandbox is the directories of one agent run, owned by uid 1000 where the
// agent writes.
type sandbox struct {
	base, socket, work, global, home, claudeDir, tmp string
}

func newSandbox(t *testing.T) sandbox {
	t.Helper()
	base, err := os.MkdirTemp("", "nanoclaw-agent-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	s := sandbox{base: base, socket: filepath.Join(base, "gateway.sock"), work: filepath.Join(base, "group"),
		global: filepath.Join(base, "global"), home: filepath.Join(base, "home"), tmp: filepath.Join(base, "tmp")}
	s.claudeDir = filepath.Join(s.home, ".claude")
	for _, d := range []string{s.work, s.global, s.home, s.claudeDir, s.tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, ipc.ContainerUID, ipc.ContainerGID); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// agentProc is one `nanoclaw-agent run` as uid 1000.
type agentProc struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
	done           chan error
}

func startAgent(t *testing.T, s sandbox, claude string, extra ...string) *agentProc {
	t.Helper()
	args := []string{"run", "--socket", s.socket, "--claude", claude, "--listen", "127.0.0.1:0",
		"--workdir", s.work, "--global-dir", s.global, "--home", s.home, "--claude-dir", s.claudeDir,
		"--tmp", s.tmp, "--idle", "2m", "--log-level", "debug"}
	cmd := exec.Command(buildAgent(t), append(args, extra...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: ipc.ContainerUID, Gid: ipc.ContainerGID}}
	a := &agentProc{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-a.done
		}
	})
	return a
}

// wait waits for the agent to exit and returns its exit code.
func (a *agentProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(d):
		a.cmd.Process.Kill()
		<-a.done
		t.Fatalf("agent did not exit within %v; stderr:\n%s", d, a.stderr)
	}
	return a.cmd.ProcessState.ExitCode()
}

// childClaudes lists the pids of the processes whose parent is pid and
// whose program is the Claude Code binary.
func childClaudes(t *testing.T, pid int, claude string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Field 4 is the parent pid; the program name in field 2 may hold
		// spaces, so split after its closing parenthesis.
		s := string(st)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && exe == claude {
			out = append(out, n)
		}
	}
	return out
}

// logLines returns the agent's log records (JSON lines on stderr) and
// fails on anything else there.
func logLines(t *testing.T, stderr []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("agent stderr line is not a JSON log record: %q", sc.Bytes())
			continue
		}
		out = append(out, m)
	}
	return out
}

func countMsg(recs []map[string]any, msg string) int {
	n := 0
	for _, r := range recs {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

func TestRunWithRealClaudeCode(t *testing.T) {
	claude := testenv.ClaudeBinary(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "not root: Claude Code must run as uid 1000 (as in the container) and only root can switch")
	}
	buildAgent(t)
	s := newSandbox(t)
	if err := os.WriteFile(filepath.Join(s.global, "CLAUDE.md"), []byte("GLOBAL-MEMORY-A: the user's name is Ada.\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	api := fakeapi.New()
	defer api.Close()
	gw, err := fakegateway.New(s.socket, api)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	gw.Tool("send_message", func(args json.RawMessage) ipc.ToolResponse {
		return ipc.ToolResponse{Result: json.RawMessage(`{"delivered":true}`)}
	})

	api.Script(
		// prompt 1
		fakeapi.Text("first answer marker-1"),
		// prompt 2: the model calls our MCP tool, then reports its result
		fakeapi.ToolUse("mcp__nanoclaw__send_message", map[string]string{"text": "hello chat marker-2"}),
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			res := r.ToolResults()
			if len(res) != 1 {
				return fakeapi.Text("no single tool result")
			}
			return fakeapi.Text("tool said " + res[0].Content + " error=" + strconv.FormatBool(res[0].IsError))
		}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	t0 := time.Now()
	a := startAgent(t, s, claude)
	gw.Prompt("p1", "first prompt marker-prompt-1")
	o1, err := gw.Output(ctx)
	if err != nil {
		t.Fatalf("%v\nagent stderr:\n%s\nfake:\n%s", err, a.stderr, api.Summary())
	}
	firstTurn := time.Since(t0)
	if o1.InputID != "p1" || o1.Result != "first answer marker-1" || o1.IsError || o1.Usage.InputTokens <= 0 || o1.Usage.OutputTokens <= 0 {
		t.Errorf("output 1 = %+v; want p1's scripted answer with usage", o1)
	}
	if !ipc.ValidSessionID(o1.SessionID) || len(o1.SessionID) != 36 {
		t.Fatalf("output 1 session id %q: want Claude Code's UUID", o1.SessionID)
	}
	claudes1 := childClaudes(t, a.cmd.Process.Pid, claude)

	t1 := time.Now()
	gw.Prompt("p2", "second prompt marker-prompt-2: tell the chat hello")
	o2, err := gw.Output(ctx)
	if err != nil {
		t.Fatalf("%v\nagent stderr:\n%s\nfake:\n%s", err, a.stderr, api.Summary())
	}
	secondTurn := time.Since(t1)
	claudes2 := childClaudes(t, a.cmd.Process.Pid, claude)
	if want := `tool said {"delivered":true} error=false`; o2.InputID != "p2" || o2.Result != want || o2.IsError {
		t.Errorf("output 2 = %+v; want result %q", o2, want)
	}
	if o2.SessionID != o1.SessionID {
		t.Errorf("session changed within one process: %q then %q", o1.SessionID, o2.SessionID)
	}
	// The follow-up was answered by the same warm Claude Code process.
	if len(claudes1) != 1 || len(claudes2) != 1 || claudes1[0] != claudes2[0] {
		t.Errorf("claude code processes under the agent: %v at prompt 1, %v at prompt 2; want one and the same", claudes1, claudes2)
	}
	calls := gw.ToolCalls()
	if len(calls) != 1 || calls[0].Name != "send_message" {
		t.Fatalf("tool calls %+v; want one send_message", calls)
	}
	var args ipc.SendMessageArgs
	if err := json.Unmarshal(calls[0].Args, &args); err != nil || args.Text != "hello chat marker-2" {
		t.Errorf("send_message args %s; want text hello chat marker-2", calls[0].Args)
	}

	gw.Send(ipc.Input{Kind: ipc.InputClose})
	if code := a.wait(t, 30*time.Second); code != 0 {
		t.Errorf("agent exit code %d after close; want 0\nstderr:\n%s", code, a.stderr)
	}
	if a.stdout.Len() != 0 {
		t.Errorf("agent wrote to stdout (only logs on stderr are allowed): %q", a.stdout)
	}
	recs := logLines(t, a.stderr.Bytes())
	if n := countMsg(recs, "claude code started"); n != 1 {
		t.Errorf("%d claude code starts logged; want 1", n)
	}

	main := api.MainRequests()
	if len(main) != 3 {
		t.Fatalf("%d main requests, want 3:\n%s", len(main), api.Summary())
	}
	for _, r := range main {
		if !strings.Contains(r.System(), "GLOBAL-MEMORY-A") {
			t.Errorf("request %d: global memory not in the system prompt", r.Seq)
		}
		if got := r.Header.Get("X-Claude-Code-Session-Id"); got != o1.SessionID {
			t.Errorf("request %d: session header %q, output said %q", r.Seq, got, o1.SessionID)
		}
	}
	if tr := main[2].ToolResults(); len(tr) != 1 || tr[0].Content != `{"delivered":true}` || tr[0].IsError {
		t.Errorf("tool result the model saw: %+v", tr)
	}

	// Claude Code keeps its transcripts in CLAUDE_CONFIG_DIR, the one
	// directory the host keeps: drop everything else of the home (a
	// tmpfs in the container) before resuming.
	if m, _ := filepath.Glob(filepath.Join(s.claudeDir, "projects", "*", o1.SessionID+".jsonl")); len(m) != 1 {
		t.Errorf("no transcript of session %s under %s", o1.SessionID, s.claudeDir)
	}
	ents, _ := os.ReadDir(s.home)
	for _, e := range ents {
		if e.Name() != ".claude" {
			t.Logf("Claude Code left %s in HOME outside its config dir; removed", e.Name())
			os.RemoveAll(filepath.Join(s.home, e.Name()))
		}
	}

	// A new process resumes the session: the model sees the earlier
	// conversation, and global memory as it is now.
	if err := os.WriteFile(filepath.Join(s.global, "CLAUDE.md"), []byte("GLOBAL-MEMORY-B: the user's name is Grace.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	api.Script(fakeapi.Text("resumed answer"))
	t2 := time.Now()
	b := startAgent(t, s, claude, "--session", o1.SessionID)
	gw.Prompt("p3", "third prompt marker-prompt-3")
	o3, err := gw.Output(ctx)
	if err != nil {
		t.Fatalf("%v\nagent stderr:\n%s\nfake:\n%s", err, b.stderr, api.Summary())
	}
	resumedTurn := time.Since(t2)
	if o3.InputID != "p3" || o3.Result != "resumed answer" || o3.SessionID != o1.SessionID {
		t.Errorf("output 3 = %+v; want the resumed session %s", o3, o1.SessionID)
	}
	r := api.Main(3)
	if r == nil {
		t.Fatalf("no fourth main request:\n%s", api.Summary())
	}
	if ut := r.UserText(); !strings.Contains(ut, "marker-prompt-1") || !strings.Contains(ut, "marker-prompt-2") || !strings.Contains(ut, "marker-prompt-3") {
		t.Errorf("resumed request does not carry the earlier conversation:\n%s", ut)
	}
	if sys := r.System(); !strings.Contains(sys, "GLOBAL-MEMORY-B") || strings.Contains(sys, "GLOBAL-MEMORY-A") {
		t.Errorf("resumed request's system prompt does not carry the current global memory")
	}
	// SIGTERM ends it cleanly too.
	b.cmd.Process.Signal(syscall.SIGTERM)
	if code := b.wait(t, 30*time.Second); code != 0 {
		t.Errorf("agent exit code %d after SIGTERM; want 0\nstderr:\n%s", code, b.stderr)
	}

	// A session Claude Code does not have: exit 3, so the host starts anew.
	c := startAgent(t, s, claude, "--session", "0b5c7a52-6a43-4d4e-9a53-2c1f0e7d9a10")
	if code := c.wait(t, 30*time.Second); code != exitNoSession {
		t.Errorf("agent exit code %d for an unknown session; want %d\nstderr:\n%s", code, exitNoSession, c.stderr)
	}

	// Claude Code's own schedulers are not offered to the model: tasks go
	// through the host's schedule_task.
	for _, r := range api.MainRequests() {
		if body := string(r.Body); strings.Contains(body, "CronCreate") || strings.Contains(body, "ScheduleWakeup") {
			t.Errorf("request %d offers Claude Code's own scheduler tools", r.Seq)
			break
		}
	}

	// finding 1: nothing but the placeholder ever reached the API.
	for _, r := range api.Requests() {
		if got := r.Header.Get("X-Api-Key"); got != ipc.PlaceholderAPIKey {
			t.Errorf("request %d (%s %s): x-api-key %q, want the placeholder", r.Seq, r.Method, r.Path, got)
		}
		if got := r.Header.Get("Authorization"); got != "" {
			t.Errorf("request %d: unexpected Authorization header", r.Seq)
		}
	}
	if v := gw.Violations(); len(v) != 0 {
		t.Errorf("protocol violations at the gateway: %v", v)
	}
	t.Logf("timings: start + first turn %v, warm second turn (tool call, 2 model calls) %v, resumed start + turn %v",
		firstTurn.Round(time.Millisecond), secondTurn.Round(time.Millisecond), resumedTurn.Round(time.Millisecond))
	t.Logf("egress attempts (refused): %q", gw.Egress())
	t.Logf("fake saw:\n%s", api.Summary())
	if t.Failed() {
		t.Logf("agent a stderr:\n%s\nagent b stderr:\n%s", a.stderr, b.stderr)
	}
}

// A Bash call of the real Claude Code that leaves a process running
// detached (as `agent-browser open` leaves its daemon and Chromium): the
// agent, a subreaper, kills it once the turn's answer is posted, and
// keeps Claude Code.
func TestRunKillsWhatABashCallLeftRunning(t *testing.T) {
	claude := testenv.ClaudeBinary(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "not root: Claude Code must run as uid 1000 (as in the container) and only root can switch")
	}
	buildAgent(t)
	s := newSandbox(t)
	api := fakeapi.New()
	defer api.Close()
	gw, err := fakegateway.New(s.socket, api)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	api.Script(
		fakeapi.ToolUse("Bash", map[string]string{
			// Waits until the child is sleep itself, not setsid before its
			// exec, so the name the clean-up logs is certain.
			"command": "setsid sleep 4242 </dev/null >/dev/null 2>&1 & p=$!; " +
				`until [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ]; do sleep 0.01; done; echo started $p`,
			"description": "leave a process running",
		}),
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			if res := r.ToolResults(); len(res) == 1 {
				return fakeapi.Text(strings.TrimSpace(res[0].Content))
			}
			return fakeapi.Text("no single tool result")
		}),
		fakeapi.Text("second answer"),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := startAgent(t, s, claude)
	gw.Prompt("p1", "start something and leave it")
	o1, err := gw.Output(ctx)
	if err != nil {
		t.Fatalf("%v\nagent stderr:\n%s\nfake:\n%s", err, a.stderr, api.Summary())
	}
	pidText, ok := strings.CutPrefix(o1.Result, "started ")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil {
		t.Fatalf("output 1 = %+v; want the detached process's pid", o1)
	}
	t.Cleanup(func() {
		if cmdline, _ := os.ReadFile("/proc/" + pidText + "/cmdline"); string(cmdline) == "sleep\x004242\x00" {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	claudes := childClaudes(t, a.cmd.Process.Pid, claude)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + pidText); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			st, _ := os.ReadFile("/proc/" + pidText + "/stat")
			t.Fatalf("the detached sleep %d is still there after the turn: %s\nagent stderr:\n%s", pid, st, a.stderr)
		}
	}
	gw.Prompt("p2", "and now?")
	o2, err := gw.Output(ctx)
	if err != nil || o2.Result != "second answer" {
		t.Fatalf("output 2 = %+v, %v; want the same Claude Code's answer", o2, err)
	}
	if again := childClaudes(t, a.cmd.Process.Pid, claude); len(claudes) != 1 || len(again) != 1 || again[0] != claudes[0] {
		t.Errorf("claude code under the agent: %v after the clean-up, %v later; want one and the same", claudes, again)
	}
	gw.Send(ipc.Input{Kind: ipc.InputClose})
	if code := a.wait(t, 30*time.Second); code != 0 {
		t.Errorf("agent exit code %d after close; want 0\nstderr:\n%s", code, a.stderr)
	}
	var logged bool
	for _, r := range logLines(t, a.stderr.Bytes()) {
		if r["msg"] == "killed what the run left running" {
			logged = true
			if r["after"] != "turn" || r["processes"] != 1.0 || r["names"] != "sleep" {
				t.Errorf("clean-up logged %v; want after=turn processes=1 names=sleep", r)
			}
		}
	}
	if !logged {
		t.Errorf("no clean-up logged:\n%s", a.stderr)
	}
}
