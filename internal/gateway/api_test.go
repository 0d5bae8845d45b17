package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

const realKey = "sk-ant-real-key-only-on-the-host"

// A streamed Messages request with tools, so the fake takes it as a main
// turn and answers from the script.
const streamBody = `{"model":"claude-test","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"Bash","input_schema":{"type":"object"}}]}`
const jsonBody = `{"model":"claude-test","max_tokens":100,"messages":[{"role":"user","content":"hello there"}],"tools":[{"name":"Bash","input_schema":{"type":"object"}}]}`

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// containerHeaders are what a container might send: the placeholder in
// every credential header it can think of.
var containerHeaders = []string{
	"X-Api-Key", ipc.PlaceholderAPIKey,
	"Authorization", "Bearer " + ipc.PlaceholderAPIKey,
	"Proxy-Authorization", "Basic " + ipc.PlaceholderAPIKey,
	"Cookie", "session=" + ipc.PlaceholderAPIKey,
	"X-Auth-Token", ipc.PlaceholderAPIKey,
	"X-Custom-Secret", ipc.PlaceholderAPIKey,
	"Anthropic-Version", "2023-06-01",
	"Content-Type", "application/json",
}

// finding 1: the container's credential never reaches the upstream; the
// host's does, on every call, and the upstream's base path is kept.
func TestAPICredentialReplaced(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	upstream := httptest.NewServer(http.StripPrefix("/base", fake))
	defer upstream.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL+"/base"), APIKey: realKey})
	ep := e.open(t, "family", false, egress.Policy{})

	fake.Script(fakeapi.Text("one"), fakeapi.Text("two"))
	for i, path := range []string{"/v1/messages?beta=true", "/v1/messages?beta=true", "/v1/models"} {
		method, body := http.MethodPost, streamBody
		if strings.HasPrefix(path, "/v1/models") {
			method, body = http.MethodGet, ""
		}
		status, got, _ := do(t, ep, method, path, body, containerHeaders...)
		if status != http.StatusOK {
			t.Fatalf("call %d %s: status %d: %s", i, path, status, got)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("upstream saw %d requests, want 3:\n%s", len(reqs), fake.Summary())
	}
	for _, r := range reqs {
		if got := r.Header.Get("X-Api-Key"); got != realKey {
			t.Errorf("request %d %s: X-Api-Key %q, want the real key", r.Seq, r.Path, got)
		}
		for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Auth-Token", "X-Custom-Secret"} {
			if v := r.Header.Values(h); len(v) > 0 {
				t.Errorf("request %d: %s %q reached the upstream", r.Seq, h, v)
			}
		}
		for name, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, ipc.PlaceholderAPIKey) {
					t.Errorf("request %d: the placeholder reached the upstream in %s", r.Seq, name)
				}
			}
		}
		if r.Header.Get("Anthropic-Version") != "2023-06-01" {
			t.Errorf("request %d: anthropic-version not passed on: %v", r.Seq, r.Header)
		}
	}
	if reqs[0].Path != "/v1/messages" || reqs[0].Query.Get("beta") != "true" || reqs[2].Path != "/v1/models" {
		t.Errorf("paths/queries not kept: %s", fake.Summary())
	}
	if st := e.gw.Stats()["family"]; st.APIRequests != 3 {
		t.Errorf("stats %+v, want 3 API requests", st)
	}
}

func TestAPIOAuthToken(t *testing.T) {
	for _, tc := range []struct {
		name         string
		key, token   string
		clientBeta   string
		wantAuth     string
		wantKey      string
		wantBetas    string
		wantNoHeader string
	}{
		{"oauth only", "", "oauth-real-token", "", "Bearer oauth-real-token", "", "oauth-2025-04-20", "X-Api-Key"},
		{"oauth keeps the client's betas", "", "oauth-real-token", "tools-2024, fine-grained", "Bearer oauth-real-token", "", "tools-2024,fine-grained,oauth-2025-04-20", "X-Api-Key"},
		{"oauth beta not doubled", "", "oauth-real-token", "oauth-2025-04-20,x", "Bearer oauth-real-token", "", "oauth-2025-04-20,x", "X-Api-Key"},
		{"api key wins over oauth", realKey, "oauth-real-token", "x", "", realKey, "x", "Authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakeapi.New()
			defer fake.Close()
			e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: tc.key, OAuthToken: tc.token})
			ep := e.open(t, "g", false, egress.Policy{})
			hdr := append([]string{}, containerHeaders...)
			if tc.clientBeta != "" {
				hdr = append(hdr, "Anthropic-Beta", tc.clientBeta)
			}
			if status, body, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody, hdr...); status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			r := fake.Requests()[0]
			if got := r.Header.Get("Authorization"); got != tc.wantAuth {
				t.Errorf("Authorization %q, want %q", got, tc.wantAuth)
			}
			if got := r.Header.Get("X-Api-Key"); got != tc.wantKey {
				t.Errorf("X-Api-Key %q, want %q", got, tc.wantKey)
			}
			if got := strings.Join(r.Header.Values("Anthropic-Beta"), ","); got != tc.wantBetas {
				t.Errorf("anthropic-beta %q, want %q", got, tc.wantBetas)
			}
		})
	}
}

