package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Request is one HTTP request the fake received, as recorded.
type Request struct {
	Seq    int         // 0-based position among all recorded requests
	Method string      // HTTP method
	Path   string      // URL path, e.g. "/v1/messages"
	Query  url.Values  // parsed query, e.g. beta=true
	Header http.Header // request headers (a copy)
	Body   []byte      // raw body

	// Messages is the parsed body of a POST /v1/messages (or
	// /v1/messages/count_tokens) request; nil for other requests or when the
	// body is not valid JSON.
	Messages *MessagesBody

	// Main reports whether this request was matched as a main-loop turn
	// (see IsMain); Turn is then its 0-based index among main requests,
	// otherwise Turn is -1.
	Main bool
	Turn int

	// Status is the HTTP status the fake answered; Usage the token counts
	// it reported (zero for requests that were not answered with a message).
	Status int
	Usage  Usage
}

// MessagesBody is the part of a Messages API request body the fake parses.
// The raw body stays in Request.Body for anything else.
type MessagesBody struct {
	Model     string    `json:"model"`
	MaxTokens int       `json:"max_tokens"`
	Stream    bool      `json:"stream"`
	System    Content   `json:"system"`
	Messages  []Message `json:"messages"`
	Tools     []Tool    `json:"tools"`
}

// Message is one entry of a request's messages list.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Tool is one entry of a request's tools list (only the name is kept).
type Tool struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// Content is a list of content blocks. In JSON it may also be a plain string,
// which decodes as a single text block.
type Content []Block

// UnmarshalJSON accepts a string (one text block) or a list of blocks.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content{{Type: "text", Text: s}}
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*c = nil
		return nil
	}
	var blocks []Block
	if err := json.Unmarshal(b, &blocks); err != nil {
		return err
	}
	*c = blocks
	return nil
}

// Text joins the text of the text blocks (and of the content of nested
// tool_result blocks) with newlines.
func (c Content) Text() string {
	var parts []string
	for _, b := range c {
		switch b.Type {
		case "text":
			parts = append(parts, b.Text)
		case "tool_result":
			parts = append(parts, b.Content.Text())
		}
	}
	return strings.Join(parts, "\n")
}

// Block is one content block of a request: text, tool_use (an earlier
// assistant turn echoed back), tool_result, or another type kept by name.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`          // tool_use
	Name      string          `json:"name,omitempty"`        // tool_use
	Input     json.RawMessage `json:"input,omitempty"`       // tool_use
	ToolUseID string          `json:"tool_use_id,omitempty"` // tool_result
	Content   Content         `json:"content,omitempty"`     // tool_result
	IsError   bool            `json:"is_error,omitempty"`    // tool_result
	Source    *Source         `json:"source,omitempty"`      // image, document
}

// Source is where an image or document block's content is: for a file
// Claude Code read, its bytes, base64.
type Source struct {
	Type      string `json:"type"`                 // "base64"
	MediaType string `json:"media_type,omitempty"` // e.g. "image/png"
	Data      string `json:"data,omitempty"`
}

// ToolResult is a tool_result block of a user message, flattened.
type ToolResult struct {
	ToolUseID string   // the id of the tool_use it answers
	Content   string   // its text content
	IsError   bool     // whether the tool reported an error
	Media     []Source // its image and document blocks (a Read of an image or PDF)
}

// Model returns the requested model, or "" if the body was not parsed.
func (r *Request) Model() string {
	if r.Messages == nil {
		return ""
	}
	return r.Messages.Model
}

// System returns the text of the system prompt.
func (r *Request) System() string {
	if r.Messages == nil {
		return ""
	}
	return r.Messages.System.Text()
}

// ToolNames returns the names of the tools offered to the model.
func (r *Request) ToolNames() []string {
	if r.Messages == nil {
		return nil
	}
	var names []string
	for _, t := range r.Messages.Tools {
		names = append(names, t.Name)
	}
	return names
}

// lastUser returns the last message with role user, or nil.
func (r *Request) lastUser() *Message {
	if r.Messages == nil {
		return nil
	}
	for i := len(r.Messages.Messages) - 1; i >= 0; i-- {
		if r.Messages.Messages[i].Role == "user" {
			return &r.Messages.Messages[i]
		}
	}
	return nil
}

// UserText returns the text blocks of all user messages, joined by
// newlines: the whole conversation as the user side wrote it, including
// Claude Code's <system-reminder> blocks, excluding tool results.
func (r *Request) UserText() string {
	if r.Messages == nil {
		return ""
	}
	var parts []string
	for _, m := range r.Messages.Messages {
		if m.Role != "user" {
			continue
		}
		for _, b := range m.Content {
			if b.Type == "text" {
				parts = append(parts, b.Text)
			}
		}
	}
	return strings.Join(parts, "\n")
}

// AllText returns everything the model was shown as text: the system
// prompt, then the text of every message of every role (Claude Code also
// sends role "system" messages, e.g. its environment section), tool
// results included, joined by newlines. Use it to assert that something
// (a memory file, a marker) reached the model at all.
func (r *Request) AllText() string {
	if r.Messages == nil {
		return ""
	}
	parts := []string{r.System()}
	for _, m := range r.Messages.Messages {
		parts = append(parts, m.Content.Text())
	}
	return strings.Join(parts, "\n")
}

// LastUserText returns the text blocks of the last user message joined by
// newlines (tool results excluded; see ToolResults).
func (r *Request) LastUserText() string {
	m := r.lastUser()
	if m == nil {
		return ""
	}
	var parts []string
	for _, b := range m.Content {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// ToolResults returns the tool_result blocks of the last user message: the
// answers to the tool calls of the previous turn.
func (r *Request) ToolResults() []ToolResult {
	m := r.lastUser()
	if m == nil {
		return nil
	}
	var out []ToolResult
	for _, b := range m.Content {
		if b.Type == "tool_result" {
			tr := ToolResult{ToolUseID: b.ToolUseID, Content: b.Content.Text(), IsError: b.IsError}
			for _, c := range b.Content {
				if c.Source != nil {
					tr.Media = append(tr.Media, *c.Source)
				}
			}
			out = append(out, tr)
		}
	}
	return out
}

// String is a one-line summary: method, path, model, and what kind of
// request it was. Server.Summary lists these.
func (r *Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s", r.Seq, r.Method, r.Path)
	if len(r.Query) > 0 {
		b.WriteString("?" + r.Query.Encode())
	}
	fmt.Fprintf(&b, " -> %d", r.Status)
	if m := r.Messages; m != nil {
		kind := "aux"
		if r.Main {
			kind = fmt.Sprintf("main turn %d", r.Turn)
		}
		fmt.Fprintf(&b, " [%s] model=%s max_tokens=%d stream=%v tools=%d messages=%d system=%.60q last_user=%.80q",
			kind, m.Model, m.MaxTokens, m.Stream, len(m.Tools), len(m.Messages), r.System(), r.LastUserText())
	}
	return b.String()
}
