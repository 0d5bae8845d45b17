package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/egress"
)

// onSocket writes raw HTTP on a new connection to the unix socket path and
// returns the response's status and body (on a CONNECT's 200, one line
// echoed through the tunnel).
func onSocket(t *testing.T, path, raw string) (int, string) {
	t.Helper()
	c, br, resp := rawOn(t, path, raw)
	defer c.Close()
	if strings.HasPrefix(raw, "CONNECT ") && resp.StatusCode == http.StatusOK {
		io.WriteString(c, "hello\n")
		line, _ := br.ReadString('\n')
		return resp.StatusCode, line
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The browser's socket carries web traffic only, to public addresses only:
// a destination the owner opened for the group on a private address
// ("nas.lan:5000", an address rule, loopback) stays closed to it, since a
// page's scripts could reach it too, and it never serves the gateway's own
// paths — whatever the request looks like (no page marks here; a CONNECT
// tunnel hides them anyway). The agent's socket reaches all of it.
func TestBrowserSocket(t *testing.T) {
	e := newEnv(t, Options{})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "page of %s", r.Host) }))
	defer web.Close()
	echo := echoServer(t)
	nasHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "nas admin") }))
	defer nasHTTP.Close()
	e.resolver.table["site.example"] = []netip.Addr{netip.MustParseAddr("93.184.215.14")}
	e.resolver.table["nas.lan"] = []netip.Addr{netip.MustParseAddr("192.168.1.20")}
	e.dialer.route["93.184.215.14:80"] = strings.TrimPrefix(web.URL, "http://")
	e.dialer.route["93.184.215.14:443"] = echo
	e.dialer.route["192.168.1.20:5000"] = strings.TrimPrefix(nasHTTP.URL, "http://")
	e.dialer.route["10.0.0.7:443"] = echo
	ep := openBrowser(t, e, "fam", mustPolicy(t, "public", "nas.lan:5000", "10.0.0.0/24:*"))
	checkMode(t, ep.pagePath, os.ModeSocket|0o600, os.Geteuid())

	// The web, through the browser's socket.
	if code, b := onSocket(t, ep.pagePath, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\n\r\n"); code != 200 || b != "page of site.example" {
		t.Errorf("a public page through the browser's socket: %d %q", code, b)
	}
	if code, b := onSocket(t, ep.pagePath, "CONNECT site.example:443 HTTP/1.1\r\nHost: site.example:443\r\n\r\n"); code != 200 || b != "echo: hello\n" {
		t.Errorf("a public CONNECT through the browser's socket: %d %q", code, b)
	}

	// What the owner opened on private addresses: closed to the browser.
	private := []string{
		"GET http://nas.lan:5000/ HTTP/1.1\r\nHost: nas.lan:5000\r\n\r\n",
		"CONNECT nas.lan:5000 HTTP/1.1\r\nHost: nas.lan:5000\r\n\r\n",
		"CONNECT 10.0.0.7:443 HTTP/1.1\r\nHost: 10.0.0.7:443\r\n\r\n",
		"GET http://10.0.0.7:443/ HTTP/1.1\r\nHost: 10.0.0.7:443\r\n\r\n",
	}
	for _, raw := range private {
		if code, b := onSocket(t, ep.pagePath, raw); code != 403 || !strings.Contains(b, "the browser never reaches a non-public address") && !strings.Contains(b, "the browser reaches ports 80 and 443 only") {
			t.Errorf("%q on the browser's socket: %d %q", strings.SplitN(raw, "\r\n", 2)[0], code, b)
		}
	}
	if got := e.dialer.addrs(); slices.ContainsFunc(got, func(a string) bool { return !strings.HasPrefix(a, "93.184.215.14:") }) {
		t.Errorf("the gateway dialled %v for the browser; want only the public site", got)
	}
	// ... and open to the agent, by the same rules.
	for _, raw := range private[:3] {
		if code, b := onSocket(t, ep.path, raw); code != 200 {
			t.Errorf("%q on the agent's socket: %d %q", strings.SplitN(raw, "\r\n", 2)[0], code, b)
		}
	}

	// The gateway itself: never through the browser's socket.
	body := `{"text":"from-the-browser"}`
	for _, req := range []string{
		"POST /ipc/tool/send_message HTTP/1.1\r\nHost: 127.0.0.1:3129\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"GET /ipc/session/next HTTP/1.1\r\nHost: 127.0.0.1:3129\r\n\r\n",
		"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3129\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:3129\r\n\r\n",
	} {
		if code, b := onSocket(t, ep.pagePath, req); code != 403 || !strings.Contains(b, "the browser's proxy carries web traffic only") {
			t.Errorf("%q on the browser's socket: %d %q", strings.SplitN(req, "\r\n", 2)[0], code, b)
		}
	}
	for _, target := range []string{"http://127.0.0.1:3128/ipc/session/next", "http://localhost:3128/ipc/session/next", "http://[::1]:3129/v1/models"} {
		raw := "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"
		if code, b := onSocket(t, ep.pagePath, raw); code != 403 || !strings.Contains(b, "denied") {
			t.Errorf("%s on the browser's socket: %d %q", target, code, b)
		}
	}
	if got := e.handler.recorded(); len(got) != 0 {
		t.Errorf("the host handled a request from the browser's socket: %v", got)
	}

	// The log says which flows were the browser's (a tunnel's line comes
	// once the gateway sees it closed).
	var browser, agent int
	for _, l := range e.log.waitLines(t, "egress", 2+len(private)+3+3) {
		if l["via"] == "browser" {
			browser++
		} else {
			agent++
		}
	}
	if browser != 2+len(private)+3 || agent != 3 {
		b, _ := json.Marshal(e.log.lines(t, "egress"))
		t.Errorf("egress lines: %d via the browser, %d the agent's; want %d and 3:\n%s", browser, agent, 2+len(private)+3, b)
	}

	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(ep.pagePath); !os.IsNotExist(err) {
		t.Errorf("the browser's socket is left after Close: %v", err)
	}
}