func TestAPINoCredential(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL())})
	ep := e.open(t, "g", false, egress.Policy{})
	status, body, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody, containerHeaders...)
	var got struct {
		Type  string
		Error struct{ Type, Message string }
	}
	json.Unmarshal([]byte(body), &got)
	if status != http.StatusUnauthorized || got.Type != "error" || got.Error.Type != "authentication_error" ||
		!strings.Contains(got.Error.Message, "no API credential configured on the host: set ANTHROPIC_API_KEY") {
		t.Fatalf("status %d body %s; want 401 with an authentication_error naming ANTHROPIC_API_KEY", status, body)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("upstream saw %d requests without a credential", n)
	}
}

// Only /v1/ reaches the upstream; absolute URLs naming the gateway itself
// (a client that sends API calls through HTTP_PROXY) count as /v1 too.
func TestAPIOnlyV1(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey})
	ep := e.open(t, "g", false, egress.Policy{})
	for _, tc := range []struct {
		raw    string
		status int
	}{
		{"HEAD /api/hello HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET /v2/models HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404},
		{"GET /v1/../admin HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"GET /v1/%2e%2e/admin HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"GET /v1//models HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"GET /ipc/../v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	} {
		_, _, resp := rawRequest(t, ep, tc.raw)
		if resp.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d", strings.SplitN(tc.raw, "\r\n", 2)[0], resp.StatusCode, tc.status)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("upstream saw %d requests:\n%s", n, fake.Summary())
	}
	_, _, resp := rawRequest(t, ep, fmt.Sprintf("GET http://127.0.0.1:%d/v1/models HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Api-Key: %s\r\n\r\n", ipc.ProxyPort, ipc.ProxyPort, ipc.PlaceholderAPIKey))
	if resp.StatusCode != 200 {
		t.Fatalf("absolute URL to the gateway itself: status %d", resp.StatusCode)
	}
	if r := fake.Requests(); len(r) != 1 || r[0].Path != "/v1/models" || r[0].Header.Get("X-Api-Key") != realKey {
		t.Fatalf("upstream saw:\n%s", fake.Summary())
	}
}

// Server-sent events pass through as they come: the first event reaches
// the container while the upstream is still writing. Usage is read from
// the stream on the way.
func TestAPIStreamsIncrementally(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"+
			"{\"input_tokens\":10,\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"message_delta\"}}\n\n")
		io.WriteString(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n")
		io.WriteString(w, "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":42}}\r\n\r\n")
		io.WriteString(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}))
	defer upstream.Close()
	defer close(release)
	day := time.Date(2026, 3, 4, 12, 0, 0, 0, time.Local)
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey, Now: func() time.Time { return day }})
	ep := e.open(t, "family", false, egress.Policy{})

	req, _ := http.NewRequest(http.MethodPost, "http://gateway/v1/messages", strings.NewReader(streamBody))
	resp, err := client(ep).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() {
		var ev strings.Builder
		for {
			line, err := br.ReadString('\n')
			ev.WriteString(line)
			if err != nil || line == "\n" {
				first <- ev.String()
				return
			}
		}
	}()
	select {
	case ev := <-first:
		if !strings.Contains(ev, "message_start") {
			t.Fatalf("first event: %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the upstream was still streaming: the gateway buffers")
	}
	release <- struct{}{}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "message_stop") {
		t.Fatalf("rest of the stream: %q, %v", rest, err)
	}
	recs := e.usage.wait(t, 1)
	want := usageRecord{Folder: "family", Day: "2026-03-04", In: 115, Out: 42}
	if len(recs) != 1 || recs[0] != want {
		t.Fatalf("usage %+v, want [%+v]", recs, want)
	}
}

