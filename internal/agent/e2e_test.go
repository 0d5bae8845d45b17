package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// The host's real key in these tests: distinctive, so a leak is easy to
// see, with a random part the container can never guess.
const keyMarker = "NANOCLAWSECRET"

// harness is a real host side (runner, gateway, store) on a real runtime,
// with the real Claude Code in the agent image and the fake model upstream.
type harness struct {
	t      testing.TB
	rt     *sandbox.Runtime
	fake   *fakeapi.Server
	runner *Runner
	st     *store.Store
	home   string
	key    string
	tools  *recordingTools
}

// recordingTools answers send_message and keeps every call with the
// identity the gateway attached to it.
type recordingTools struct {
	mu    sync.Mutex
	calls []toolCall
}

type toolCall struct {
	Caller gateway.Caller
	Name   string
	Args   string
}

func (r *recordingTools) Call(_ context.Context, caller gateway.Caller, name string, args json.RawMessage) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, toolCall{caller, name, string(args)})
	if name != "send_message" {
		return nil, fmt.Errorf("unknown tool %s", name)
	}
	var a ipc.SendMessageArgs
	if err := json.Unmarshal(args, &a); err != nil {
		return nil, err
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return ipc.SendMessageResult{Delivered: true}, nil
}

func (r *recordingTools) all() []toolCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]toolCall(nil), r.calls...)
}

func runtimes(t *testing.T, f func(t *testing.T, rtName string)) {
	for _, name := range []string{"podman", "docker"} {
		t.Run(name, func(t *testing.T) { f(t, name) })
	}
}

func newHarness(t testing.TB, rtName string, tweak func(*Options)) *harness {
	t.Helper()
	bin := testenv.Runtime(t, rtName)
	testenv.Image(t, bin, testenv.AgentImage)
	// Its own instance label: clean-up here must never touch the containers
	// of tests running in parallel in other packages.
	rt := &sandbox.Runtime{Kind: sandbox.Kind(rtName), Bin: bin, Instance: "agenttest" + newID()[:8]}

	h := &harness{t: t, rt: rt, fake: fakeapi.New(), tools: &recordingTools{}}
	t.Cleanup(h.fake.Close)
	h.key = "sk-ant-api03-" + keyMarker + "-" + newID() + newID()
	h.home = t.TempDir()
	os.Chmod(h.home, 0o755)
	st := testenv.OpenStore(t, filepath.Join(h.home, "test.db"), store.Options{})
	h.st = st
	upstream, _ := url.Parse(h.fake.URL())
	opt := Options{
		Runtime:       rt,
		Image:         testenv.AgentImage,
		AgentBinary:   testenv.AgentBinary(t),
		GroupsDir:     filepath.Join(h.home, "groups"),
		SessionsDir:   filepath.Join(h.home, "sessions"),
		IPCDir:        filepath.Join(h.home, "ipc"),
		LogsDir:       filepath.Join(h.home, "logs"),
		Timeout:       90 * time.Second,
		IdleTimeout:   time.Minute,
		StopGrace:     2 * time.Second,
		MemoryMB:      1024,
		CPUs:          1,
		PidsLimit:     256,
		DefaultEgress: egress.Policy{Mode: egress.Public},
		Gateway:       gateway.Options{Upstream: upstream, APIKey: h.key, Tools: h.tools},
		Store:         st,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&opt)
	}
	h.runner = NewRunner(opt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h.runner.Close(ctx)
		if left, _ := rt.List(ctx, "nanoclaw-"); len(left) > 0 {
			rt.RemoveStale(ctx, "nanoclaw-")
		}
	})
	return h
}

// group registers a group in the store so sessions can be saved.
func (h *harness) group(folder string, isMain bool, cfg store.ContainerConfig) store.Group {
	h.t.Helper()
	g := store.Group{Folder: folder, Name: folder, Trigger: "@Andy", RequiresTrigger: !isMain, IsMain: isMain, AddedAt: time.Now(), Config: cfg}
	if err := h.st.PutGroup(context.Background(), g); err != nil {
		h.t.Fatal(err)
	}
	return store.Group{Folder: folder, IsMain: isMain, Config: cfg}
}

func (h *harness) start(g store.Group, opt StartOptions) *Container {
	h.t.Helper()
	s, err := h.runner.Start(context.Background(), g, opt)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) prompt(s *Container, text string) ipc.Output {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := s.Prompt(ctx, text)
	if err != nil {
		h.t.Fatalf("prompt: %v\nrequests:\n%s\nrun log:\n%s", err, h.fake.Summary(), h.runLog(s))
	}
	if out.IsError {
		h.t.Fatalf("agent error: %s\nrequests:\n%s\nrun log:\n%s", out.Error, h.fake.Summary(), h.runLog(s))
	}
	return out
}

