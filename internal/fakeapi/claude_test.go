package fakeapi

// End-to-end tests: the real Claude Code binary, run on the host (not in a
// container), talks to the fake. They skip (or fail, with
// NANOCLAW_E2E=required) when the binary is missing.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// claude describes one run of Claude Code in -p stream-json mode.
type claude struct {
	home, work string              // HOME and working directory; fresh temp dirs if empty
	cred       *syscall.Credential // run as this user (nil: as ourselves)
	flags      []string            // after -p --output-format stream-json --verbose
	prompt     string              // passed after "--" (--allowedTools takes several values)
}

// run runs Claude Code against s and returns its stream-json "result"
// line. It fails the test if Claude Code fails or takes over 30 s.
func (c claude) run(t *testing.T, s *Server) map[string]any {
	t.Helper()
	bin := testenv.ClaudeBinary(t)
	if c.home == "" {
		c.home = t.TempDir()
	}
	if c.work == "" {
		c.work = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-p", "--output-format", "stream-json", "--verbose"}, c.flags...)
	args = append(args, "--", c.prompt)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = c.work
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.home,
		"ANTHROPIC_BASE_URL=" + s.URL(),
		"ANTHROPIC_API_KEY=placeholder-key",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	t.Logf("claude %v took %v; the fake saw:\n%s", c.flags, time.Since(start).Round(time.Millisecond), s.Summary())
	if err != nil {
		t.Fatalf("claude: %v\nstderr: %s\nstdout: %s", err, stderr.Bytes(), out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("stream-json line is not JSON: %v: %s", err, sc.Bytes())
		}
		if line["type"] == "result" {
			return line
		}
	}
	t.Fatalf("no result line in Claude Code's output:\n%s\nstderr: %s", out, stderr.Bytes())
	return nil
}

// checkCredential asserts every request carried the placeholder key in
// x-api-key and nothing in Authorization.
func checkCredential(t *testing.T, s *Server) {
	t.Helper()
	for _, r := range s.Requests() {
		if got := r.Header.Get("X-Api-Key"); got != "placeholder-key" {
			t.Errorf("request %d: x-api-key %q, want placeholder-key", r.Seq, got)
		}
		if got := r.Header.Get("Authorization"); got != "" {
			t.Errorf("request %d: unexpected Authorization %q", r.Seq, got)
		}
	}
}

// checkUsage asserts Claude Code counted exactly the tokens the fake
// reported: the usage in message_start / message_delta is read as intended.
func checkUsage(t *testing.T, s *Server, result map[string]any) {
	t.Helper()
	var in, out float64
	models := map[string]bool{}
	for _, r := range s.MainRequests() {
		in += float64(r.Usage.InputTokens)
		out += float64(r.Usage.OutputTokens)
		models[r.Model()] = true
	}
	var gotIn, gotOut float64
	mu, _ := result["modelUsage"].(map[string]any)
	for model, v := range mu {
		if !models[model] {
			t.Errorf("result reports usage for model %q the fake never answered", model)
		}
		m, _ := v.(map[string]any)
		i, _ := m["inputTokens"].(float64)
		o, _ := m["outputTokens"].(float64)
		gotIn, gotOut = gotIn+i, gotOut+o
	}
	if gotIn != in || gotOut != out || in == 0 {
		t.Errorf("Claude Code counted %v in / %v out tokens, the fake reported %v / %v (modelUsage %v)", gotIn, gotOut, in, out, mu)
	}
}

// (1) A scripted text turn comes out as Claude Code's result.
func TestClaudeAnswersScriptedText(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(Text("hello from the fake model"))
	res := claude{prompt: "say hello, marker-prompt-7"}.run(t, s)

	if res["result"] != "hello from the fake model" || res["is_error"] != false {
		t.Errorf("result %v (is_error %v), want the scripted text", res["result"], res["is_error"])
	}
	main := s.MainRequests()
	if len(main) != 1 || s.Remaining() != 0 {
		t.Fatalf("%d main requests, %d turns left; want 1 and 0:\n%s", len(main), s.Remaining(), s.Summary())
	}
	r := main[0]
	if !r.Messages.Stream || r.Query.Get("beta") != "true" {
		t.Errorf("main request stream=%v query %v; want a streamed ?beta=true request", r.Messages.Stream, r.Query)
	}
	if !strings.Contains(r.LastUserText(), "marker-prompt-7") {
		t.Errorf("prompt not in the last user message: %q", r.LastUserText())
	}
	if !strings.Contains(r.AllText(), "Primary working directory: ") {
		t.Errorf("environment section not found in what the model was shown")
	}
	if r.System() == "" || !slices.Contains(r.ToolNames(), "Bash") {
		t.Errorf("system prompt %d bytes, tools %v; want a system prompt and Bash", len(r.System()), r.ToolNames())
	}
	checkCredential(t, s)
	checkUsage(t, s, res)
}

// (2) A scripted Bash call runs for real; its output comes back to the
// model as the tool_result of the next main request.
func TestClaudeRunsScriptedBash(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(
		ToolUse("Bash", map[string]string{"command": "echo marker-$((6*7))"}),
		React(func(r *Request) Turn {
			res := r.ToolResults()
			if len(res) == 0 {
				return Text("no tool result")
			}
			return Text("bash said " + strings.TrimSpace(res[0].Content))
		}),
	)
	res := claude{prompt: "run it", flags: []string{"--allowedTools", "Bash"}}.run(t, s)

	main := s.MainRequests()
	if len(main) != 2 {
		t.Fatalf("%d main requests, want 2:\n%s", len(main), s.Summary())
	}
	results := main[1].ToolResults()
	if len(results) != 1 || results[0].IsError || !strings.Contains(results[0].Content, "marker-42") {
		t.Fatalf("tool results of turn 1: %+v; want marker-42", results)
	}
	if want := toolUseID(main[0].Seq, 0); results[0].ToolUseID != want {
		t.Errorf("tool_result answers %q, want %q", results[0].ToolUseID, want)
	}
	if res["result"] != "bash said marker-42" {
		t.Errorf("result %q, want the React turn's answer", res["result"])
	}
	checkCredential(t, s)
	checkUsage(t, s, res)
}

// As root, --dangerously-skip-permissions (and bypassPermissions) are
// refused and the default mode denies commands that write. --allowedTools
// Bash with --permission-mode dontAsk lets Bash run anything and denies
// every other tool without asking: the deterministic choice for tests.
func TestClaudeBashAllowedAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("this documents behaviour as root; not root")
	}
	testenv.ClaudeBinary(t) // skip the whole test, not only its subtests
	write := ToolUse("Bash", map[string]string{"command": "echo marker-$((6*7)) | tee proof.txt"})

	t.Run("default mode denies a write", func(t *testing.T) {
		s := New()
		defer s.Close()
		s.Script(write, Text("done"))
		work := t.TempDir()
		claude{work: work, prompt: "write"}.run(t, s)
		if r := s.Main(1); r == nil || len(r.ToolResults()) != 1 || !r.ToolResults()[0].IsError {
			t.Fatalf("want a denied tool_result:\n%s", s.Summary())
		}
		if _, err := os.Stat(filepath.Join(work, "proof.txt")); err == nil {
			t.Error("proof.txt written although Bash was denied")
		}
	})
	t.Run("allowedTools Bash, dontAsk", func(t *testing.T) {
		s := New()
		defer s.Close()
		s.Script(write, Text("done"))
		work := t.TempDir()
		claude{work: work, prompt: "write", flags: []string{"--permission-mode", "dontAsk", "--allowedTools", "Bash"}}.run(t, s)
		if r := s.Main(1); r == nil || len(r.ToolResults()) != 1 || r.ToolResults()[0].IsError {
			t.Fatalf("want a successful tool_result:\n%s", s.Summary())
		}
		if b, err := os.ReadFile(filepath.Join(work, "proof.txt")); err != nil || string(b) != "marker-42\n" {
			t.Errorf("proof.txt: %q, %v", b, err)
		}
	})
}

// What the container does: an unprivileged user (uid 1000) with
// --dangerously-skip-permissions, which root may not use.
func TestClaudeBashAsUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to uid 1000")
	}
	base, err := os.MkdirTemp("", "fakeapi-uid1000-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	home, work := filepath.Join(base, "home"), filepath.Join(base, "work")
	for _, d := range []string{home, work} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	s := New()
	defer s.Close()
	s.Script(ToolUse("Bash", map[string]string{"command": "id -u | tee proof.txt"}), Text("done"))
	claude{home: home, work: work, cred: &syscall.Credential{Uid: 1000, Gid: 1000},
		prompt: "who am i", flags: []string{"--dangerously-skip-permissions"}}.run(t, s)
	r := s.Main(1)
	if r == nil || len(r.ToolResults()) != 1 || strings.TrimSpace(r.ToolResults()[0].Content) != "1000" {
		t.Fatalf("want tool_result 1000:\n%s", s.Summary())
	}
	if st, err := os.Stat(filepath.Join(work, "proof.txt")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("proof.txt not written by uid 1000: %v", err)
	}
}
