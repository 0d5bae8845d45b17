package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// finding 4: the caller's identity is the socket. Requests on A's socket
// reach the Handler as A, whatever the body claims, and B's as B.
func TestIPCIdentityFromSocket(t *testing.T) {
	e := newEnv(t, Options{})
	e.handler.toolRes = map[string]bool{"ok": true}
	a := e.open(t, "alpha", true, egress.Policy{})
	b := e.open(t, "beta", false, egress.Policy{})

	claimB := `{"folder":"beta","group":"beta","chat_jid":"beta@g.us","is_main":false,"prompt":"x"}`
	claimA := `{"folder":"alpha","group":"alpha","is_main":true,"prompt":"y"}`
	if s, body, _ := do(t, a, http.MethodPost, ipc.PathToolPrefix+"schedule_task", claimB); s != 200 || body != `{"result":{"ok":true}}` {
		t.Fatalf("tool on A: %d %s", s, body)
	}
	if s, body, _ := do(t, b, http.MethodPost, ipc.PathToolPrefix+"schedule_task", claimA); s != 200 {
		t.Fatalf("tool on B: %d %s", s, body)
	}
	if s, body, _ := do(t, a, http.MethodPost, ipc.PathToolPrefix+"send_message", `{"text":"hi from A"}`); s != 200 {
		t.Fatalf("send_message on A: %d %s", s, body)
	}
	if s, body, _ := do(t, b, http.MethodPost, ipc.PathOutput, `{"input_id":"p1","result":"done"}`); s != http.StatusNoContent {
		t.Fatalf("output on B: %d %s", s, body)
	}
	e.handler.inputs <- ipc.Input{Kind: ipc.InputPrompt, ID: "p2", Text: "hello"}
	if s, body, _ := do(t, a, http.MethodGet, ipc.PathNext, ""); s != 200 || body != `{"kind":"prompt","id":"p2","text":"hello"}` {
		t.Fatalf("next on A: %d %s", s, body)
	}
	want := []string{
		"tool alpha/main schedule_task " + claimB,
		"tool beta/other schedule_task " + claimA,
		`tool alpha/main send_message {"text":"hi from A"}`,
		`output beta p1 "done"`,
		"next alpha",
	}
	if got := e.handler.recorded(); !slices.Equal(got, want) {
		t.Fatalf("handler saw\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestIPCToolAnswers(t *testing.T) {
	e := newEnv(t, Options{})
	ep := e.open(t, "g", false, egress.Policy{})
	tool := ipc.PathToolPrefix + "send_message"
	for _, tc := range []struct {
		name, path, method, body string
		status                   int
		want                     string // part of the body
		handled                  bool
	}{
		{"valid", tool, "POST", `{"text":"hi"}`, 200, `{}`, true},
		{"empty text is an answer for the model", tool, "POST", `{"text":"  "}`, 200, `"error":"invalid arguments: text is empty"`, false},
		{"unknown argument", tool, "POST", `{"text":"hi","chat":"other@g.us"}`, 200, `unknown field \"chat\"`, false},
		{"text too long", tool, "POST", `{"text":"` + strings.Repeat("x", ipc.MaxMessageBytes+1) + `"}`, 200, "at most 65536 bytes", false},
		{"invalid JSON", tool, "POST", `{"text":`, 400, "tool send_message: arguments: invalid JSON", false},
		{"array", tool, "POST", `["hi"]`, 400, "not a JSON object", false},
		{"empty body", tool, "POST", ``, 400, "not a JSON object", false},
		{"trailing data", tool, "POST", `{"text":"hi"} {}`, 400, "data after the JSON object", false},
		{"too large", ipc.PathToolPrefix + "other", "POST", `{"a":"` + strings.Repeat("x", ipc.MaxToolBodyBytes) + `"}`, 400, "exceeds the limit", false},
		{"bad tool name", ipc.PathToolPrefix + "Send-Message", "POST", `{}`, 404, "invalid tool name", false},
		{"no tool name", ipc.PathToolPrefix, "POST", `{}`, 404, "invalid tool name", false},
		{"GET a tool", tool, "GET", ``, 405, "wants POST", false},
		{"GET output", ipc.PathOutput, "GET", ``, 405, "wants POST", false},
		{"POST next", ipc.PathNext, "POST", `{}`, 405, "wants GET", false},
		{"unknown ipc path", "/ipc/admin", "POST", `{}`, 404, "no such IPC endpoint", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.handler.recorded())
			s, body, _ := do(t, ep, tc.method, tc.path, tc.body)
			if s != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %.300s; want %d with %q", s, body, tc.status, tc.want)
			}
			var resp ipc.ToolResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatalf("answer is not a ToolResponse: %s", body)
			}
			if handled := len(e.handler.recorded()) > before; handled != tc.handled {
				t.Fatalf("handler called: %v, want %v", handled, tc.handled)
			}
		})
	}

	e.handler.toolErr = errors.New("task 42 does not belong to this group")
	s, body, _ := do(t, ep, "POST", ipc.PathToolPrefix+"cancel_task", `{"task_id":"42"}`)
	if s != 200 || body != `{"error":"task 42 does not belong to this group"}` {
		t.Fatalf("tool error: %d %s", s, body)
	}
	e.handler.toolErr, e.handler.toolRes = nil, func() {}
	if s, body, _ := do(t, ep, "POST", ipc.PathToolPrefix+"x", `{}`); s != 500 || !strings.Contains(body, "cannot encode result") {
		t.Fatalf("unencodable result: %d %s", s, body)
	}
}

