package gateway

// Fuzz targets of the gateway's request decoding. CI runs each briefly:
//
//	go test -run='^$' -fuzz='^FuzzAPIAllowlist$' -fuzztime=5s ./internal/gateway
//	go test -run='^$' -fuzz='^FuzzIPCRouting$' -fuzztime=5s ./internal/gateway
//	go test -run='^$' -fuzz='^FuzzOutputBody$' -fuzztime=5s ./internal/gateway
//	go test -run='^$' -fuzz='^FuzzToolBody$' -fuzztime=5s ./internal/gateway
//
// The seeds below run as ordinary tests with every `go test`.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// fuzzEndpoint is an open endpoint of a gateway that logs nothing, denies
// all egress, and whose upstream records every request it gets.
type fuzzEndpoint struct {
	ep       *Endpoint
	handler  *testHandler
	mu       sync.Mutex
	upstream []string // "METHOD /path?query" as the upstream got them
}

func newFuzzEndpoint(f *testing.F) *fuzzEndpoint {
	fe := &fuzzEndpoint{handler: newTestHandler()}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fe.mu.Lock()
		fe.upstream = append(fe.upstream, r.Method+" "+r.RequestURI)
		fe.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":1}`)
	}))
	f.Cleanup(up.Close)
	fe.handler.toolRes = map[string]bool{"ok": true}
	u, err := url.Parse(up.URL)
	if err != nil {
		f.Fatal(err)
	}
	// A long poll ends at once: nothing is ever queued for it.
	gw := New(Options{Upstream: u, APIKey: realKey, Handler: fe.handler, Tools: fe.handler, Logger: discardLogger(),
		Resolver: &testResolver{}, Dial: (&testDialer{}).Dial, PollTimeout: time.Millisecond})
	f.Cleanup(func() { gw.Close() })
	ep, err := gw.Open(Caller{Folder: "fuzz"}, egress.Policy{Mode: egress.None}, filepath.Join(f.TempDir(), "ipc"), -1, -1)
	if err != nil {
		f.Fatal(err)
	}
	fe.ep = ep
	return fe
}

// serve parses raw as a request, as the socket's server would, and serves
// it; ok is false if the server would have refused it unparsed.
func (fe *fuzzEndpoint) serve(raw string) (rec *httptest.ResponseRecorder, r *http.Request, ok bool) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil, nil, false
	}
	rec = httptest.NewRecorder()
	fe.ep.ServeHTTP(rec, r.WithContext(context.Background()))
	return rec, r, true
}

func (fe *fuzzEndpoint) takeUpstream() []string {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	got := fe.upstream
	fe.upstream = nil
	return got
}

// R5: whatever the method and request target, the upstream gets a request
// only when the allowlist names it, and then exactly that one; everything
// else is answered by the gateway itself.
func FuzzAPIAllowlist(f *testing.F) {
	for _, seed := range [][2]string{
		{"POST", "/v1/messages?beta=true"}, {"POST", "/v1/messages"}, {"POST", "/v1/messages/count_tokens?beta=true"},
		{"GET", "/v1/files"}, {"DELETE", "/v1/files/x"}, {"POST", "/v1/messages/batches"}, {"TRACE", "/v1/messages"},
		{"POST", "/v1/messages/../files"}, {"POST", "/v1/messages/%2e%2e/files"}, {"POST", "/v1//messages"},
		{"POST", "/V1/messages"}, {"POST", "/v1/%6Dessages"}, {"POST", "/v1/messages?beta=true&x=1"},
		{"POST", "http://127.0.0.1:3128/v1/messages?beta=true"}, {"POST", "http://localhost:3128/v1/files"},
		{"POST", "//v1/messages"}, {"GET", "/v1/models"}, {"post", "/v1/messages"}, {"POST", "/ipc/../v1/messages"},
		{"POST", "*"}, {"CONNECT", "api.anthropic.com:443"}, {"POST", "http://api.anthropic.com/v1/messages"},
	} {
		f.Add(seed[0], seed[1])
	}
	fe := newFuzzEndpoint(f)
	f.Fuzz(func(t *testing.T, method, target string) {
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gateway\r\nContent-Length: 2\r\n\r\n{}", method, target)
		rec, r, ok := fe.serve(raw)
		if !ok {
			return
		}
		got := fe.takeUpstream()
		// The allowed call as the gateway itself sees it: origin form, or
		// an absolute URL naming the gateway.
		want := ""
		if r.Method != http.MethodConnect && (r.URL.Host == "" || isSelf(r.URL)) && apiAllowed[r.Method+" "+apiTarget(r)] {
			want = r.Method + " " + apiTarget(r)
		}
		switch {
		case want == "" && len(got) > 0:
			t.Fatalf("%q: the upstream got %q, which the allowlist does not name", raw, got)
		case want != "" && (len(got) != 1 || got[0] != want):
			t.Fatalf("%q: the upstream got %q, want exactly %q", raw, got, want)
		case want == "" && !strings.HasPrefix(r.URL.Path, "/ipc/") && r.URL.Host == "" && r.Method != http.MethodConnect &&
			rec.Code != http.StatusForbidden:
			t.Fatalf("%q: status %d, want 403", raw, rec.Code)
		}
		for _, g := range got {
			if m, tgt, _ := strings.Cut(g, " "); !apiAllowed[m+" "+tgt] {
				t.Fatalf("%q: the upstream got %q", raw, g)
			}
		}
	})
}

