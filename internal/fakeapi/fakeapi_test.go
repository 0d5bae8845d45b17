package fakeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// mainBody is a Messages request body that IsMain counts as a main turn.
func mainBody(stream bool, extra string) string {
	return `{"model":"claude-test","max_tokens":100,"stream":` + boolStr(stream) + `,
		"system":[{"type":"text","text":"You are Claude Code."},{"type":"text","text":"second part"}],
		"tools":[{"name":"Bash"}],
		"messages":[{"role":"user","content":"first question"}` + extra + `]}`
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// post sends body to s's /v1/messages and returns the response.
func post(t *testing.T, s *Server, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", "k")
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// stream posts a streamed main request and assembles the answer.
func stream(t *testing.T, s *Server, body string) (*Answer, []Event) {
	t.Helper()
	resp := post(t, s, "/v1/messages?beta=true", body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d, content-type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	evs, err := ReadEvents(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Assemble(evs)
	if err != nil {
		t.Fatalf("%v\nevents: %v", err, names(evs))
	}
	return a, evs
}

func names(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out
}

func TestStreamText(t *testing.T) {
	s := New()
	defer s.Close()
	long := strings.Repeat("héllo wörld ", 10) // several deltas, multibyte runes at chunk edges
	s.Script(Text(long))
	a, evs := stream(t, s, mainBody(true, ""))
	if a.Text != long {
		t.Errorf("text = %q, want %q", a.Text, long)
	}
	if a.StopReason != "end_turn" || len(a.ToolUses) != 0 {
		t.Errorf("stop %q, tool uses %v", a.StopReason, a.ToolUses)
	}
	if a.Model != "claude-test" || !strings.HasPrefix(a.ID, "msg_") {
		t.Errorf("model %q id %q", a.Model, a.ID)
	}
	if a.Usage.InputTokens <= 0 || a.Usage.OutputTokens <= 0 {
		t.Errorf("usage %+v not positive", a.Usage)
	}
	deltas := 0
	for _, e := range evs {
		if e.Name == "content_block_delta" {
			deltas++
			var d struct{ Delta struct{ Text string } }
			json.Unmarshal(e.Data, &d)
			if !json.Valid(e.Data) || !utf8Valid(d.Delta.Text) {
				t.Errorf("delta splits a rune: %s", e.Data)
			}
		}
	}
	if deltas < 2 {
		t.Errorf("%d text deltas, want the text split in several", deltas)
	}
	want := []string{"message_start", "ping", "content_block_start"}
	if got := names(evs); strings.Join(got[:3], " ") != strings.Join(want, " ") ||
		strings.Join(got[len(got)-3:], " ") != "content_block_stop message_delta message_stop" {
		t.Errorf("event order %v", got)
	}
	r := s.Main(0)
	if r == nil || r.Usage != a.Usage || r.Status != 200 {
		t.Fatalf("recorded %+v, answered usage %+v", r, a.Usage)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestStreamToolUseAndCombine(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(Combine(
		Text("let me look"),
		ToolUse("Bash", map[string]any{"command": "echo marker-$((6*7))", "description": "a long enough input to be split"}),
		ToolUse("mcp__nanoclaw__send_message", map[string]string{"text": "hi"}),
	))
	a, _ := stream(t, s, mainBody(true, ""))
	if a.Text != "let me look" || a.StopReason != "tool_use" || len(a.ToolUses) != 2 {
		t.Fatalf("answer %+v", a)
	}
	var in struct{ Command string }
	if err := json.Unmarshal(a.ToolUses[0].Input, &in); err != nil || in.Command != "echo marker-$((6*7))" {
		t.Errorf("input %s (%v)", a.ToolUses[0].Input, err)
	}
	if a.ToolUses[0].Name != "Bash" || a.ToolUses[1].Name != "mcp__nanoclaw__send_message" ||
		a.ToolUses[0].ID == a.ToolUses[1].ID || !strings.HasPrefix(a.ToolUses[0].ID, "toolu_") {
		t.Errorf("tool uses %+v", a.ToolUses)
	}
}

func TestNonStreaming(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(Combine(Text("a"), ToolUse("Bash", map[string]string{"command": "true"})))
	resp := post(t, s, "/v1/messages", mainBody(false, ""))
	var m struct {
		Type       string
		StopReason string `json:"stop_reason"`
		Content    []struct{ Type, Text, Name, ID string }
		Usage      Usage
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "message" || m.StopReason != "tool_use" || len(m.Content) != 2 ||
		m.Content[0].Text != "a" || m.Content[1].Name != "Bash" || m.Usage.OutputTokens <= 0 || m.Usage.InputTokens <= 0 {
		t.Errorf("message %+v", m)
	}
}

func TestScriptOrderAuxAndDefault(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(Text("one"), Text("two"))
	aux := `{"model":"claude-haiku","max_tokens":1,"stream":true,"messages":[{"role":"user","content":"quota"}]}`
	if a, _ := stream(t, s, aux); a.Text != AuxText {
		t.Errorf("aux answered %q", a.Text)
	}
	if a, _ := stream(t, s, mainBody(true, "")); a.Text != "one" {
		t.Errorf("turn 0 answered %q", a.Text)
	}
	stream(t, s, aux)
	if a, _ := stream(t, s, mainBody(true, "")); a.Text != "two" {
		t.Errorf("turn 1 answered %q", a.Text)
	}
	if a, _ := stream(t, s, mainBody(true, "")); a.Text != DefaultText {
		t.Errorf("turn 2 answered %q", a.Text)
	}
	if got := len(s.MainRequests()); got != 3 {
		t.Errorf("%d main requests, want 3\n%s", got, s.Summary())
	}
	if got := len(s.Requests()); got != 5 {
		t.Errorf("%d requests, want 5", got)
	}
	if r := s.Main(1); r.Turn != 1 || r.Seq != 3 || !r.Main {
		t.Errorf("main 1 = %v", r)
	}
	if r := s.Requests()[0]; r.Main || r.Turn != -1 || r.Messages.MaxTokens != 1 {
		t.Errorf("aux recorded as %v", r)
	}
}

func TestIsMain(t *testing.T) {
	cases := []struct {
		body string
		want bool
	}{
		{`{"model":"claude-opus-5-5","max_tokens":128000,"stream":true,"tools":[{"name":"Bash"}],"messages":[]}`, true},
		{`{"model":"claude-haiku-4-5","max_tokens":32000,"stream":true,"tools":[{"name":"ToolSearch"}],"messages":[]}`, true},
		{`{"model":"claude-opus-5-5","max_tokens":128000,"stream":true,"messages":[]}`, true}, // claude --tools ""
		{`{"model":"claude-opus-5-5","max_tokens":1,"stream":true,"messages":[{"role":"user","content":"quota"}]}`, false},
		{`{"model":"claude-haiku-4-5","max_tokens":512,"stream":true,"messages":[]}`, false},
		{`{"model":"claude-opus-5-5","max_tokens":512,"messages":[]}`, false},
	}
	for _, c := range cases {
		var mb MessagesBody
		if err := json.Unmarshal([]byte(c.body), &mb); err != nil {
			t.Fatal(err)
		}
		r := &Request{Method: "POST", Path: "/v1/messages", Messages: &mb}
		if got := IsMain(r); got != c.want {
			t.Errorf("IsMain(%s) = %v, want %v", c.body, got, c.want)
		}
	}
	s := New()
	defer s.Close()
	s.SetMatcher(func(*Request) bool { return false })
	s.Script(Text("never"))
	if a, _ := stream(t, s, mainBody(true, "")); a.Text != AuxText || s.Remaining() != 1 {
		t.Errorf("custom matcher ignored: answered %q", a.Text)
	}
}

func TestRequestAccessors(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(ToolUse("Bash", map[string]string{"command": "echo hi"}))
	stream(t, s, mainBody(true, `,
		{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"echo hi"}}]},
		{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"toolu_1","content":"marker-42\n"},
			{"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"boom"}],"is_error":true},
			{"type":"text","text":"<system-reminder>x</system-reminder>"}]}`))
	r := s.Main(0)
	if r.System() != "You are Claude Code.\nsecond part" {
		t.Errorf("system %q", r.System())
	}
	if r.LastUserText() != "<system-reminder>x</system-reminder>" {
		t.Errorf("last user text %q", r.LastUserText())
	}
	if r.UserText() != "first question\n<system-reminder>x</system-reminder>" {
		t.Errorf("user text %q", r.UserText())
	}
	if all := r.AllText(); !strings.Contains(all, "second part") || !strings.Contains(all, "marker-42") ||
		!strings.Contains(all, "first question") || !strings.Contains(all, "boom") {
		t.Errorf("all text %q", all)
	}
	want := []ToolResult{{"toolu_1", "marker-42\n", false, nil}, {"toolu_2", "boom", true, nil}}
	if got := r.ToolResults(); !reflect.DeepEqual(got, want) {
		t.Errorf("tool results %+v", got)
	}
	if n := r.ToolNames(); len(n) != 1 || n[0] != "Bash" {
		t.Errorf("tool names %v", n)
	}
	if r.Header.Get("x-api-key") != "k" || r.Query.Get("beta") != "true" || r.Path != "/v1/messages" {
		t.Errorf("recorded header %v query %v path %s", r.Header, r.Query, r.Path)
	}
}

func TestReactAndError(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(
		React(func(r *Request) Turn {
			return Text("echo: " + r.LastUserText())
		}),
		Error(529, "overloaded_error", "busy"),
	)
	if a, _ := stream(t, s, mainBody(true, "")); a.Text != "echo: first question" {
		t.Errorf("react answered %q", a.Text)
	}
	resp := post(t, s, "/v1/messages", mainBody(true, ""))
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 529 || !bytes.Contains(b, []byte(`"overloaded_error"`)) {
		t.Errorf("error turn: %d %s", resp.StatusCode, b)
	}
	if s.Main(1).Status != 529 {
		t.Errorf("recorded status %d", s.Main(1).Status)
	}
}

func TestOtherEndpoints(t *testing.T) {
	s := New()
	defer s.Close()
	resp := post(t, s, "/v1/messages/count_tokens", mainBody(false, ""))
	var c struct {
		InputTokens int `json:"input_tokens"`
	}
	if json.NewDecoder(resp.Body).Decode(&c); resp.StatusCode != 200 || c.InputTokens <= 0 {
		t.Errorf("count_tokens: %d %+v", resp.StatusCode, c)
	}
	if resp := post(t, s, "/api/event_logging/batch", `{}`); resp.StatusCode != 404 {
		t.Errorf("unknown endpoint: %d", resp.StatusCode)
	}
	if resp, err := http.Head(s.URL() + "/api/hello"); err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD /api/hello: %v %v", resp, err)
	}
	resp, err := http.Get(s.URL() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("models: %d", resp.StatusCode)
	}
	if n := len(s.MainRequests()); n != 0 || s.Remaining() != 0 {
		t.Errorf("count_tokens counted as main: %d", n)
	}
	if got := len(s.Requests()); got != 4 {
		t.Errorf("%d requests recorded, want 4:\n%s", got, s.Summary())
	}
}

func TestServeUnixSocketAndWait(t *testing.T) {
	s := New()
	defer s.Close()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(l)
	s.Script(Text("via socket"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	var waitErr error
	go func() { defer wg.Done(); waitErr = s.WaitMain(ctx, 1) }()
	c := testenv.UnixClient(sock)
	resp, err := c.Post("http://fake/v1/messages", "application/json", strings.NewReader(mainBody(true, "")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	evs, err := ReadEvents(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := Assemble(evs); err != nil || a.Text != "via socket" {
		t.Fatalf("%+v %v", a, err)
	}
	wg.Wait()
	if waitErr != nil {
		t.Fatal(waitErr)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := s.WaitMain(short, 2); err == nil {
		t.Error("WaitMain(2) returned nil after one turn")
	}
}

// Assemble must reject streams the real client would choke on, or the
// round-trip tests above prove nothing.
func TestAssembleRejectsBrokenStreams(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(ToolUse("Bash", map[string]string{"command": "echo hi"}))
	_, evs := stream(t, s, mainBody(true, ""))
	drop := func(name string) []Event {
		var out []Event
		for _, e := range evs {
			if e.Name != name {
				out = append(out, e)
			}
		}
		return out
	}
	for _, name := range []string{"message_start", "content_block_start", "content_block_stop", "message_delta", "message_stop"} {
		if _, err := Assemble(drop(name)); err == nil {
			t.Errorf("stream without %s accepted", name)
		}
	}
	// A truncated partial_json must be caught.
	var cut []Event
	for _, e := range evs {
		if e.Name == "content_block_delta" && bytes.Contains(e.Data, []byte(`"partial_json":"{`)) {
			continue
		}
		cut = append(cut, e)
	}
	if _, err := Assemble(cut); err == nil {
		t.Error("stream with broken tool input accepted")
	}
	if _, err := ReadEvents(strings.NewReader("event: x\ndata: {not json\n\n")); err == nil {
		t.Error("invalid JSON data accepted")
	}
}

func TestToolUseRejectsNonObject(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("ToolUse with a string input did not panic")
		}
	}()
	ToolUse("Bash", "echo hi")
}