// Usage is recorded once per response, per group and day, for streamed and
// plain JSON answers, and not for answers without usage.
func TestAPIUsagePerGroup(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey})
	a := e.open(t, "alpha", true, egress.Policy{})
	b := e.open(t, "beta", false, egress.Policy{})
	fake.Script(fakeapi.Text("streamed answer"), fakeapi.Text("a JSON answer, somewhat longer"), fakeapi.Error(529, "overloaded_error", "busy"))

	if s, body, _ := do(t, a, http.MethodPost, "/v1/messages", streamBody); s != 200 {
		t.Fatalf("alpha: %d %s", s, body)
	}
	if s, body, _ := do(t, b, http.MethodPost, "/v1/messages", jsonBody); s != 200 {
		t.Fatalf("beta: %d %s", s, body)
	}
	if s, _, _ := do(t, b, http.MethodPost, "/v1/messages", streamBody); s != 529 {
		t.Fatalf("beta's error turn: status %d", s)
	}
	if s, _, _ := do(t, b, http.MethodPost, "/v1/messages/count_tokens", jsonBody); s != 200 {
		t.Fatalf("count_tokens: status %d", s)
	}
	st := e.gw.Stats()
	e.gw.Close() // waits for usage being stored
	recs := e.usage.wait(t, 0)
	slices.SortFunc(recs, func(a, b usageRecord) int { return strings.Compare(a.Folder, b.Folder) })
	reqs := fake.Requests()
	today := time.Now().Format("2006-01-02")
	want := []usageRecord{
		{"alpha", today, int64(reqs[0].Usage.InputTokens), int64(reqs[0].Usage.OutputTokens)},
		{"beta", today, int64(reqs[1].Usage.InputTokens), int64(reqs[1].Usage.OutputTokens)},
	}
	if len(recs) != 2 || recs[0] != want[0] || recs[1] != want[1] || want[0].In == 0 || want[1].Out == 0 {
		t.Fatalf("usage %+v, want %+v", recs, want)
	}
	if st["alpha"].APIRequests != 1 || st["beta"].APIRequests != 3 || st["alpha"].InputTokens != want[0].In || st["beta"].OutputTokens != want[1].Out {
		t.Errorf("stats %+v", st)
	}
	if lines := e.log.lines(t, "api"); len(lines) != 4 || lines[0]["group"] != "alpha" || lines[0]["output_tokens"] != float64(want[0].Out) {
		t.Errorf("api log lines: %v", lines)
	}
}

func TestAPIUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, "http://"+addr), APIKey: realKey})
	ep := e.open(t, "g", false, egress.Policy{})
	status, body, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody)
	if status != http.StatusBadGateway || !strings.Contains(body, `"api_error"`) || !strings.Contains(body, "upstream API unreachable") {
		t.Fatalf("status %d body %s; want 502 api_error", status, body)
	}
	if strings.Contains(body, realKey) || strings.Contains(e.log.String(), realKey) {
		t.Fatal("the real key leaked into an answer or the log")
	}
}

// A stream the container abandons is still counted once, with what had
// passed, and logged.
func TestAPIStreamCutShort(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":33,\"output_tokens\":1}}}\n\n")
		w.(http.Flusher).Flush()
		for r.Context().Err() == nil {
			io.WriteString(w, ": keep-alive\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	}))
	defer upstream.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey})
	ep := e.open(t, "g", false, egress.Policy{})
	req, _ := http.NewRequest(http.MethodPost, "http://gateway/v1/messages", strings.NewReader(streamBody))
	resp, err := client(ep).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "message_start") {
		t.Fatalf("first line %q, %v", line, err)
	}
	resp.Body.Close()
	e.log.waitLines(t, "api", 1)
	e.gw.Close()
	if recs := e.usage.wait(t, 0); len(recs) != 1 || recs[0].In != 33 || recs[0].Out != 1 {
		t.Fatalf("usage %+v, want one record of 33 in, 1 out", recs)
	}
}
