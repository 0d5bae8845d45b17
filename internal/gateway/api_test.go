package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

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

// postStream posts streamBody to path on ep and returns the response as
// it starts; its body is closed when the test ends.
func postStream(t *testing.T, ep *Endpoint, path string) *http.Response {
	t.Helper()
	resp, err := client(ep).Post("http://gateway"+path, "application/json", strings.NewReader(streamBody))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
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
	for i, path := range []string{"/v1/messages?beta=true", "/v1/messages?beta=true", "/v1/messages/count_tokens?beta=true"} {
		status, got, _ := do(t, ep, http.MethodPost, path, streamBody, containerHeaders...)
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
	if reqs[0].Path != "/v1/messages" || reqs[0].Query.Get("beta") != "true" || reqs[2].Path != "/v1/messages/count_tokens" {
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

// R5: only the API calls Claude Code makes reach the upstream, spelled
// exactly as it spells them; every other method, path, query or encoding
// is refused with 403 in the API's error shape and one log line, and the
// upstream never sees it.
func TestAPIAllowlist(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":1}`)
	}))
	defer upstream.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey})
	ep := e.open(t, "g", false, egress.Policy{})
	self := fmt.Sprintf("http://127.0.0.1:%d", ipc.ProxyPort)

	allowed := []string{
		"POST /v1/messages?beta=true",
		"POST /v1/messages",
		"POST /v1/messages/count_tokens?beta=true",
		"POST /v1/messages/count_tokens",
		"POST " + self + "/v1/messages?beta=true", // a client that sends API calls through HTTP_PROXY
	}
	refused := []string{
		// Other APIs under the same key (finding of the review: all of
		// these reached the upstream with the real key).
		"GET /v1/files", "GET /v1/files?beta=true", "POST /v1/files", "DELETE /v1/files/x",
		"GET /v1/files/x/content", "POST /v1/messages/batches", "POST /v1/messages/batches?beta=true",
		"GET /v1/messages/batches", "GET /v1/messages/batches/b1/results", "POST /v1/messages/batches/b1/cancel",
		"GET /v1/models", "GET /v1/models?beta=true", "GET /v1/models/claude-x", "POST /v1/complete",
		"GET /v1/skills", "GET /v1/organizations/me", "POST /v1/messages/cache_touch",
		// Other methods on the allowed paths.
		"TRACE /v1/messages", "GET /v1/messages", "PUT /v1/messages", "DELETE /v1/messages", "PATCH /v1/messages",
		"OPTIONS /v1/messages", "HEAD /v1/messages", "GET /v1/messages/count_tokens", "post /v1/messages",
		"PROPFIND /v1/messages",
		// Other spellings of paths: dot segments, encodings, slashes, case.
		"POST /v1/messages/../files", "POST /v1/messages/%2e%2e/files", "POST /v1/%2e%2e/v1/files",
		"POST /v1/messages/%2E%2E/batches", "POST /v1/messages/count_tokens/../../files",
		"POST /v1/./messages", "POST /v1/messages/.", "POST /v1//messages", "POST //v1/messages",
		"POST /v1/messages/", "POST /V1/messages", "POST /v1/Messages", "POST /v1/%6Dessages",
		"POST /v1/messages%2fbatches", "POST /v1/messages%2Fbatches", "POST /%76%31/messages",
		"POST /v1/messages;x", "POST /v1/messages%00", "POST /v1/messages#frag", "POST /v1/messages\\..\\files",
		// Other queries.
		"POST /v1/messages?", "POST /v1/messages?beta=false", "POST /v1/messages?beta=true&x=1",
		"POST /v1/messages?BETA=true", "POST /v1/messages?beta=true%26limit=1000", "POST /v1/messages/count_tokens?beta",
		// Not the API at all.
		"GET /", "HEAD /api/hello", "GET /v1", "POST /v1", "GET /v2/models", "POST /api/oauth/token",
		"GET /ipc", "POST " + self + "/v1/files", "GET " + self + "/v1/models",
	}
	request := func(line string) *http.Response {
		t.Helper()
		_, _, resp := rawRequest(t, ep, fmt.Sprintf("%s HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			line, ipc.PlaceholderAPIKey, len(jsonBody), jsonBody))
		return resp
	}
	for _, line := range refused {
		resp := request(line)
		if strings.HasPrefix(line, "HEAD ") {
			// The answer to HEAD has no body.
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%q: status %d, want 403", line, resp.StatusCode)
			}
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		var got struct {
			Type  string
			Error struct{ Type, Message string }
		}
		json.Unmarshal(b, &got)
		if resp.StatusCode != http.StatusForbidden || got.Type != "error" || got.Error.Type != "permission_error" ||
			!strings.Contains(got.Error.Message, "only POST /v1/messages and POST /v1/messages/count_tokens reach the API") {
			t.Errorf("%q: status %d %s; want 403 permission_error naming the allowed calls", line, resp.StatusCode, b)
		}
	}
	// One line per refusal, up to the socket's lines a minute (logGate).
	if lines := e.log.lines(t, "api refused"); len(lines) != min(len(refused), maxWarnLines) {
		t.Errorf("%d \"api refused\" log lines for %d refusals:\n%s", len(lines), len(refused), e.log)
	} else if lines[0]["group"] != "g" || lines[0]["method"] != "GET" || lines[0]["target"] != "/v1/files" {
		t.Errorf("first refusal logged as %v", lines[0])
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Errorf("the upstream saw refused requests: %q", seen)
	}
	mu.Unlock()

	for _, line := range allowed {
		if resp := request(line); resp.StatusCode != http.StatusOK {
			t.Errorf("%q: status %d, want 200", line, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"POST /v1/messages?beta=true", "POST /v1/messages", "POST /v1/messages/count_tokens?beta=true",
		"POST /v1/messages/count_tokens", "POST /v1/messages?beta=true"}
	if !slices.Equal(seen, want) {
		t.Errorf("upstream saw %q, want %q", seen, want)
	}
	if st := e.gw.Stats()["g"]; st.APIRequests != int64(len(allowed)) {
		t.Errorf("stats count %d API requests, want %d (refusals are not API requests)", st.APIRequests, len(allowed))
	}
}

// IPC paths must be clean: a dot segment or an encoding never reaches
// the API through /ipc/.
func TestIPCPathNotClean(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey})
	ep := e.open(t, "g", false, egress.Policy{})
	for _, line := range []string{"GET /ipc/../v1/models", "POST /ipc/%2e%2e/v1/files", "POST /ipc/tool/send%5Fmessage", "GET /ipc/session//next"} {
		_, _, resp := rawRequest(t, ep, line+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", line, resp.StatusCode)
		}
	}
	if n := len(fake.Requests()); n != 0 || len(e.handler.recorded()) != 0 {
		t.Fatalf("upstream saw %d requests, the handler %q", n, e.handler.recorded())
	}
}

// An API call the host cannot forward (no upstream, no credential, the
// upstream down) is answered in the API's error shape, which Claude Code
// shows, and never with the real key; without a credential nothing goes
// upstream.
func TestAPIHostNotReady(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	fake := fakeapi.New()
	defer fake.Close()
	for _, tc := range []struct {
		name          string
		opt           Options
		status        int
		typ, contains string
	}{
		{"no upstream", Options{APIKey: realKey}, http.StatusServiceUnavailable, "api_error", "no upstream API URL configured"},
		{"no credential", Options{Upstream: mustURL(t, fake.URL())}, http.StatusUnauthorized, "authentication_error",
			"no API credential configured on the host: set ANTHROPIC_API_KEY"},
		{"upstream down", Options{Upstream: mustURL(t, down), APIKey: realKey}, http.StatusBadGateway, "api_error", "upstream API unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opt)
			ep := e.open(t, "g", false, egress.Policy{})
			status, body, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody, containerHeaders...)
			var got struct {
				Type  string
				Error struct{ Type, Message string }
			}
			json.Unmarshal([]byte(body), &got)
			if status != tc.status || got.Type != "error" || got.Error.Type != tc.typ || !strings.Contains(got.Error.Message, tc.contains) {
				t.Fatalf("status %d body %s; want %d with an %s naming %q", status, body, tc.status, tc.typ, tc.contains)
			}
			if strings.Contains(body, realKey) || strings.Contains(e.log.String(), realKey) {
				t.Fatal("the real key leaked into an answer or the log")
			}
		})
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("upstream saw %d requests without a credential", n)
	}
}