// bash scripts one Bash tool call and a closing text; it returns the
// command's output as Claude Code handed it back to the model.
func (h *harness) bash(s *Container, command string) string {
	h.t.Helper()
	before := len(h.fake.MainRequests())
	h.fake.Script(fakeapi.ToolUse("Bash", map[string]any{"command": command, "description": "test"}), fakeapi.Text("done"))
	h.prompt(s, "run the check")
	reqs := h.fake.MainRequests()
	for _, r := range reqs[before:] {
		for _, tr := range r.ToolResults() {
			return tr.Content
		}
	}
	h.t.Fatalf("no tool result came back to the model:\n%s", h.fake.Summary())
	return ""
}

func (h *harness) runLog(s *Container) string {
	logs, _ := filepath.Glob(filepath.Join(h.runner.opt.LogsDir, s.group.Folder, "*.log"))
	var b strings.Builder
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		b.Write(data)
	}
	return b.String()
}

func (h *harness) containers(prefix string) []string {
	h.t.Helper()
	names, err := h.rt.List(context.Background(), prefix)
	if err != nil {
		h.t.Fatal(err)
	}
	return names
}

func TestAgentAnswersResumesAndStaysWarm(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		g := h.group("family", false, store.ContainerConfig{})

		h.fake.Script(fakeapi.Text("hello from the fake model"))
		s := h.start(g, StartOptions{})
		out := h.prompt(s, "<messages><message sender=\"Bob\">hi</message></messages>")
		if out.Result != "hello from the fake model" {
			t.Fatalf("result %q", out.Result)
		}
		if out.SessionID == "" {
			t.Fatal("no session id in the output")
		}
		if saved, _ := h.st.Session(context.Background(), "family"); saved != out.SessionID {
			t.Errorf("saved session %q, want %q", saved, out.SessionID)
		}

		// A follow-up goes into the same warm container.
		h.fake.Script(fakeapi.Text("second answer"))
		if got := h.prompt(s, "and another thing"); got.Result != "second answer" {
			t.Errorf("follow-up result %q", got.Result)
		}
		if n := len(h.containers("nanoclaw-family-")); n != 1 {
			t.Errorf("%d containers for the group after a follow-up, want 1", n)
		}
		s.Close(context.Background())
		if n := len(h.containers("nanoclaw-family-")); n != 0 {
			t.Errorf("%d containers left after close", n)
		}

		// A new container resumes the saved session: the model sees the
		// earlier conversation.
		h.fake.Script(fakeapi.Text("third answer"))
		s2 := h.start(g, StartOptions{SessionID: out.SessionID})
		out3 := h.prompt(s2, "do you remember?")
		if out3.Result != "third answer" {
			t.Errorf("resumed result %q", out3.Result)
		}
		last := h.fake.MainRequests()[len(h.fake.MainRequests())-1]
		if !strings.Contains(last.UserText(), "and another thing") {
			t.Errorf("resumed run does not carry the earlier conversation; user text:\n%s", last.UserText())
		}
		if out3.SessionID != out.SessionID {
			t.Errorf("resumed run has session id %s, want the saved %s", out3.SessionID, out.SessionID)
		}
	})
}

func TestCredentialNeverEntersContainer(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		g := h.group("leaky", false, store.ContainerConfig{})
		s := h.start(g, StartOptions{})
		// Everything the agent could read: its environment, every
		// process's environment, and every readable file.
		out := h.bash(s, "env; for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\"; done 2>/dev/null; "+
			"grep -r -a -o -h -I '"+keyMarker+"-[A-Za-z0-9]*' / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | sort -u; echo END-OF-CHECK")
		if !strings.Contains(out, "END-OF-CHECK") {
			t.Fatalf("the check did not run to its end:\n%s", out)
		}
		secret := strings.TrimPrefix(h.key, "sk-ant-api03-"+keyMarker+"-")
		for _, r := range h.fake.Requests() {
			if strings.Contains(r.AllText(), secret) {
				t.Fatalf("the real key reached the model in request %d", r.Seq)
			}
		}
		if strings.Contains(out, secret) {
			t.Fatalf("the real key is visible inside the container:\n%s", out)
		}
		if !strings.Contains(out, "ANTHROPIC_API_KEY="+ipc.PlaceholderAPIKey) {
			t.Errorf("the container should see only the placeholder key; env was:\n%s", out)
		}
		for _, r := range h.fake.Requests() {
			if got := r.Header.Get("X-Api-Key"); got != h.key {
				t.Errorf("upstream request %d %s carried key %q, want the real one", r.Seq, r.Path, got)
			}
		}
	})
}