// openBrowser opens the endpoint of a group with a browser.
func openBrowser(t *testing.T, e *env, folder string, p egress.Policy) *Endpoint {
	t.Helper()
	return e.openAs(t, Caller{Folder: folder, Browser: true}, p)
}

// Only a group with a browser has the browser's socket.
func TestNoBrowserNoBrowserSocket(t *testing.T) {
	e := newEnv(t, Options{})
	ep := e.open(t, "plain", false, egress.Policy{})
	if _, err := os.Lstat(ep.pagePath); !os.IsNotExist(err) {
		t.Errorf("a group without a browser has %s: %v", ep.pagePath, err)
	}
}

// A page cannot use up what the agent needs: the browser has its own
// connection slots, and its own questions to the owner, each said to be a
// page's.
func TestBrowserHasItsOwnSlotsAndQuestions(t *testing.T) {
	e, _, ap := askEnv(t, Options{MaxTunnels: 4})
	ep := openBrowser(t, e, "shop", mustPolicy(t, "ask", "a.example"))
	for i := range 2 { // the browser's slots: half of MaxTunnels
		c, _, resp := rawOn(t, ep.pagePath, "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("the browser's tunnel %d: %s", i, resp.Status)
		}
		defer c.Close()
	}
	if code, b := onSocket(t, ep.pagePath, "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"); code != 429 || !strings.Contains(b, "too many open connections (max 2 for the browser)") {
		t.Errorf("the browser's third tunnel: %d %q", code, b)
	}
	if code, b := onSocket(t, ep.path, "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"); code != 200 {
		t.Errorf("the agent's tunnel beside the browser's: %d %q", code, b)
	}

	// A question from a page says so; the agent's does not (asked by
	// another browser group: shop's browser slots are all taken).
	ep = openBrowser(t, e, "shop2", mustPolicy(t, "ask", "a.example"))
	res := make(chan int, 2)
	go func() {
		code, _ := onSocket(t, ep.pagePath, "CONNECT new.example:443 HTTP/1.1\r\nHost: new.example:443\r\n\r\n")
		res <- code
	}()
	q := ap.next(t)
	if !q.browser || q.folder != "shop2" || q.host != "new.example" {
		t.Errorf("the page's question %+v", q)
	}
	q.answer <- egress.VerdictDeny
	go func() {
		code, _ := onSocket(t, ep.path, "CONNECT new.example:443 HTTP/1.1\r\nHost: new.example:443\r\n\r\n")
		res <- code
	}()
	q = ap.next(t)
	if q.browser {
		t.Errorf("the agent's question %+v is said to be a page's", q)
	}
	q.answer <- egress.VerdictDeny
	for range 2 {
		if code := <-res; code != 403 {
			t.Errorf("a denied CONNECT: %d", code)
		}
	}
}

// A page refused in a loop does not crowd the agent's refusals out of the
// daemon's log: the browser's socket has its own allowance of lines.
func TestBrowserRefusalsDoNotSilenceTheAgents(t *testing.T) {
	e := newEnv(t, Options{})
	ep := openBrowser(t, e, "shop", mustPolicy(t, "allowlist", "a.example"))
	for range maxWarnLines + 5 {
		if code, _ := onSocket(t, ep.pagePath, "CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n"); code != 403 {
			t.Fatalf("the page's CONNECT: %d", code)
		}
	}
	if code, _ := onSocket(t, ep.path, "CONNECT 10.9.9.9:443 HTTP/1.1\r\nHost: 10.9.9.9:443\r\n\r\n"); code != 403 {
		t.Fatalf("the agent's CONNECT: %d", code)
	}
	var page, agent int
	for _, l := range e.log.lines(t, "egress") {
		switch l["host"] {
		case "10.0.0.1":
			page++
		case "10.9.9.9":
			agent++
		}
	}
	if page != maxWarnLines || agent != 1 {
		t.Errorf("logged %d of the page's refusals (want %d, the rest counted) and %d of the agent's (want 1)", page, maxWarnLines, agent)
	}
}
