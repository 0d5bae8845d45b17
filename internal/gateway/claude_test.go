package gateway

// End-to-end: the real Claude Code binary, run on the host, talks to the
// gateway's socket through a TCP→unix forwarder (as nanoclaw-agent does
// inside the container), with the fake Messages API as the upstream. It
// skips (or fails, with NANOCLAW_E2E=required) when the binary is missing.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/incontainer"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// forwarder runs the container side's own loopback forwarder in front of
// the socket at path and returns its address.
func forwarder(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { incontainer.Forward(ctx, ln, path, 16, slog.New(slog.DiscardHandler)); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func TestClaudeCodeThroughGateway(t *testing.T) {
	bin := testenv.ClaudeBinary(t)
	fake := fakeapi.New()
	defer fake.Close()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "HELLO-FROM-TARGET "+r.Host+r.URL.Path)
	}))
	defer target.Close()

	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey})
	// allowed.test "resolves" to a public address that the injected dialer
	// routes to the local target (see publicA).
	e.resolver.table["allowed.test"] = []netip.Addr{publicA}
	e.dialer.route["1.1.1.1:80"] = strings.TrimPrefix(target.URL, "http://")
	ep := e.open(t, "family", false, mustPolicy(t, "allowlist", "allowed.test"))
	addr := forwarder(t, ep.path)
	proxy := "http://" + addr

	fake.Script(
		fakeapi.ToolUse("Bash", map[string]string{"command": strings.Join([]string{
			"curl -sS -m 10 -x " + proxy + " http://allowed.test/hello",
			"echo",
			"curl -sS -m 10 -x " + proxy + " http://169.254.169.254/latest/meta-data/",
			"curl -sS -m 10 -x " + proxy + " https://api.anthropic.com/ 2>&1 | head -c 200",
			"echo",
		}, "; ")}),
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			res := r.ToolResults()
			if len(res) == 0 {
				return fakeapi.Text("no tool result")
			}
			return fakeapi.Text("tool said: " + res[0].Content)
		}),
	)

	home, work := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p", "--output-format", "stream-json", "--verbose",
		"--permission-mode", "dontAsk", "--allowedTools", "Bash", "--", "fetch the page")
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"ANTHROPIC_BASE_URL=" + proxy,
		"ANTHROPIC_API_KEY=" + ipc.PlaceholderAPIKey,
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	t.Logf("claude took %v; upstream saw:\n%s", time.Since(start).Round(time.Millisecond), fake.Summary())
	if err != nil {
		t.Fatalf("claude: %v\nstderr: %s\nstdout: %s", err, stderr.Bytes(), out)
	}
	result := resultLine(t, out)

	// The turn went through: the model's Bash call ran, and its output came
	// back through the gateway to the model.
	text, _ := result["result"].(string)
	for _, want := range []string{
		"HELLO-FROM-TARGET allowed.test/hello",
		"nanoclaw egress: 169.254.169.254:80 denied: 169.254.169.254: the cloud metadata service, never allowed",
		"403",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("result lacks %q:\n%s", want, text)
		}
	}
	if result["is_error"] != false {
		t.Errorf("result is an error: %v", result)
	}

	// finding 1: the upstream saw the real key on every call, never the
	// placeholder.
	reqs := fake.Requests()
	if len(fake.MainRequests()) != 2 {
		t.Fatalf("%d main requests, want 2", len(fake.MainRequests()))
	}
	for _, r := range reqs {
		if got := r.Header.Get("X-Api-Key"); got != realKey {
			t.Errorf("request %d %s: X-Api-Key %q, want the real key", r.Seq, r.Path, got)
		}
		for name, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, ipc.PlaceholderAPIKey) {
					t.Errorf("request %d: the placeholder reached the upstream in %s", r.Seq, name)
				}
			}
		}
		if strings.Contains(string(r.Body), ipc.PlaceholderAPIKey) {
			t.Errorf("request %d: the placeholder is in the body", r.Seq)
		}
	}
	var names []string
	for name := range reqs[0].Header {
		names = append(names, name)
	}
	sort.Strings(names)
	t.Logf("headers the upstream got from Claude Code via the gateway: %v", names)

	// Usage: one record per answered Messages request, the fake's numbers.
	var want []usageRecord
	today := time.Now().UTC().Format("2006-01-02")
	for _, r := range reqs {
		if r.Path == "/v1/messages" && r.Status == 200 {
			want = append(want, usageRecord{"family", today, int64(r.Usage.InputTokens), int64(r.Usage.OutputTokens), 0, 0, 0})
		}
	}
	got := e.usage.wait(t, len(want))
	if !slices.Equal(got, want) {
		t.Errorf("usage %+v, want %+v", got, want)
	}

	// Egress: one allowed fetch, two denials, each one log line.
	e.log.waitLines(t, "egress", 3)
	st := e.gw.Stats()["family"]
	if st.Allowed != 1 || st.Denied != 2 || st.APIRequests != int64(len(reqs)) {
		t.Errorf("stats %+v; want 1 allowed, 2 denied, %d API requests", st, len(reqs))
	}
	for _, l := range e.log.lines(t, "egress") {
		t.Logf("egress log: %v", l)
	}
}

func resultLine(t *testing.T, out []byte) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["type"] == "result" {
			return line
		}
	}
	t.Fatalf("no result line in Claude Code's output:\n%s", out)
	return nil
}
