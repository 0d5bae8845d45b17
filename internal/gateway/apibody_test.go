package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// R5: a /v1/messages body that would make the API reach out for the group
// (MCP connectors, server tools, url sources) or read the key's Files-API
// objects (file sources, containers) is refused before anything goes
// upstream; web tools and url sources only for a group with public egress.
func TestAPIBodyRefusals(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":1}`)
	}))
	defer upstream.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey})
	public := e.open(t, "pub", false, egress.Policy{Mode: egress.Public})
	listed := e.open(t, "listed", false, egress.Policy{Mode: egress.Allowlist})

	msg := func(content string) string {
		return `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":` + content + `}]}`
	}
	file := `{"type":"file","file_id":"file_011"}`
	url := `{"type":"url","url":"https://example.com/x.png"}`
	cases := []struct {
		name             string
		body             string
		public, allowlst bool // allowed for a public group, for an allowlist group
	}{
		{"plain text", msg(`"hello"`), true, true},
		{"client tools", `{"model":"m","tools":[{"name":"Bash","input_schema":{"type":"object","properties":{"file_id":{"type":"url"}}}},{"type":"custom","name":"x"}],"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"x","input":{"file_id":"file_1","type":"url","source":{"type":"file"}}}]}]}`, true, true},
		{"base64 image", msg(`[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}}]`), true, true},
		{"mcp servers", `{"model":"m","mcp_servers":[{"type":"url","url":"https://evil.example/mcp","name":"x"}],"messages":[]}`, false, false},
		{"container", `{"model":"m","container":"container_011","messages":[]}`, false, false},
		{"code execution", `{"model":"m","tools":[{"type":"code_execution_20250825","name":"code_execution"}],"messages":[]}`, false, false},
		{"unknown server tool", `{"model":"m","tools":[{"type":"future_tool_20270101","name":"f"}],"messages":[]}`, false, false},
		{"mcp toolset", `{"model":"m","tools":[{"type":"mcp_toolset","mcp_server_name":"x"}],"messages":[]}`, false, false},
		{"web search", `{"model":"m","tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[]}`, true, false},
		{"web fetch", `{"model":"m","tools":[{"type":"web_fetch_20250910","name":"web_fetch"}],"messages":[]}`, true, false},
		{"file image", msg(`[{"type":"image","source":` + file + `}]`), false, false},
		{"file document", msg(`[{"type":"document","source":` + file + `}]`), false, false},
		{"container upload", msg(`[{"type":"container_upload","file_id":"file_011"}]`), false, false},
		{"file in a tool result", msg(`[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":` + file + `}]}]`), false, false},
		{"file in a content document", msg(`[{"type":"document","source":{"type":"content","content":[{"type":"image","source":` + file + `}]}}]`), false, false},
		{"file in the system prompt", `{"model":"m","system":[{"type":"document","source":` + file + `}],"messages":[]}`, false, false},
		{"url image", msg(`[{"type":"image","source":` + url + `}]`), true, false},
		{"url in a tool result", msg(`[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":` + url + `}]}]`), true, false},
		{"mcp tool use block", msg(`[{"type":"mcp_tool_use","id":"x","name":"y","server_name":"z","input":{}}]`), false, false},
		{"not JSON", `mcp_servers`, false, false},
		{"an array", `[{"mcp_servers":1}]`, false, false},
		{"deep nesting", msg(strings.Repeat(`[{"type":"tool_result","content":`, 8) + `"x"` + strings.Repeat(`}]`, 8)), false, false},
	}
	for _, tc := range cases {
		for _, g := range []struct {
			ep      *Endpoint
			allowed bool
		}{{public, tc.public}, {listed, tc.allowlst}} {
			mu.Lock()
			before := len(seen)
			mu.Unlock()
			_, _, resp := rawRequest(t, g.ep, fmt.Sprintf("POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				ipc.PlaceholderAPIKey, len(tc.body), tc.body))
			b, _ := io.ReadAll(resp.Body)
			mu.Lock()
			reached := len(seen) > before
			mu.Unlock()
			who := g.ep.group.Folder
			if g.allowed {
				if resp.StatusCode != http.StatusOK || !reached {
					t.Errorf("%s (%s): status %d %s, reached upstream %v; want it forwarded", tc.name, who, resp.StatusCode, b, reached)
				}
				continue
			}
			var got struct {
				Error struct{ Type, Message string }
			}
			json.Unmarshal(b, &got)
			if resp.StatusCode != http.StatusForbidden || got.Error.Type != "permission_error" || reached {
				t.Errorf("%s (%s): status %d %s, reached upstream %v; want 403 permission_error and nothing upstream", tc.name, who, resp.StatusCode, b, reached)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, body := range seen {
		if strings.Contains(body, "file_011") && !strings.Contains(body, "tool_use") {
			t.Errorf("a Files-API reference reached the upstream: %s", body)
		}
	}
}

// A group has at most maxAPICalls API calls in flight; one more is told to
// slow down (429) and never reaches the upstream.
func TestAPICallsInFlightCapped(t *testing.T) {
	release := make(chan struct{})
	var (
		mu      sync.Mutex
		arrived int
	)
	in := make(chan struct{}, 2*maxAPICalls)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		arrived++
		mu.Unlock()
		in <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":1}`)
	}))
	defer upstream.Close()
	defer close(release)
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey})
	ep := e.open(t, "g", false, egress.Policy{})
	req := fmt.Sprintf("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(jsonBody), jsonBody)
	for i := 0; i < maxAPICalls; i++ {
		c, err := net.Dial("unix", ep.path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, req)
		<-in // held at the upstream
	}
	_, _, resp := rawRequest(t, ep, req)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("call %d: status %d, want 429", maxAPICalls+1, resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if arrived != maxAPICalls {
		t.Errorf("the upstream saw %d calls, want %d", arrived, maxAPICalls)
	}
}

// The check reads keys as encoding/json does (any case, the last of two
// equal keys); another server may not. So a key that only folds to one the
// check reads, and a key twice in one object, are refused outright.
func TestAPIBodyKeyTricks(t *testing.T) {
	mcp := `[{"type":"url","url":"https://evil.example/mcp","name":"x"}]`
	for _, body := range []string{
		`{"mcp_servers":` + mcp + `,"MCP_SERVERS":null,"messages":[]}`,
		`{"mcp_servers":` + mcp + `,"mcp_ſervers":null,"messages":[]}`,
		`{"mcp_servers":` + mcp + `,"mcp_servers":null,"messages":[]}`,
		`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png","Type":"base64"}}]}]}`,
		`{"tools":[{"type":"code_execution_20250825","TYPE":"custom"}],"messages":[]}`,
		`{"Messages":[],"messages":[]}`,
		`{"messages":[{"role":"user","content":"a","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`,
	} {
		if err := checkMessagesBody([]byte(body), egress.None); err == nil {
			t.Errorf("accepted: %s", body)
		}
	}
	// Ordinary bodies, with keys the check does not read in any case, pass.
	for _, body := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":{"User_ID":"x","user_id":"y"}}`,
		`{"model":"m","tools":[{"name":"Bash","input_schema":{"type":"object","properties":{"Type":{"type":"string"},"TYPE":{}}}}],"messages":[]}`,
	} {
		if err := checkMessagesBody([]byte(body), egress.None); err != nil {
			t.Errorf("refused %s: %v", body, err)
		}
	}
}
