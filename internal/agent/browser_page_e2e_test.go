package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// Issue 15, the page as the attacker: a site the group may visit serves
// a script that calls the gateway the way Claude Code does — its tools,
// the API (with the owner's key added), the agent's own prompt queue — at
// every loopback name of the in-container forwarder. The browser's
// requests reach the gateway (loopback goes through the browser's proxy)
// on the browser's socket, which serves web traffic to public addresses
// only: every one is refused there, and none reaches the agent's socket
// (where the page's marks, Sec-Fetch-* and Origin, would be refused too).
// The agent's own next prompt still arrives.
func TestBrowserPageCannotCallTheGateway(t *testing.T) {
	var page strings.Builder
	page.WriteString("<html><body><h1>PAGE-LOADED-5R</h1><script>\n")
	for _, base := range []string{"127.0.0.1", "localhost", "[::1]"} {
		u := fmt.Sprintf("http://%s:%d", base, ipc.ProxyPort)
		fmt.Fprintf(&page, "fetch(%q, {method: 'POST', mode: 'no-cors', body: JSON.stringify({text: 'PAGE-SENT-7X'})});\n", u+"/ipc/tool/send_message")
		fmt.Fprintf(&page, "fetch(%q, {method: 'POST', mode: 'no-cors', headers: {'content-type': 'text/plain'}, body: JSON.stringify({model: 'PAGE-MODEL-2Z', max_tokens: 5, messages: [{role: 'user', content: 'hi'}]})});\n", u+"/v1/messages")
		fmt.Fprintf(&page, "new Image().src = %q;\n", u+"/ipc/session/next")
	}
	// Through a redirect of the page's own site, which keeps the POST body.
	page.WriteString("fetch('/redirect', {method: 'POST', mode: 'no-cors', body: JSON.stringify({text: 'PAGE-SENT-7X'})});\n")
	// And as what the browser fetches for the page itself: its icon.
	fmt.Fprintf(&page, "</script><link rel=icon href=\"http://127.0.0.1:%d/ipc/session/next?icon\"></body></html>", ipc.ProxyPort)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d/ipc/tool/send_message", ipc.ProxyPort), http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page.String())
	}))
	defer web.Close()

	runtimes(t, func(t *testing.T, rtName string) {
		h, s, _, logs := browserRun(t, rtName, web, "visitor", "evil.example")
		before := len(h.fake.Requests())

		// agent-browser's wait lets the page's script run to its end.
		out := h.bash(s, "agent-browser open http://evil.example/ && agent-browser wait 3000 && agent-browser get text body")
		if !strings.Contains(out, "PAGE-LOADED-5R") {
			t.Fatalf("the page did not load:\n%s", out)
		}
		for _, c := range h.tools.all() {
			if strings.Contains(c.Args, "PAGE-SENT-7X") {
				t.Errorf("the page called the tool %s: %s", c.Name, c.Args)
			}
		}
		for _, r := range h.fake.Requests()[before:] {
			if strings.Contains(string(r.Body), "PAGE-MODEL-2Z") {
				t.Errorf("the page's API call reached the upstream with the owner's key: %s", r.Path)
			}
		}
		refused := 0
		for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
			var l map[string]any
			if json.Unmarshal(line, &l) != nil || l["msg"] != "egress" || l["port"] != float64(ipc.ProxyPort) {
				continue
			}
			if l["allowed"] != false || l["via"] != "browser" {
				t.Errorf("a request for the forwarder's port went on the agent's socket or through: %s", line)
			}
			refused++
		}
		if refused == 0 {
			t.Errorf("the gateway logged no refused page request:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "gateway: a web page's request refused") {
			t.Errorf("a page's request reached the agent's socket:\n%s", logs.String())
		}
		// The page's GET of the prompt queue took nothing: the next prompt
		// reaches the agent.
		h.fake.Script(fakeapi.Text("still here"))
		if o := h.prompt(s, "are you there?"); o.Result != "still here" {
			t.Errorf("the next prompt got %q", o.Result)
		}
	})
}
