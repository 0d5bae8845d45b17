package mcpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nanoclaw/nanoclaw/internal/incontainer/fakegateway"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/hostclient"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// fakeCaller records calls and answers with resp/err.
type fakeCaller struct {
	mu    sync.Mutex
	calls []string // name + " " + args
	resp  ipc.ToolResponse
	err   error
}

func (f *fakeCaller) CallTool(_ context.Context, name string, args json.RawMessage) (ipc.ToolResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+" "+string(args))
	return f.resp, f.err
}

func (f *fakeCaller) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// connect serves tools over an in-memory transport and returns a client
// session on it.
func connect(t *testing.T, c Caller, tools []ipc.ToolSpec) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := New(c, tools, nil).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args any) (*mcp.CallToolResult, string) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("CallTool %s: %v", name, err)
	}
	var texts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			texts = append(texts, tc.Text)
		}
	}
	return res, strings.Join(texts, "\n")
}

func TestToolsList(t *testing.T) {
	cs := connect(t, &fakeCaller{}, ipc.Tools)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	want := []string{"cancel_task", "configure_group", "get_task", "list_available_groups", "list_tasks", "pause_task",
		"refresh_groups", "register_group", "resume_task", "schedule_task", "send_file", "send_message", "update_task"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v; want %v", names, want)
	}
	tool := res.Tools[slices.IndexFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "send_message" })]
	if tool.Name != "send_message" || !strings.Contains(tool.Description, "Scheduled tasks must use it") {
		t.Errorf("tool %q: description %q", tool.Name, tool.Description)
	}
	b, _ := json.Marshal(tool.InputSchema)
	var schema struct {
		Type       string `json:"type"`
		Properties map[string]struct {
			Type        string `json:"type"`
			Description string `json:"description"`
		} `json:"properties"`
		Required             []string `json:"required"`
		AdditionalProperties any      `json:"additionalProperties"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	text := schema.Properties["text"]
	if schema.Type != "object" || len(schema.Properties) != 1 || text.Type != "string" || text.Description == "" ||
		!slices.Equal(schema.Required, []string{"text"}) || schema.AdditionalProperties == nil {
		t.Errorf("send_message schema %s", b)
	}
}

func TestCallForwardsToTheHost(t *testing.T) {
	fc := &fakeCaller{resp: ipc.ToolResponse{Result: json.RawMessage(`{"delivered":true}`)}}
	cs := connect(t, fc, ipc.Tools)
	res, text := call(t, cs, "send_message", map[string]any{"text": "hello *world*"})
	if res.IsError || text != `{"delivered":true}` {
		t.Errorf("result %q (error %v)", text, res.IsError)
	}
	if got := fc.Calls(); len(got) != 1 || got[0] != `send_message {"text":"hello *world*"}` {
		t.Errorf("host calls %q", got)
	}
}

func TestCallErrors(t *testing.T) {
	cases := []struct {
		name   string
		caller *fakeCaller
		args   any
		want   string // in the error text
		asked  bool   // whether the host was asked
	}{
		{"host refuses", &fakeCaller{resp: ipc.ToolResponse{Error: "not permitted for this group"}},
			map[string]any{"text": "hi"}, "not permitted for this group", true},
		{"host unreachable", &fakeCaller{err: errors.New("dial unix: no such file")},
			map[string]any{"text": "hi"}, "could not be reached", true},
		{"blank text", &fakeCaller{}, map[string]any{"text": "  \n"}, "text is empty", false},
		{"missing text", &fakeCaller{}, map[string]any{}, "text", false},
		{"unknown argument", &fakeCaller{}, map[string]any{"text": "hi", "chat_jid": "someone-else"}, "chat_jid", false},
		{"text too long", &fakeCaller{}, map[string]any{"text": strings.Repeat("a", ipc.MaxMessageBytes+1)}, "at most", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := connect(t, c.caller, ipc.Tools)
			res, text := call(t, cs, "send_message", c.args)
			if !res.IsError || !strings.Contains(text, c.want) {
				t.Errorf("result %q (error %v); want a tool error containing %q", text, res.IsError, c.want)
			}
			if asked := len(c.caller.Calls()) > 0; asked != c.asked {
				t.Errorf("host asked: %v, want %v", asked, c.asked)
			}
		})
	}
}

// A later tool is one declaration; optional arguments are those with
// omitempty.
func TestForwardDeclaresOptionalArguments(t *testing.T) {
	type args struct {
		Prompt      string `json:"prompt"`
		TargetGroup string `json:"target_group,omitempty"`
	}
	tool := ipc.NewToolSpec[args]("schedule_task", ipc.Groups, "Schedule a task.", map[string]string{
		"prompt": "what to do", "target_group": "another group's folder (main only)",
	})
	fc := &fakeCaller{resp: ipc.ToolResponse{Result: json.RawMessage(`{"id":"t1"}`)}}
	cs := connect(t, fc, []ipc.ToolSpec{tool})
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.Tools[0].InputSchema)
	var schema struct {
		Required []string `json:"required"`
	}
	json.Unmarshal(b, &schema)
	if !slices.Equal(schema.Required, []string{"prompt"}) {
		t.Errorf("required %v, want [prompt]: %s", schema.Required, b)
	}
	if r, text := call(t, cs, "schedule_task", map[string]any{"prompt": "water the plants"}); r.IsError || text != `{"id":"t1"}` {
		t.Errorf("call: %q", text)
	}
	if got := fc.Calls(); len(got) != 1 || got[0] != `schedule_task {"prompt":"water the plants"}` {
		t.Errorf("host calls %q", got)
	}
}

func TestForwardRejectsBadDeclarations(t *testing.T) {
	type args struct {
		A string `json:"a"`
	}
	for name, params := range map[string]map[string]string{
		"undescribed argument":   {},
		"description of nothing": {"a": "x", "b": "y"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			New(&fakeCaller{}, []ipc.ToolSpec{ipc.NewToolSpec[args]("x", ipc.Groups, "x", params)}, nil)
		})
	}
}

// The handshake as Claude Code 2.1.332 opens it (recorded from the real
// binary): a server/discover probe at 2026-07-28, answered with an error,
// then the initialize handshake at 2025-11-25.
func TestClaudeCodeHandshake(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- New(&fakeCaller{}, ipc.Tools, nil).Run(ctx, &mcp.IOTransport{Reader: inR, Writer: outW})
	}()
	out := bufio.NewScanner(outR)
	out.Buffer(nil, 1<<20)
	roundTrip := func(line string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
		if !out.Scan() {
			t.Fatalf("no answer to %s", line)
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	const clientInfo = `{"name":"claude-code","title":"Claude Code","version":"2.1.332","description":"Anthropic's agentic coding tool","websiteUrl":"https://claude.com/claude-code"}`
	probe := roundTrip(`{"jsonrpc":"2.0","id":"server-discover-probe-1","method":"server/discover","params":{"_meta":{` +
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":` + clientInfo +
		`,"io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":true},"elicitation":{"form":{},"url":{}}}}}}`)
	if e, _ := probe["error"].(map[string]any); e == nil || probe["id"] != "server-discover-probe-1" {
		t.Fatalf("discover probe answered %v; want an error", probe)
	}
	init := roundTrip(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true},` +
		`"elicitation":{"form":{},"url":{}}},"clientInfo":` + clientInfo + `}}`)
	res, _ := init["result"].(map[string]any)
	if res == nil || res["protocolVersion"] != "2025-11-25" {
		t.Fatalf("initialize answered %v", init)
	}
	if info, _ := res["serverInfo"].(map[string]any); info["name"] != ServerName {
		t.Errorf("server info %v", res["serverInfo"])
	}
	io.WriteString(inW, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	list := roundTrip(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if r, _ := list["result"].(map[string]any); r == nil || !strings.Contains(mustJSON(r["tools"]), `"send_message"`) {
		t.Errorf("tools/list answered %v", list)
	}
	inW.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("server did not end when its input closed")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The whole way: MCP call → hostclient → the gateway socket → the host's
// answer back as the tool result.
func TestCallThroughTheGatewaySocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "mcp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	gw, err := fakegateway.New(filepath.Join(dir, "gw.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	gw.Tool("send_message", func(args json.RawMessage) ipc.ToolResponse {
		var a ipc.SendMessageArgs
		if json.Unmarshal(args, &a) != nil || a.Text == "refuse me" {
			return ipc.ToolResponse{Error: "the host refused: " + string(args)}
		}
		return ipc.ToolResponse{Result: json.RawMessage(`{"delivered":true}`)}
	})
	hc := hostclient.New(filepath.Join(dir, "gw.sock"), nil)
	defer hc.Close()
	cs := connect(t, hc, ipc.Tools)

	if res, text := call(t, cs, "send_message", map[string]any{"text": "hello"}); res.IsError || text != `{"delivered":true}` {
		t.Errorf("send: %q (error %v)", text, res.IsError)
	}
	if res, text := call(t, cs, "send_message", map[string]any{"text": "refuse me"}); !res.IsError || !strings.Contains(text, "the host refused") {
		t.Errorf("refused send: %q (error %v)", text, res.IsError)
	}
	calls := gw.ToolCalls()
	if len(calls) != 2 || calls[0].Name != "send_message" || string(calls[0].Args) != `{"text":"hello"}` {
		t.Errorf("gateway saw %+v", calls)
	}
}

// Optional arguments are optional in the schema the model sees.
func TestOptionalArgumentsAreNotRequired(t *testing.T) {
	cs := connect(t, &fakeCaller{}, ipc.Tools)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range res.Tools {
		if tl.Name != "schedule_task" && tl.Name != "update_task" && tl.Name != "send_file" {
			continue
		}
		b, _ := json.Marshal(tl.InputSchema)
		var schema struct {
			Required []string `json:"required"`
		}
		json.Unmarshal(b, &schema)
		slices.Sort(schema.Required)
		want := map[string][]string{"schedule_task": {"prompt", "schedule_type", "schedule_value"}, "update_task": {"task_id"},
			"send_file": {"path"}}[tl.Name]
		if !slices.Equal(schema.Required, want) {
			t.Errorf("%s requires %v, want %v", tl.Name, schema.Required, want)
		}
	}
}

// send_file reaches the model with its two arguments, and goes to the host
// as given; a path no host could accept is answered here.
func TestSendFileIsOffered(t *testing.T) {
	fc := &fakeCaller{resp: ipc.ToolResponse{Result: json.RawMessage(`{"delivered":true}`)}}
	cs := connect(t, fc, ipc.Tools)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Tools, func(tl *mcp.Tool) bool { return tl.Name == "send_file" })
	if i < 0 {
		t.Fatal("send_file is not offered")
	}
	b, _ := json.Marshal(res.Tools[i].InputSchema)
	var schema struct {
		Properties map[string]struct {
			Type        string `json:"type"`
			Description string `json:"description"`
		} `json:"properties"`
	}
	json.Unmarshal(b, &schema)
	if len(schema.Properties) != 2 || schema.Properties["path"].Type != "string" || schema.Properties["caption"].Description == "" ||
		!strings.Contains(res.Tools[i].Description, "/workspace/group/media/") {
		t.Errorf("send_file: %q, schema %s", res.Tools[i].Description, b)
	}
	if r, text := call(t, cs, "send_file", map[string]any{"path": "media/a.jpg", "caption": "look"}); r.IsError || text != `{"delivered":true}` {
		t.Errorf("send_file: %q (error %v)", text, r.IsError)
	}
	if r, text := call(t, cs, "send_file", map[string]any{"path": "a\x00b"}); !r.IsError || !strings.Contains(text, "NUL") {
		t.Errorf("send_file of a path with NUL: %q (error %v)", text, r.IsError)
	}
	if got := fc.Calls(); len(got) != 1 || got[0] != `send_file {"path":"media/a.jpg","caption":"look"}` {
		t.Errorf("host calls %q", got)
	}
}