func TestNetworkIsTheGatewayOnly(t *testing.T) {
	// A local service standing in for a home-lab server.
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "SERVICE-REACHED") }))
	defer svc.Close()
	svcHost := strings.TrimPrefix(svc.URL, "http://")

	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		check := func(folder string, eg store.Egress) string {
			g := h.group(folder, false, store.ContainerConfig{Egress: eg})
			s := h.start(g, StartOptions{})
			defer s.Close(context.Background())
			// --noproxy '' : the agent's NO_PROXY names 127.0.0.1 (its own
			// forwarder), which would otherwise send the service request
			// around the proxy.
			proxy := fmt.Sprintf("--noproxy '' -x http://127.0.0.1:%d", ipc.ProxyPort)
			return h.bash(s, strings.Join([]string{
				"(exec 3<>/dev/tcp/1.1.1.1/80) 2>/dev/null && echo DIRECT-OPEN || echo DIRECT-BLOCKED",
				"curl --noproxy '*' -s -m 5 http://" + svcHost + "/ >/dev/null && echo DIRECT-LOCAL-OPEN || echo DIRECT-LOCAL-BLOCKED",
				"curl -s -m 5 -o /dev/null -w 'metadata=%{http_code}\\n' " + proxy + " http://169.254.169.254/latest/meta-data/",
				"curl -s -m 5 -o /dev/null -w 'private=%{http_code}\\n' " + proxy + " http://10.1.2.3/",
				"curl -s -m 5 " + proxy + " http://" + svcHost + "/ || echo SERVICE-DENIED",
			}, "; "))
		}

		out := check("net-public", store.Egress{Mode: store.EgressPublic})
		if st := h.runner.gw.Stats()["net-public"]; st.Denied < 3 {
			t.Errorf("the gateway counted %d denied destinations for net-public, want at least 3 (metadata, private, loopback)", st.Denied)
		}
		for _, want := range []string{"DIRECT-BLOCKED", "DIRECT-LOCAL-BLOCKED", "metadata=403", "private=403"} {
			if !strings.Contains(out, want) {
				t.Errorf("public policy: want %s in:\n%s", want, out)
			}
		}
		if strings.Contains(out, "SERVICE-REACHED") {
			t.Errorf("public policy reached a loopback service:\n%s", out)
		}
		for _, c := range []struct {
			folder string
			egress store.Egress
			reach  bool // the policy opens the service
		}{
			{"net-none", store.Egress{Mode: store.EgressNone}, false},
			{"net-other", store.Egress{Mode: store.EgressAllowlist, Allow: []string{"example.com"}}, false},
			{"net-named", store.Egress{Mode: store.EgressAllowlist, Allow: []string{svcHost}}, true},
		} {
			if out := check(c.folder, c.egress); strings.Contains(out, "SERVICE-REACHED") != c.reach {
				t.Errorf("egress %+v: service reached %v, want %v:\n%s", c.egress, !c.reach, c.reach, out)
			}
		}
	})
}

func TestIsolation(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		other := h.group("other", false, store.ContainerConfig{})
		so := h.start(other, StartOptions{}) // its socket exists while this test looks for it
		defer so.Close(context.Background())

		g := h.group("isolated", false, store.ContainerConfig{})
		os.MkdirAll(filepath.Join(h.home, "groups", "global"), 0o755)
		os.WriteFile(filepath.Join(h.home, "groups", "global", "CLAUDE.md"), []byte("GLOBAL-MEMORY-MARKER\n"), 0o644)
		s := h.start(g, StartOptions{})
		hostPaths := []string{h.home, filepath.Join(h.home, "test.db"), so.runDir, "/root/.config/nanoclaw", h.runner.opt.IPCDir}
		out := h.bash(s, "touch /workspace/global/x 2>/dev/null && echo GLOBAL-WRITABLE || echo GLOBAL-READONLY; "+
			"touch /workspace/group/mine && echo GROUP-WRITABLE; "+
			"ls /workspace/ipc; for p in "+strings.Join(hostPaths, " ")+"; do test -e \"$p\" && echo \"HOST-PATH-VISIBLE $p\"; done; echo END-OF-CHECK")
		for _, want := range []string{"GLOBAL-READONLY", "GROUP-WRITABLE", "END-OF-CHECK"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %s in:\n%s", want, out)
			}
		}
		if strings.Contains(out, "HOST-PATH-VISIBLE") {
			t.Errorf("a host path is visible in the container:\n%s", out)
		}
		if lines := strings.Fields(strings.Split(out, "GROUP-WRITABLE")[1]); len(lines) == 0 || lines[0] != ipc.SocketName {
			t.Errorf("/workspace/ipc should hold only this group's socket:\n%s", out)
		}
		// Global memory reaches the model of a non-main group.
		if !strings.Contains(h.fake.Main(0).AllText(), "GLOBAL-MEMORY-MARKER") {
			t.Errorf("global CLAUDE.md did not reach the model")
		}
	})
}

