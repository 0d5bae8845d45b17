package incontainer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// testdata/claude-2.1.332-turn.jsonl is one turn's stdout of the real
// Claude Code 2.1.332 (-p --input-format stream-json --output-format
// stream-json --verbose) against the fake model answering "answer one":
// system init, assistant, result.
func TestParseRealClaudeCodeLines(t *testing.T) {
	f, err := os.Open("testdata/claude-2.1.332-turn.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ev, err := ParseEvent(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	const sid = "9956d8f3-267c-47c6-9305-df4652523570"
	if ev := evs[0]; ev.Type != "system" || ev.Subtype != "init" || ev.SessionID != sid {
		t.Errorf("init line parsed as %+v", ev)
	}
	if ev := evs[1]; ev.Type != "assistant" || ev.SessionID != sid {
		t.Errorf("assistant line parsed as %+v", ev)
	}
	res := evs[2]
	if res.Type != "result" || res.Subtype != "success" || res.IsError || res.Result != "answer one" || res.SessionID != sid {
		t.Errorf("result line parsed as %+v", res)
	}
	if res.Usage.InputTokens != 12375 || res.Usage.OutputTokens != 3 || res.DurationMS <= 0 {
		t.Errorf("result usage %+v, duration %d", res.Usage, res.DurationMS)
	}

	r := &runner{log: discard}
	for _, ev := range evs {
		r.note(ev)
	}
	out := r.output("p1", time.Now(), res)
	if out.Result != "answer one" || out.IsError || out.SessionID != sid || out.Usage != (ipc.Usage{InputTokens: 12375, OutputTokens: 3}) {
		t.Errorf("output %+v", out)
	}
	if err := out.Validate(); err != nil {
		t.Error(err)
	}
}

// Failed turns: the shapes Claude Code 2.1.332 writes. An API error that
// survives its retries ends the turn with subtype "success" but is_error
// true and the message in result; execution errors carry an errors list.
func TestFailedTurnOutputs(t *testing.T) {
	cases := []struct {
		name, line, want string
	}{
		{"api error", `{"type":"result","subtype":"success","is_error":true,"duration_ms":180035,"num_turns":1,` +
			`"result":"Failed to authenticate. API Error: 401 bad key marker","session_id":"s-1","usage":{"input_tokens":0,"output_tokens":0}}`,
			"Failed to authenticate. API Error: 401 bad key marker"},
		{"execution error", `{"subtype":"error_during_execution","is_error":true,"errors":["tool crashed","then this"],"session_id":"s-1","type":"result"}`,
			"tool crashed; then this"},
		{"max turns, nothing said", `{"type":"result","subtype":"error_max_turns","session_id":"s-1"}`,
			"claude code ended the turn with error_max_turns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(c.line))
			if err != nil {
				t.Fatal(err)
			}
			r := &runner{log: discard}
			r.note(ev)
			out := r.output("p9", time.Now(), ev)
			if !out.IsError || out.Error != c.want || out.SessionID != "s-1" {
				t.Errorf("output %+v; want an error %q in session s-1", out, c.want)
			}
			if err := out.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// Fields that change shape do not make a result line unreadable.
func TestParseEventIsLenient(t *testing.T) {
	ev, err := ParseEvent([]byte(`{"type":"result","subtype":"error_x","is_error":"yes","result":{"text":"x"},` +
		`"duration_ms":12.7,"usage":[1],"errors":[{"code":1}],"session_id":"s-2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "result" || ev.SessionID != "s-2" || ev.DurationMS != 12 || ev.Result != "" ||
		len(ev.Errors) != 1 || ev.Errors[0] != `[{"code":1}]` {
		t.Errorf("parsed %+v", ev)
	}
	out := (&runner{log: discard}).output("p1", time.Now(), ev)
	if !out.IsError || out.Error != `[{"code":1}]` {
		t.Errorf("output %+v", out)
	}
}

func TestParseEventRejects(t *testing.T) {
	for _, line := range []string{``, `not json`, `[1,2]`, `{"subtype":"init"}`, `{"type":""}`, `"result"`, `{"type":7}`} {
		if ev, err := ParseEvent([]byte(line)); err == nil {
			t.Errorf("ParseEvent(%q) = %+v; want an error", line, ev)
		}
	}
}

// A session id that could become a flag or a path is never passed on.
func TestNoteRejectsOddSessionIDs(t *testing.T) {
	r := &runner{sessionID: "good-1", log: discard}
	for _, sid := range []string{"-rf", "../x", "a b", "a/b", strings.Repeat("a", 200)} {
		r.note(Event{Type: "system", SessionID: sid})
		if r.sessionID != "good-1" {
			t.Fatalf("session id %q accepted", sid)
		}
	}
	r.note(Event{Type: "result", SessionID: "new-2"})
	if r.sessionID != "new-2" {
		t.Errorf("valid session id not taken: %q", r.sessionID)
	}
}

func TestUserMessage(t *testing.T) {
	text := "line one\nline \"two\" <b>&</b> \u2028 ünïcödé \x00"
	b := UserMessage(text)
	if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
		t.Fatalf("not exactly one line: %q", b)
	}
	var got struct {
		Type    string `json:"type"`
		Message struct {
			Role    string `json:"role"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "user" || got.Message.Role != "user" || len(got.Message.Content) != 1 ||
		got.Message.Content[0].Type != "text" || got.Message.Content[0].Text != text {
		t.Errorf("decoded %+v", got)
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 300)
	in := "short\n" + long + "\n\nafter\n" + strings.Repeat("y", 150) + "\nlast-no-newline"
	lr := bufio.NewReaderSize(strings.NewReader(in), 16) // force chunked reads
	var got []string
	for {
		line, err := readLine(lr, 200)
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errLineTooLong) {
			got = append(got, "<too long>")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(line))
	}
	want := []string{"short", "<too long>", "", "after", strings.Repeat("y", 150), "last-no-newline"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q\nwant %q", got, want)
	}
	// Exactly at the limit is fine; one over is not.
	lr = bufio.NewReaderSize(strings.NewReader(strings.Repeat("z", 200)+"\n"+strings.Repeat("z", 201)+"\n"), 64<<10)
	if l, err := readLine(lr, 200); err != nil || len(l) != 200 {
		t.Errorf("line at the limit: %d bytes, %v", len(l), err)
	}
	if _, err := readLine(lr, 200); !errors.Is(err, errLineTooLong) {
		t.Errorf("line over the limit: %v", err)
	}
}

var discard = slog.New(slog.DiscardHandler)
