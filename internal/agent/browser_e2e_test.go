package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/incontainer"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// Issue 15, end to end: a group with the browser, the real Claude Code on
// the browser image, agent-browser scripted through Bash by the fake
// model. Chromium reaches the page the group's allowlist names only
// through the gateway (its text comes back to the model; a screenshot
// lands in the group's folder); a private address, the metadata address,
// an address of this host and loopback (where the test's page listens) are refused by
// the gateway with its reason and never dialled, and so is a private
// destination the owner opened for the group ("nas.lan:80"), which the
// agent's own curl reaches; after the turn no browser process is left in
// the container.
func TestBrowserGoesThroughTheGatewayAndEndsWithTheTurn(t *testing.T) {
	page := "<html><head><title>Luigi's</title></head><body><h1>Luigi's trattoria</h1>" +
		"<p>TABLE-FOR-TWO-AT-EIGHT</p><form method=post action=/book><input name=name autocomplete=name>" +
		"<input name=email type=email autocomplete=email><input name=tel type=tel autocomplete=tel><button>Book</button></form></body></html>"
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	defer web.Close()
	hostAddr := ""
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
				hostAddr = n.IP.String()
				break
			}
		}
	}

	runtimes(t, func(t *testing.T, rtName string) {
		h, s, edge, logs := browserRun(t, rtName, web, "browse", "luigis.example", "nas.lan:80")
		if s.ran.Image != testenv.BrowserImage || !slices.Contains(s.ran.Cmd, "--browser") || s.ran.ShmMB != browserShmMB {
			t.Fatalf("the browser group ran image %s, command %v, /dev/shm %d MB", s.ran.Image, s.ran.Cmd, s.ran.ShmMB)
		}
		// The browser's socket beside the agent's, as private.
		agentSock, err1 := os.Lstat(filepath.Join(s.runDir, ipc.SocketName))
		browserSock, err2 := os.Lstat(filepath.Join(s.runDir, ipc.BrowserSocketName))
		if err1 != nil || err2 != nil || browserSock.Mode() != os.ModeSocket|0o600 ||
			browserSock.Sys().(*syscall.Stat_t).Uid != agentSock.Sys().(*syscall.Stat_t).Uid {
			t.Errorf("the browser's socket: %v (%v); the agent's: %v (%v)", browserSock, err2, agentSock, err1)
		}

		out := h.bash(s, "agent-browser open http://luigis.example/ && agent-browser snapshot && agent-browser get text body"+
			" && agent-browser screenshot /workspace/group/table.png"+
			` && for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = chromium ] && awk '/^Uid:/ {print "CHROMIUM-UID", $2, $3}' $p/status; done`)
		uids := regexp.MustCompile(`CHROMIUM-UID (\d+) (\d+)`).FindAllStringSubmatch(out, -1)
		if len(uids) == 0 {
			t.Errorf("no Chromium process seen while the browser was open:\n%s", out)
		}
		for _, u := range uids {
			if u[1] == "0" || u[2] == "0" || u[1] != u[2] {
				t.Errorf("Chromium runs with uid %s, effective %s; want the group's own non-root uid", u[1], u[2])
			}
		}
		for _, want := range []string{"Luigi's trattoria", "TABLE-FOR-TWO-AT-EIGHT", `button "Book"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the page's %q did not reach the model:\n%s", want, out)
			}
		}
		shot, err := os.ReadFile(filepath.Join(h.runner.opt.GroupsDir, "browse", "table.png"))
		if err != nil || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("no PNG screenshot in the group's folder (%d bytes, %v)", len(shot), err)
		}

		// Refused destinations: each page is the gateway's refusal.
		// The test's own page listens on the host's loopback: loopback goes
		// through the gateway too (the proxy bypass list is <-loopback>), and
		// there it is the host's, never reachable.
		refused := []string{"10.1.2.3:80", "169.254.169.254:80", strings.TrimPrefix(web.URL, "http://")}
		if hostAddr != "" {
			refused = append(refused, hostAddr+":80")
		}
		var script []string
		for _, hp := range refused {
			script = append(script, fmt.Sprintf("agent-browser open http://%s/; agent-browser get text body", hp))
		}
		out = h.bash(s, strings.Join(script, "; "))
		for _, hp := range refused {
			if want := "nanoclaw egress: " + hp + " denied"; !strings.Contains(out, want) {
				t.Errorf("the browser did not get the gateway's refusal %q:\n%s", want, out)
			}
		}
		if got := edge.dialled(); !slices.Equal(slices.Compact(got), []string{"93.184.215.14:80"}) {
			t.Errorf("the gateway dialled %v; want only the allowed page", got)
		}

		// What the owner opened on a private address is the agent's, not
		// the browser's: any page the browser loads could reach it too.
		out = h.bash(s, "agent-browser open http://nas.lan/; agent-browser get text body; echo CURL:; curl -sS http://nas.lan/")
		browser, agent, _ := strings.Cut(out, "CURL:")
		if want := "nanoclaw egress: nas.lan:80 denied: nas.lan resolves to 192.168.1.20: private (RFC 1918); the browser never reaches"; !strings.Contains(browser, want) ||
			strings.Contains(browser, "TABLE-FOR-TWO-AT-EIGHT") {
			t.Errorf("the browser did not get the refusal %q:\n%s", want, browser)
		}
		if !strings.Contains(agent, "TABLE-FOR-TWO-AT-EIGHT") {
			t.Errorf("the agent's curl did not reach what the owner opened:\n%s", agent)
		}
		if got := slices.DeleteFunc(edge.dialled(), func(a string) bool { return a == "93.184.215.14:80" }); !slices.Equal(got, []string{"192.168.1.20:80"}) {
			t.Errorf("the gateway dialled %v besides the page; want 192.168.1.20:80 once, for curl", got)
		}
		refused = append(refused, "nas.lan:80")

		// A Chromium started by hand, with the agent's HTTP_PROXY in its
		// environment and another proxy on its command line, still goes by
		// the image's policy: the browser's proxy, never the agent's. (Its
		// flags otherwise agent-browser's: without them it calls Google's
		// update servers, which the browser's socket refuses too.)
		out = h.bash(s, "for u in http://nas.lan/ http://127.0.0.1:3128/ipc/session/next; do echo \"== $u\"; "+
			"timeout 60 chromium --headless "+strings.Join(incontainer.ChromiumArgs, " ")+
			" --proxy-server=http://127.0.0.1:3128 --dump-dom $u 2>/dev/null; done")
		for _, want := range []string{"nanoclaw egress: nas.lan:80 denied: nas.lan resolves to 192.168.1.20: private (RFC 1918); the browser never reaches",
			"nanoclaw egress: 127.0.0.1:3128 denied"} {
			if !strings.Contains(out, want) {
				t.Errorf("chromium by hand did not get the browser's refusal %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "TABLE-FOR-TWO-AT-EIGHT") || strings.Contains(out, `"error"`) {
			t.Errorf("chromium by hand reached what only the agent may:\n%s", out)
		}
		if got := slices.DeleteFunc(edge.dialled(), func(a string) bool { return a == "93.184.215.14:80" }); len(got) != 1 {
			t.Errorf("the gateway dialled %v besides the page; want curl's one dial only", got)
		}
		refused = append(refused, "127.0.0.1:3128")
		denied := map[string]bool{}
		for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
			var l map[string]any
			if json.Unmarshal(line, &l) == nil && l["msg"] == "egress" && l["group"] == "browse" && l["allowed"] == false {
				denied[net.JoinHostPort(fmt.Sprint(l["host"]), fmt.Sprint(l["port"]))] = true
			}
		}
		for _, hp := range refused {
			if !denied[hp] {
				t.Errorf("the gateway logged no refusal of %s: %v", hp, denied)
			}
		}
		// Nothing the agent did not open: Chromium's own calls to Google are
		// off by the image's policy and flags, all but its push-service
		// check-in (SECURITY.md, known limits).
		for hp := range denied {
			if !slices.Contains(refused, hp) && hp != "android.clients.google.com:443" {
				t.Errorf("the browser connected to %s on its own", hp)
			}
		}

		// The turns above left agent-browser's daemon and Chromium running
		// detached; the agent ends them with each turn.
		out = h.bash(s, "for p in /proc/[0-9]*; do cat $p/comm; done 2>/dev/null; echo SETUID:; find / -xdev -type f -perm /6000 2>/dev/null")
		procs, setuid, _ := strings.Cut(out, "SETUID:")
		if strings.TrimSpace(setuid) != "" {
			t.Errorf("the browser image has setuid or setgid programs:\n%s", setuid)
		}
		out = procs
		for _, name := range []string{"chromium", "agent-browser", "chrome_crashpad"} {
			if strings.Contains(out, name) {
				t.Errorf("%s still runs after the turn that started it:\n%s", name, out)
			}
		}
		if !strings.Contains(out, "claude") {
			t.Errorf("the process list does not show Claude Code itself, so it proves nothing:\n%s", out)
		}
	})
}

// browserRun starts group folder with the browser, on the browser image,
// allowed to reach only site, which the gateway's fake edge routes to web
// (at a public address), and each name:port of private, which it routes
// to web too (at the private address 192.168.1.20); the daemon's log,
// JSON, goes to logs too.
func browserRun(t *testing.T, rtName string, web *httptest.Server, folder, site string, private ...string) (*harness, *Container, *fakeEdge, *testenv.Buffer) {
	t.Helper()
	testenv.Image(t, testenv.Runtime(t, rtName), testenv.BrowserImage)
	logs := &testenv.Buffer{}
	edge := &fakeEdge{route: map[string]string{"93.184.215.14:80": strings.TrimPrefix(web.URL, "http://")},
		table: map[string][]netip.Addr{site: {netip.MustParseAddr("93.184.215.14")}}}
	for _, hp := range private {
		name, port, _ := net.SplitHostPort(hp)
		edge.table[name] = []netip.Addr{netip.MustParseAddr("192.168.1.20")}
		edge.route["192.168.1.20:"+port] = strings.TrimPrefix(web.URL, "http://")
	}
	h := newHarness(t, rtName, func(o *Options) {
		o.BrowserImage = testenv.BrowserImage
		o.Logger = slog.New(slog.NewJSONHandler(io.MultiWriter(logs, t.Output()), nil))
		o.Gateway.Resolver, o.Gateway.Dial = edge, edge.dial
		o.MemoryMB, o.PidsLimit = 2048, 512
	})
	g := h.group(folder, false, store.ContainerConfig{Browser: true,
		Egress: store.Egress{Mode: store.EgressAllowlist, Allow: append([]string{site}, private...)}})
	s := h.start(g, StartOptions{})
	t.Cleanup(func() { s.Close(context.Background()) })
	return h, s, edge, logs
}