// /ipc paths reach the host's Handler only when clean and unencoded, and
// then under the endpoint's group whatever the request says.
func FuzzIPCRouting(f *testing.F) {
	for _, seed := range [][2]string{
		{"GET", ipc.PathNext}, {"POST", ipc.PathOutput}, {"POST", ipc.PathToolPrefix + "send_message"},
		{"POST", ipc.PathToolPrefix + "x"}, {"POST", "/ipc/tool/../tool/x"}, {"POST", "/ipc/tool/send%5Fmessage"},
		{"POST", "/ipc/tool//x"}, {"POST", "/ipc/tool/X"}, {"POST", "/ipc/./tool/x"}, {"POST", "/ipc/tool/x/"},
		{"POST", "http://127.0.0.1:3128/ipc/tool/x"}, {"POST", "/ipc/tool/" + strings.Repeat("a", 65)},
	} {
		f.Add(seed[0], seed[1])
	}
	fe := newFuzzEndpoint(f)
	f.Fuzz(func(t *testing.T, method, target string) {
		before := len(fe.handler.recorded())
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gateway\r\nContent-Length: 2\r\n\r\n{}", method, target)
		rec, r, ok := fe.serve(raw)
		if !ok {
			return
		}
		if len(fe.takeUpstream()) > 0 && !apiAllowed[r.Method+" "+apiTarget(r)] {
			t.Fatalf("%q reached the upstream", raw)
		}
		calls := fe.handler.recorded()[before:]
		if len(calls) == 0 {
			return
		}
		p := r.URL.Path
		switch {
		case len(calls) != 1:
			t.Fatalf("%q: the handler got %q", raw, calls)
		case rec.Code != http.StatusOK && rec.Code != http.StatusNoContent && rec.Code != http.StatusConflict:
			t.Fatalf("%q: handled, but status %d", raw, rec.Code)
		case r.URL.RawPath != "" || path.Clean(p) != p:
			t.Fatalf("%q: path %q (raw %q) is not clean, yet the handler got %q", raw, p, r.URL.RawPath, calls)
		case p == ipc.PathNext && r.Method == http.MethodGet:
		case p == ipc.PathOutput && r.Method == http.MethodPost:
		case strings.HasPrefix(p, ipc.PathToolPrefix) && r.Method == http.MethodPost && ipc.ValidToolName(strings.TrimPrefix(p, ipc.PathToolPrefix)):
			if want := "tool fuzz/other " + strings.TrimPrefix(p, ipc.PathToolPrefix) + " {}"; calls[0] != want {
				t.Fatalf("%q: the handler got %q, want %q", raw, calls[0], want)
			}
		default:
			t.Fatalf("%q: %s %s reached the handler: %q", raw, r.Method, p, calls)
		}
	})
}

