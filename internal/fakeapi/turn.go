package fakeapi

import (
	"encoding/json"
	"fmt"
)

// Turn is what the fake model answers to one main-loop request: content
// blocks (text and tool_use), an API error, or a function that decides from
// the request. Build one with Text, ToolUse, Combine, React or Error.
type Turn struct {
	blocks []reply
	err    *apiError
	react  func(*Request) Turn
	// cacheRead and cacheWrite are the cache tokens the answer reports
	// (WithCache); 0 by default.
	cacheRead, cacheWrite int
}

// reply is one content block of an answer.
type reply struct {
	typ   string // "text" or "tool_use"
	text  string
	name  string
	input json.RawMessage
}

type apiError struct {
	status  int
	typ     string
	message string
}

// Text answers with one text block (stop_reason end_turn).
func Text(s string) Turn {
	return Turn{blocks: []reply{{typ: "text", text: s}}}
}

// ToolUse answers with one tool_use block calling the tool name with input
// (marshalled to JSON; stop_reason tool_use). It panics if input cannot be
// marshalled to a JSON object, as that is a bug in the test.
func ToolUse(name string, input any) Turn {
	b, err := json.Marshal(input)
	if err != nil {
		panic(fmt.Sprintf("fakeapi.ToolUse(%q): %v", name, err))
	}
	if input == nil || len(b) == 0 || b[0] != '{' {
		panic(fmt.Sprintf("fakeapi.ToolUse(%q): input must be a JSON object, got %s", name, b))
	}
	return Turn{blocks: []reply{{typ: "tool_use", name: name, input: b}}}
}

// Combine answers with the blocks of all parts in order, e.g. a text then
// two parallel tool calls. stop_reason is tool_use if any block is a tool
// call. Parts made by React or Error are not allowed (it panics).
func Combine(parts ...Turn) Turn {
	var t Turn
	for _, p := range parts {
		if p.react != nil || p.err != nil {
			panic("fakeapi.Combine: React and Error turns cannot be combined")
		}
		t.blocks = append(t.blocks, p.blocks...)
		t.cacheRead, t.cacheWrite = t.cacheRead+p.cacheRead, t.cacheWrite+p.cacheWrite
	}
	return t
}

// React defers the answer to f, called with the recorded request when the
// turn is reached, e.g. to echo a marker from the prompt back. f must not
// return another React turn.
func React(f func(r *Request) Turn) Turn {
	return Turn{react: f}
}

// Error answers with an API error: HTTP status and an Anthropic error body
// of the given type, e.g. Error(529, "overloaded_error", "busy") or
// Error(401, "authentication_error", "invalid x-api-key").
func Error(status int, errType, message string) Turn {
	return Turn{err: &apiError{status: status, typ: errType, message: message}}
}

// WithCache makes the answer report read cache tokens read from the prompt
// cache and write written to it, besides its input and output tokens.
func (t Turn) WithCache(read, write int) Turn {
	t.cacheRead, t.cacheWrite = read, write
	return t
}

// stopReason is tool_use if the answer calls a tool, otherwise end_turn.
func (t Turn) stopReason() string {
	for _, b := range t.blocks {
		if b.typ == "tool_use" {
			return "tool_use"
		}
	}
	return "end_turn"
}

// Usage is the token accounting the fake reports for one answer.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
}

// usageFor counts tokens the way the fake reports them: one token per four
// bytes of request body and of answer content, at least one each. It is
// deterministic for a given request and answer.
func usageFor(body []byte, t Turn) Usage {
	out := 0
	for _, b := range t.blocks {
		out += len(b.text) + len(b.name) + len(b.input)
	}
	return Usage{InputTokens: len(body)/4 + 1, OutputTokens: out/4 + 1, CacheReadInputTokens: t.cacheRead, CacheCreationInputTokens: t.cacheWrite}
}

// message is the JSON shape of a complete (non-streamed) answer and, with
// empty content, of the message in message_start.
type message struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []map[string]any `json:"content"`
	StopReason   *string          `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        usageJSON        `json:"usage"`
}

// json is u as the API writes it, with output tokens so far.
func (u Usage) json(output int) usageJSON {
	return usageJSON{InputTokens: u.InputTokens, CacheCreationInputTokens: u.CacheCreationInputTokens,
		CacheReadInputTokens: u.CacheReadInputTokens, OutputTokens: output}
}

type usageJSON struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// toolUseID is the id of the i-th block of the answer to request seq.
func toolUseID(seq, i int) string {
	return fmt.Sprintf("toolu_fake%04d_%d", seq, i)
}

// blockJSON is the complete JSON of one answer block.
func blockJSON(b reply, id string) map[string]any {
	if b.typ == "tool_use" {
		return map[string]any{"type": "tool_use", "id": id, "name": b.name, "input": b.input}
	}
	return map[string]any{"type": "text", "text": b.text}
}

// newMessage is the message object for an answer to request seq.
func newMessage(seq int, model string, content []map[string]any, stop *string, u usageJSON) message {
	if content == nil {
		content = []map[string]any{}
	}
	return message{
		ID: fmt.Sprintf("msg_fake%04d", seq), Type: "message", Role: "assistant", Model: model,
		Content: content, StopReason: stop, Usage: u,
	}
}

// fullMessage is the non-streamed answer t to request seq.
func fullMessage(t Turn, seq int, model string, u Usage) message {
	var content []map[string]any
	for i, b := range t.blocks {
		content = append(content, blockJSON(b, toolUseID(seq, i)))
	}
	stop := t.stopReason()
	return newMessage(seq, model, content, &stop, u.json(u.OutputTokens))
}

// chunks splits s into pieces of at most n bytes without splitting a UTF-8
// sequence. An empty s gives no chunks.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		end := min(n, len(s))
		for end < len(s) && end > 0 && !isRuneStart(s[end]) {
			end--
		}
		if end == 0 {
			end = min(n, len(s))
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// errorBody is the Anthropic error JSON.
func errorBody(typ, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
	return b
}
