package incontainer

// Tests of Run against a fake gateway and a fake Claude Code: this test
// binary itself, started as "claude -p …" (see TestMain and fakeClaude).
// They cover what the real binary cannot be made to do on cue (die in a
// turn, ignore its closed input, write garbage); the real Claude Code is
// driven by cmd/nanoclaw-agent's end-to-end test.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/incontainer/fakegateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-p" {
		os.Exit(fakeClaude())
	}
	if role := os.Getenv(envReaperRole); role != "" {
		os.Exit(reaperHelper(role))
	}
	if c := os.Getenv(envRunConfig); c != "" {
		os.Exit(runHelper(c))
	}
	os.Exit(m.Run())
}

// fakeRecord is what the fake Claude Code writes to its working directory
// when it starts: how it was started.
type fakeRecord struct {
	PID       int      `json:"pid"`
	Args      []string `json:"args"`
	Env       []string `json:"env"`
	Dir       string   `json:"dir"`
	MCPConfig string   `json:"mcp_config"`
	Memory    string   `json:"memory"` // the --append-system-prompt-file's text
}

// fakeClaude speaks Claude Code's stream-json protocol. Each prompt's text
// picks what it does:
//
//	die         write to stderr and exit 3 in the turn
//	exit-after  answer, then exit 5
//	garbage     write a non-JSON line and a line over MaxLineBytes, then answer
//	slow        answer after 400 ms
//	api         GET /v1/models at ANTHROPIC_BASE_URL with the key from the environment
//	ignore-eof  answer; later ignore the end of input and SIGTERM
//	detach      leave a detached tree behind (reaper_test.go), then answer
//	anything else: answer "echo <text> #<n>"
func fakeClaude() int {
	rec := fakeRecord{PID: os.Getpid(), Args: os.Args[1:], Env: os.Environ()}
	rec.Dir, _ = os.Getwd()
	sid := "fake-session-1"
	for _, a := range rec.Args {
		if v, ok := strings.CutPrefix(a, "--mcp-config="); ok {
			b, _ := os.ReadFile(v)
			rec.MCPConfig = string(b)
		}
		if v, ok := strings.CutPrefix(a, "--resume="); ok {
			sid = v
		}
		if v, ok := strings.CutPrefix(a, "--append-system-prompt-file="); ok {
			b, _ := os.ReadFile(v)
			rec.Memory = string(b)
		}
	}
	b, _ := json.Marshal(rec)
	// Renamed into place: the test reads these while the fake runs.
	name := fmt.Sprintf("fake-claude-%d.json", rec.PID)
	os.WriteFile(name+".tmp", b, 0o600)
	os.Rename(name+".tmp", name)
	if sid == "missing-session" {
		// What Claude Code 2.1.332 does, at once, for an unknown session.
		fmt.Fprintln(os.Stderr, "No conversation found with session ID: missing-session")
		fmt.Println(`{"type":"result","subtype":"error_during_execution","is_error":true,"num_turns":0,` +
			`"session_id":"missing-session","errors":["No conversation found with session ID: missing-session"]}`)
		return 1
	}

	out := bufio.NewWriter(os.Stdout)
	emit := func(v map[string]any) {
		b, _ := json.Marshal(v)
		out.Write(append(b, '\n'))
		out.Flush()
	}
	result := func(text string) {
		// "type" last, as the real binary writes it.
		emit(map[string]any{"subtype": "success", "is_error": false, "result": text, "session_id": sid,
			"duration_ms": 7, "usage": map[string]int{"input_tokens": 11, "output_tokens": 2}, "type": "result"})
	}
	ignoreEOF := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		var msg struct {
			Type    string `json:"type"`
			Message struct {
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"message"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil || msg.Type != "user" || len(msg.Message.Content) != 1 {
			fmt.Fprintf(os.Stderr, "fake claude: bad input line %q\n", sc.Bytes())
			return 9
		}
		text := msg.Message.Content[0].Text
		emit(map[string]any{"type": "system", "subtype": "init", "session_id": sid, "cwd": rec.Dir})
		switch text {
		case "die":
			fmt.Fprintln(os.Stderr, "boom marker-stderr")
			return 3
		case "exit-after":
			result("bye")
			return 5
		case "garbage":
			out.WriteString("this is not json\n")
			out.WriteString(strings.Repeat("x", MaxLineBytes+10) + "\n")
			result("survived")
		case "slow":
			time.Sleep(400 * time.Millisecond)
			result("slow done")
		case "api":
			req, _ := http.NewRequest(http.MethodGet, os.Getenv("ANTHROPIC_BASE_URL")+"/v1/models", nil)
			req.Header.Set("X-Api-Key", os.Getenv("ANTHROPIC_API_KEY"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				result("api error " + err.Error())
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			result(fmt.Sprintf("api status %d %s", resp.StatusCode, body))
		case "detach":
			// A Bash call that leaves processes running detached, as
			// `agent-browser open` does (reaper_test.go's roles).
			if err := detachTree(filepath.Join(rec.Dir, "reaper")); err != nil {
				result("detach failed: " + err.Error())
				continue
			}
			result("detached")
		case "ignore-eof":
			ignoreEOF = true
			signal.Ignore(syscall.SIGTERM)
			result("ok")
		default:
			result(fmt.Sprintf("echo %s #%d", text, n))
		}
	}
	if ignoreEOF {
		time.Sleep(time.Minute)
	}
	return 0
}

// harness is one Run against a fake gateway.
type harness struct {
	cfg    Config
	gw     *fakegateway.Gateway
	errc   chan error
	cancel context.CancelFunc
	mu     sync.Mutex
	keys   []string // x-api-key of every API request the gateway saw
}

func newHarness(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	// Short paths: a unix socket path may not exceed 107 bytes.
	base, err := os.MkdirTemp("", "agentrun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Socket = filepath.Join(base, "gw.sock")
	cfg.Claude = self
	cfg.Listen = "127.0.0.1:0"
	cfg.WorkDir = filepath.Join(base, "group")
	cfg.GlobalDir = filepath.Join(base, "global")
	cfg.Home = filepath.Join(base, "home")
	cfg.ClaudeDir = filepath.Join(cfg.Home, ".claude")
	cfg.TempDir = base
	cfg.Self = "/opt/test/nanoclaw-agent"
	// The test binary is no container's agent: a subreaper's clean-up would
	// claim every child of the test process (reaper_test.go runs one in a
	// process of its own).
	cfg.Subreaper = false
	cfg.Idle = time.Minute
	cfg.StopGrace = 5 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, d := range []string{cfg.WorkDir, cfg.GlobalDir, cfg.ClaudeDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(&cfg)
	}
	h := &harness{cfg: cfg, errc: make(chan error, 1)}
	h.gw, err = fakegateway.New(cfg.Socket, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.keys = append(h.keys, r.Header.Get("X-Api-Key"))
		h.mu.Unlock()
		io.WriteString(w, `{"data":[]}`)
	}))
	if err != nil {
		t.Fatal(err)
	}
	h.gw.PollWait = 200 * time.Millisecond
	t.Cleanup(h.gw.Close)
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.errc <- Run(ctx, h.cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.errc:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// result waits for Run to return.
func (h *harness) result(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-h.errc:
		h.errc <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %v", within)
		return nil
	}
}

// resultAfterClose asks the run to end, as the host does, and waits.
func (h *harness) resultAfterClose(t *testing.T, within time.Duration) error {
	t.Helper()
	h.gw.Send(ipc.Input{Kind: ipc.InputClose})
	return h.result(t, within)
}

func (h *harness) output(t *testing.T) ipc.Output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	o, err := h.gw.Output(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// records returns what each fake Claude Code wrote when it started.
func (h *harness) records(t *testing.T) []fakeRecord {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(h.cfg.WorkDir, "fake-claude-*.json"))
	var out []fakeRecord
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r fakeRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestRunServesPromptsWithOneWarmProcess(t *testing.T) {
	t.Setenv("NANOCLAW_CANARY", "must-not-reach-claude")
	h := newHarness(t, nil)
	h.start(t)
	h.gw.Prompt("p1", "hello")
	h.gw.Prompt("p2", "garbage")
	h.gw.Prompt("p3", "api")

	o := h.output(t)
	if o.InputID != "p1" || o.Result != "echo hello #1" || o.IsError || o.SessionID != "fake-session-1" ||
		o.Usage != (ipc.Usage{InputTokens: 11, OutputTokens: 2}) {
		t.Errorf("output 1: %+v", o)
	}
	// A non-JSON line and an over-long line are skipped, not fatal.
	if o := h.output(t); o.InputID != "p2" || o.Result != "survived" || o.IsError {
		t.Errorf("output 2: %+v", o)
	}
	// Claude Code's API traffic goes through the forwarder to the socket,
	// with the placeholder key.
	if o := h.output(t); o.InputID != "p3" || o.Result != `api status 200 {"data":[]}` {
		t.Errorf("output 3: %+v", o)
	}
	h.gw.Send(ipc.Input{Kind: ipc.InputClose})
	if err := h.result(t, 10*time.Second); err != nil {
		t.Fatalf("Run after close: %v", err)
	}
	h.mu.Lock()
	keys := h.keys
	h.mu.Unlock()
	if len(keys) != 1 || keys[0] != ipc.PlaceholderAPIKey {
		t.Errorf("API keys seen at the gateway: %q", keys)
	}
	recs := h.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d Claude Code processes started, want 1", len(recs))
	}
	r := recs[0]
	if r.Dir != h.cfg.WorkDir {
		t.Errorf("working directory %q, want %q", r.Dir, h.cfg.WorkDir)
	}

	// The environment is exactly ours: nothing inherited.
	env := map[string]string{}
	for _, kv := range r.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var port string
	if u, ok := strings.CutPrefix(env["ANTHROPIC_BASE_URL"], "http://127.0.0.1:"); ok {
		port = u
	} else {
		t.Fatalf("ANTHROPIC_BASE_URL %q is not the loopback forwarder", env["ANTHROPIC_BASE_URL"])
	}
	proxy := "http://127.0.0.1:" + port
	want := map[string]string{
		"PATH": DefaultPath, "HOME": h.cfg.Home, "CLAUDE_CONFIG_DIR": h.cfg.ClaudeDir, "LANG": "C.UTF-8",
		"ANTHROPIC_BASE_URL": proxy, "ANTHROPIC_API_KEY": ipc.PlaceholderAPIKey,
		"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
		"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
		EnvGroupDir: h.cfg.WorkDir, // where the PreCompact hook archives
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s=%q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected env %s=%q in Claude Code's environment", k, env[k])
		}
	}

	// The argument vector, and the MCP config it names.
	var mcpPath string
	for _, a := range r.Args {
		if v, ok := strings.CutPrefix(a, "--mcp-config="); ok {
			mcpPath = v
		}
	}
	if wantArgs := ClaudeArgs("", "", mcpPath, ""); !slices.Equal(r.Args, wantArgs) {
		t.Errorf("args %q\nwant %q", r.Args, wantArgs)
	}
	for _, a := range []string{"--dangerously-skip-permissions", "--input-format", "--strict-mcp-config"} {
		if !slices.Contains(r.Args, a) {
			t.Errorf("args lack %s", a)
		}
	}
	var mc mcpConfigFile
	if err := json.Unmarshal([]byte(r.MCPConfig), &mc); err != nil {
		t.Fatalf("mcp config %q: %v", r.MCPConfig, err)
	}
	ns := mc.MCPServers["nanoclaw"]
	if len(mc.MCPServers) != 1 || ns.Command != h.cfg.Self || !slices.Equal(ns.Args, []string{"mcp"}) ||
		ns.Env[EnvSocket] != h.cfg.Socket || ns.Type != "stdio" {
		t.Errorf("mcp config %+v", mc)
	}
	if _, err := os.Stat(mcpPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mcp config %s left behind after the run (%v)", mcpPath, err)
	}
	if v := h.gw.Violations(); len(v) != 0 {
		t.Errorf("protocol violations: %v", v)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := map[string]func(*Config){
		"session flag":            func(c *Config) { c.SessionID = "--dangerous" },
		"session path":            func(c *Config) { c.SessionID = "../x" },
		"public listen":           func(c *Config) { c.Listen = "0.0.0.0:3128" },
		"host name listen":        func(c *Config) { c.Listen = "localhost:3128" },
		"no port":                 func(c *Config) { c.Listen = "127.0.0.1" },
		"relative workdir":        func(c *Config) { c.WorkDir = "group" },
		"relative socket":         func(c *Config) { c.Socket = "gw.sock" },
		"zero idle":               func(c *Config) { c.Idle = 0 },
		"no claude program":       func(c *Config) { c.Claude = "" },
		"model flag":              func(c *Config) { c.Model = "--dangerously-skip-permissions" },
		"model with space":        func(c *Config) { c.Model = "claude sonnet" },
		"public browser listen":   func(c *Config) { c.Browser, c.BrowserListen = true, "0.0.0.0:3129" },
		"relative browser socket": func(c *Config) { c.Browser, c.BrowserSocket = true, "br.sock" },
	}
	for name, edit := range cases {
		c := DefaultConfig()
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// mcpConfigFile is the shape of Claude Code's --mcp-config, as the run
// writes it.
type mcpConfigFile struct {
	MCPServers map[string]struct {
		Type    string            `json:"type"`
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	} `json:"mcpServers"`
}