func TestIPCOutputValidation(t *testing.T) {
	e := newEnv(t, Options{})
	ep := e.open(t, "g", false, egress.Policy{})
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"valid", `{"input_id":"p1","result":"ok","session_id":"0b5e-11","usage":{"input_tokens":1,"output_tokens":2}}`, 204, ""},
		{"bad input id", `{"input_id":"../x","result":"ok"}`, 400, `input id \"../x\" is not a prompt id`},
		{"bad session id", `{"input_id":"p1","session_id":"--resume","result":"ok"}`, 400, "session id"},
		{"negative usage", `{"input_id":"p1","usage":{"input_tokens":-1,"output_tokens":0}}`, 400, "negative usage"},
		{"unknown field", `{"input_id":"p1","folder":"main"}`, 400, `unknown field \"folder\"`},
		{"wrong type", `{"input_id":1}`, 400, "invalid JSON"},
		{"not an object", `"p1"`, 400, "not a JSON object"},
		{"trailing data", `{"input_id":"p1"}x`, 400, "data after the JSON object"},
		{"too large", `{"input_id":"p1","result":"` + strings.Repeat("x", ipc.MaxOutputBytes) + `"}`, 400, fmt.Sprintf("exceeds the limit of %d", ipc.MaxOutputBytes)},
		// R15: every field is capped, within the body's limit too.
		{"result too long", `{"input_id":"p1","result":"` + strings.Repeat("x", ipc.MaxResultBytes+1) + `"}`, 400, "result must be UTF-8 of at most 1048576 bytes"},
		{"error too long", `{"input_id":"p1","is_error":true,"error":"` + strings.Repeat("x", ipc.MaxErrorBytes+1) + `"}`, 400, "error must be UTF-8 of at most 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, body, _ := do(t, ep, "POST", ipc.PathOutput, tc.body)
			if s != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %.300s; want %d with %q", s, body, tc.status, tc.want)
			}
		})
	}
	if got := e.handler.recorded(); len(got) != 1 {
		t.Fatalf("handler saw %v, want only the valid output", got)
	}
	e.handler.outErr = errors.New("no prompt p9 is waiting")
	if s, body, _ := do(t, ep, "POST", ipc.PathOutput, `{"input_id":"p9"}`); s != http.StatusConflict || !strings.Contains(body, "no prompt p9 is waiting") {
		t.Fatalf("refused output: %d %s", s, body)
	}
}