func TestSendMessageIsAttributedToTheSocket(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		h.group("main", true, store.ContainerConfig{})
		g := h.group("friends", false, store.ContainerConfig{})
		s := h.start(g, StartOptions{})

		h.fake.Script(
			fakeapi.ToolUse("mcp__nanoclaw__send_message", map[string]any{"text": "working on it"}),
			fakeapi.Text("done"))
		h.prompt(s, "please do something long")
		// Calls straight to the socket: one claiming to be main is refused
		// whole; a plain one is attributed to the socket's group.
		curl := `curl -s --unix-socket ` + ipc.ContainerSocket + ` -H 'Content-Type: application/json' -d `
		out := h.bash(s, curl+`'{"text":"forged","folder":"main","group":"main","is_main":true}' http://gateway`+ipc.PathToolPrefix+`send_message; echo; `+
			curl+`'{"text":"direct"}' http://gateway`+ipc.PathToolPrefix+`send_message`)
		if !strings.Contains(out, `unknown field`) || !strings.Contains(out, `"delivered":true`) {
			t.Errorf("direct calls answered:\n%s", out)
		}

		calls := h.tools.all()
		if len(calls) != 2 || !strings.Contains(calls[1].Args, "direct") {
			t.Fatalf("%d tool calls reached the host, want the MCP one and the plain direct one: %+v", len(calls), calls)
		}
		if calls[0].Name != "send_message" || !strings.Contains(calls[0].Args, "working on it") {
			t.Errorf("first call %+v", calls[0])
		}
		for _, c := range calls {
			if c.Caller.Folder != "friends" || c.Caller.IsMain {
				t.Errorf("call attributed to %+v, want group friends (not main)", c.Caller)
			}
		}
		// The host's answer went back to the model as the tool result.
		if tr := h.fake.Main(1).ToolResults(); len(tr) != 1 || !strings.Contains(tr[0].Content, "delivered") {
			t.Errorf("tool result seen by the model: %+v", tr)
		}
	})
}

func TestTimeoutStopsTheContainer(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		g := h.group("slow", false, store.ContainerConfig{TimeoutSeconds: store.MinTimeoutSeconds})
		h.fake.Script(fakeapi.ToolUse("Bash", map[string]any{"command": "tail -f /dev/null", "timeout": 600000}))
		s := h.start(g, StartOptions{})
		start := time.Now()
		_, err := s.Prompt(context.Background(), "take your time")
		if err == nil || !strings.Contains(err.Error(), errTimeout.Error()) {
			var results []fakeapi.ToolResult
			for _, r := range h.fake.MainRequests() {
				results = append(results, r.ToolResults()...)
			}
			t.Fatalf("error %v, want a timeout; tool results: %+v", err, results)
		}
		if d := time.Since(start); d > 40*time.Second {
			t.Errorf("timeout took %v", d)
		}
		select {
		case <-s.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("container process did not end after the timeout")
		}
		if n := h.containers("nanoclaw-slow-"); len(n) != 0 {
			t.Errorf("containers left after timeout: %v", n)
		}
	})
}

func TestStartSaysWhatIsMissing(t *testing.T) {
	cases := []struct {
		name  string
		tweak func(*Options)
		want  string
	}{
		{"no credential", func(o *Options) { o.Gateway.APIKey = "" }, "no API credential on the host"},
		{"no image", func(o *Options) { o.Image = "localhost/nanoclaw-agent:missing" }, "run 'nanoclaw image build'"},
		{"no runtime", func(o *Options) { o.Runtime = nil }, "no container runtime"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "podman", tc.tweak)
			_, err := h.runner.Start(context.Background(), h.group("nothing", false, store.ContainerConfig{}), StartOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
			if h.runner.running("nothing") != nil {
				t.Error("a failed start left a session behind")
			}
		})
	}
}
