package agent

// The container's boundary, end to end on the real runtimes with the real
// Claude Code: the host's key never enters it, its only network is the
// gateway's policy, it sees only its own group's files and socket, and
// its tool calls are attributed to the socket, never to what they claim.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

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
		if lines := strings.Fields(strings.Split(out, "GROUP-WRITABLE")[1]); len(lines) < 2 ||
			!slices.Equal(lines[:2], []string{ipc.SocketName, "END-OF-CHECK"}) {
			t.Errorf("/workspace/ipc should hold only this group's socket (no browser, no browser socket):\n%s", out)
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