// The long poll ends with 204 after the poll time, and as soon as the
// agent goes away.
func TestIPCNextLongPoll(t *testing.T) {
	e := newEnv(t, Options{PollTimeout: 200 * time.Millisecond})
	ep := e.open(t, "g", false, egress.Policy{})
	start := time.Now()
	if s, body, _ := do(t, ep, http.MethodGet, ipc.PathNext, ""); s != http.StatusNoContent {
		t.Fatalf("empty poll: %d %s", s, body)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("empty poll took %v, want about 200ms", d)
	}
	<-e.handler.nextCtx

	long := newEnv(t, Options{PollTimeout: time.Minute})
	ep = long.open(t, "g", false, egress.Policy{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://gateway"+ipc.PathNext, nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := client(ep).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	hctx := <-long.handler.nextCtx
	cancel()
	select {
	case <-hctx.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the handler's Next kept waiting after the agent went away")
	}
	<-errc

	// An invalid input from the host is not passed on.
	long.handler.inputs <- ipc.Input{Kind: ipc.InputPrompt, ID: "bad id", Text: "x"}
	if s, body, _ := do(t, ep, http.MethodGet, ipc.PathNext, ""); s != 500 || !strings.Contains(body, "prompt id") {
		t.Fatalf("invalid input: %d %s", s, body)
	}
}

func TestIPCNoHandler(t *testing.T) {
	gw := New(Options{Logger: discardLogger()})
	defer gw.Close()
	ep, err := gw.Open(Caller{Folder: "g"}, egress.Policy{}, t.TempDir(), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if s, body, _ := do(t, ep, http.MethodGet, ipc.PathNext, ""); s != 503 || !strings.Contains(body, "serves no IPC") {
		t.Fatalf("%d %s", s, body)
	}
}

// A tool answer larger than maxToolResultBytes is not handed on: the model
// is told to ask for less.
func TestIPCToolAnswerCapped(t *testing.T) {
	e := newEnv(t, Options{})
	ep := e.open(t, "g", false, egress.Policy{})
	e.handler.toolRes = map[string]string{"big": strings.Repeat("<", maxToolResultBytes/6+10)} // six bytes each once encoded
	s, body, _ := do(t, ep, "POST", ipc.PathToolPrefix+"list_tasks", `{}`)
	if s != 200 || len(body) > 4096 || !strings.Contains(body, "larger than") {
		t.Errorf("%d %.200s (%d bytes); want a short error", s, body, len(body))
	}
	e.handler.toolRes = map[string]string{"small": "ok"}
	if s, body, _ := do(t, ep, "POST", ipc.PathToolPrefix+"list_tasks", `{}`); s != 200 || !strings.Contains(body, `"small":"ok"`) {
		t.Errorf("%d %s", s, body)
	}
}

// Issue 15: a web page in the group's browser calls the gateway itself —
// its tools, the API, the prompt queue — at each loopback name of the
// forwarder, or through the socket's own form. What a browser marks
// (Sec-Fetch-*, Origin) is refused before anything is handled; a page's
// requests to other hosts, and the agent's own unmarked calls, are not.
func TestPageRequestsRefused(t *testing.T) {
	e := newEnv(t, Options{})
	ep := e.open(t, "fam", false, egress.Policy{Mode: egress.Public})
	body := `{"text":"from-a-page"}`
	for _, target := range []string{"http://127.0.0.1:3128", "http://localhost:3128", "http://[::1]:3128", ""} {
		for _, mark := range []string{"Sec-Fetch-Site: cross-site", "Sec-Fetch-Dest: image", "Sec-Fetch-User: ?1", "Origin: http://evil.test", "Origin: null"} {
			for _, req := range []string{
				"POST " + target + "/ipc/tool/send_message HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n",
				"GET " + target + "/ipc/next HTTP/1.1\r\n",
				"POST " + target + "/v1/messages HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n",
			} {
				raw := req + "Host: 127.0.0.1:3128\r\n" + mark + "\r\n\r\n"
				if strings.HasPrefix(req, "POST") {
					raw += body
				}
				_, _, resp := rawRequest(t, ep, raw)
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "a web page may not call the gateway") {
					t.Errorf("%q with %q: %d %s", strings.SplitN(req, "\r\n", 2)[0], mark, resp.StatusCode, b)
				}
			}
		}
	}
	if got := e.handler.recorded(); len(got) != 0 {
		t.Errorf("the host handled a page's request: %v", got)
	}
	if !strings.Contains(e.log.String(), "gateway: a web page's request refused") {
		t.Errorf("no refusal logged:\n%s", e.log.String())
	}
	// The agent's own call, unmarked, is served.
	e.handler.toolRes = ipc.SendMessageResult{Delivered: true}
	if code, b, _ := do(t, ep, "POST", "/ipc/tool/send_message", body, "Content-Type", "application/json"); code != http.StatusOK {
		t.Errorf("the agent's own tool call: %d %s", code, b)
	}
	// A page's request to another host goes by the egress policy, marks
	// and all: that is browsing.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "a page") }))
	defer site.Close()
	e.resolver.table["site.example"] = []netip.Addr{netip.MustParseAddr("93.184.215.14")}
	e.dialer.route["93.184.215.14:80"] = strings.TrimPrefix(site.URL, "http://")
	_, _, resp := rawRequest(t, ep, "GET http://site.example/ HTTP/1.1\r\nHost: site.example\r\nSec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a page load with its marks: %d", resp.StatusCode)
	}
}

// /ipc answers nanoclaw-agent's own calls alone: those come on the socket
// with Host ipc.GatewayHost. A tool that follows a URL to the forwarder (a
// remote server's redirect to http://127.0.0.1:3128/ipc/..., which curl -L
// or git follows straight to the forwarder) sends the URL's host, and a
// client that sends it through the proxy sends an absolute URL: neither
// takes the agent's next prompt or posts as the agent, even with no page's
// marks.
func TestIPCByURLRefused(t *testing.T) {
	e := newEnv(t, Options{})
	ep := e.open(t, "fam", false, egress.Policy{Mode: egress.Public})
	body := `{"text":"by-a-redirect"}`
	out := `{"input_id":"i1","result":"by-a-redirect"}`
	for _, req := range []string{
		"GET /ipc/session/next HTTP/1.1\r\nHost: 127.0.0.1:3128\r\n\r\n",
		"GET /ipc/session/next HTTP/1.1\r\nHost: localhost:3128\r\n\r\n",
		"GET /ipc/session/next HTTP/1.1\r\nHost: [::1]:3128\r\n\r\n",
		"GET /ipc/session/next HTTP/1.1\r\nHost: gateway:3128\r\n\r\n",
		"GET /ipc/session/next HTTP/1.1\r\nHost: GATEWAY\r\n\r\n",
		"GET /ipc/session/next HTTP/1.0\r\n\r\n",
		"GET http://127.0.0.1:3128/ipc/session/next HTTP/1.1\r\nHost: gateway\r\n\r\n",
		"GET http://localhost:3128/ipc/session/next HTTP/1.1\r\nHost: localhost:3128\r\n\r\n",
		"GET http:///ipc/session/next HTTP/1.1\r\nHost: gateway\r\n\r\n",
		"GET HTTP:///ipc/session/next HTTP/1.1\r\nHost: gateway\r\n\r\n",
		"POST /ipc/tool/send_message HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body,
		"POST /ipc/session/output HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(out)) + "\r\n\r\n" + out,
		// Half a body: the refusal does not wait for the rest.
		"POST /ipc/tool/send_message HTTP/1.1\r\nHost: 127.0.0.1:3128\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
	} {
		_, _, resp := rawRequest(t, ep, req)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "a request that came by a URL (a followed redirect) is refused") {
			t.Errorf("%q: %d %s", strings.SplitN(req, "\r\n", 3)[:2], resp.StatusCode, b)
		}
	}
	if got := e.handler.recorded(); len(got) != 0 {
		t.Errorf("the host handled a request that came by a URL: %v", got)
	}
	if !strings.Contains(e.log.String(), "gateway: an IPC request that came by a URL refused") {
		t.Errorf("no refusal logged:\n%s", e.log.String())
	}
	// The agent's own poll gets the prompt none of them took.
	e.handler.inputs <- ipc.Input{Kind: ipc.InputPrompt, ID: "p1", Text: "the owner's message"}
	if code, b, _ := do(t, ep, "GET", ipc.PathNext, ""); code != http.StatusOK || !strings.Contains(b, "the owner's message") {
		t.Errorf("the agent's own poll: %d %s", code, b)
	}
}
