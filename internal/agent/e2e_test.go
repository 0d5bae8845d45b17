package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
		SkillsDir:     filepath.Join(h.home, "skills"),
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
		name    string
		tweak   func(*Options)
		want    string
		is      error // the router recognises this one
		browser bool  // a group the owner gave the browser
	}{
		{"no credential", func(o *Options) { o.Gateway.APIKey = "" }, "put ANTHROPIC_API_KEY=", ErrNoCredential, false},
		{"no image", func(o *Options) { o.Image = "localhost/nanoclaw-agent:missing" }, "run 'nanoclaw image build'", nil, false},
		{"no runtime", func(o *Options) { o.Runtime = nil }, "no container runtime", nil, false},
		{"no browser image", func(o *Options) { o.BrowserImage = "localhost/nanoclaw-agent-browser:missing" },
			"the agent image localhost/nanoclaw-agent-browser:missing does not exist in podman: run 'nanoclaw image build --browser'", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "podman", tc.tweak)
			_, err := h.runner.Start(context.Background(), h.group("nothing", false, store.ContainerConfig{Browser: tc.browser}), StartOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if h.runner.running("nothing") != nil {
				t.Error("a failed start left a session behind")
			}
		})
	}
}

// An image another nanoclaw built (here, one without its labels) still
// runs, and the log says, once, how to rebuild it; the current image says
// nothing.
func TestStaleImageIsSaid(t *testing.T) {
	logs := &testenv.Buffer{}
	h := newHarness(t, "podman", func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	for _, image := range []string{testenv.BaseImage, testenv.BaseImage, testenv.AgentImage} {
		if err := h.runner.checkImage(t.Context(), image); err != nil {
			t.Fatalf("%s: %v", image, err)
		}
	}
	const said = `"msg":"the image was not built by this nanoclaw: run 'nanoclaw image build' (make run does it)","image":"` + testenv.BaseImage + `","state":"is stale (built from another Dockerfile)"`
	if n := strings.Count(logs.String(), said); n != 1 || strings.Count(logs.String(), "not built by this nanoclaw") != 1 {
		t.Errorf("said %d times (want once, of the base image only):\n%s", n, logs.String())
	}
}