// An output body the gateway accepts is one JSON object of known fields
// that validates, within every cap, and encodes back to the same Output.
func FuzzOutputBody(f *testing.F) {
	for _, seed := range []string{
		`{"input_id":"p1","result":"ok","session_id":"0b5e-11","usage":{"input_tokens":1,"output_tokens":2}}`,
		`{"input_id":"p1","is_error":true,"error":"boom","duration_ms":5}`,
		`{"input_id":"p1","result":"\u00e9\ud83d\ude00<>&"}`,
		`{"input_id":"../x"}`, `{"input_id":"p1","folder":"main"}`, `{"input_id":"p1"}x`, `["p1"]`, ``, `{}`,
		`{"input_id":"p1","result":"\xff"}`, `{"input_id":"p1","usage":{"input_tokens":-1}}`,
		`{"input_id":"p1","usage":{"input_tokens":1e400}}`, `{"input_id":"p1","session_id":"--resume"}`,
		`{"input_id":"p1","input_id":"p2"}`, `{"input_id":"p1","Result":"case"}`, ` {"input_id":"p1"} `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var out ipc.Output
		if ipc.DecodeStrict(body, &out) != nil || out.Validate() != nil {
			return
		}
		if len(body) > ipc.MaxOutputBytes || !utf8.ValidString(out.Result) || len(out.Result) > ipc.MaxResultBytes ||
			len(out.Error) > ipc.MaxErrorBytes || len(out.InputID) > 64 || len(out.SessionID) > 128 {
			t.Fatalf("accepted an output over its caps: %q", body)
		}
		again, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var back ipc.Output
		if err := ipc.DecodeStrict(again, &back); err != nil || back != out || back.Validate() != nil {
			t.Fatalf("accepted %q, but its encoding %q decodes to %+v, %v", body, again, back, err)
		}
	})
}

// Tool arguments the gateway hands the host are one JSON object; those of
// send_message validate.
func FuzzToolBody(f *testing.F) {
	for _, seed := range [][2]string{
		{"send_message", `{"text":"hi"}`}, {"send_message", `{"text":"  "}`}, {"send_message", `{"text":"hi","chat":"x"}`},
		{"send_message", `{"text":"` + strings.Repeat("x", 100) + `"}`}, {"send_message", `{"text":"\ud800"}`},
		{"schedule_task", `{"prompt":"p","schedule_type":"once","schedule_value":"2030-01-01T00:00:00"}`},
		{"x", `{}`}, {"x", `[]`}, {"x", `{"a":1} {}`}, {"x", `{"a":`}, {"x", ` {"a":[1,{"b":null}]}`}, {"x", `"str"`},
		{"x", `{"a":1,"a":2}`}, {"Bad-Name", `{}`}, {"", `{}`},
	} {
		f.Add(seed[0], []byte(seed[1]))
	}
	fe := newFuzzEndpoint(f)
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		if !ipc.ValidToolName(name) {
			return
		}
		before := len(fe.handler.recorded())
		req := httptest.NewRequest(http.MethodPost, ipc.PathToolPrefix+name, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		fe.ep.ServeHTTP(rec, req)
		var resp ipc.ToolResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%s %q: the answer is not a ToolResponse: %q", name, body, rec.Body)
		}
		calls := fe.handler.recorded()[before:]
		if len(calls) == 0 {
			if rec.Code == http.StatusOK && resp.Error == "" {
				t.Fatalf("%s %q: not handled, yet answered 200 without an error", name, body)
			}
			return
		}
		if ipc.DecodeStrict(body, &map[string]json.RawMessage{}) != nil {
			t.Fatalf("%s %q: handled, but the body is not one JSON object", name, body)
		}
		if name == "send_message" {
			var a ipc.SendMessageArgs
			if ipc.DecodeStrict(body, &a) != nil || a.Validate() != nil {
				t.Fatalf("send_message %q: handled with invalid arguments", body)
			}
		}
		if want := "tool fuzz/other " + name + " " + string(body); len(calls) != 1 || calls[0] != want {
			t.Fatalf("the handler got %q, want %q", calls, want)
		}
	})
}
