package fakeapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Event is one server-sent event: its name and JSON data.
type Event struct {
	Name string
	Data json.RawMessage
}

// events returns the server-sent events streaming the answer t to request
// seq for model with the given usage, as the real API sends them:
// message_start, ping, per block content_block_start / content_block_delta
// (text_delta or input_json_delta, split in chunks) / content_block_stop,
// message_delta (stop_reason and cumulative usage), message_stop.
func events(t Turn, seq int, model string, u Usage) []Event {
	var evs []Event
	add := func(name string, v map[string]any) {
		v["type"] = name
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // only maps of plain values: cannot happen
		}
		evs = append(evs, Event{Name: name, Data: b})
	}
	start := newMessage(seq, model, nil, nil, u.json(1))
	add("message_start", map[string]any{"message": start})
	add("ping", map[string]any{})
	for i, b := range t.blocks {
		switch b.typ {
		case "tool_use":
			add("content_block_start", map[string]any{"index": i, "content_block": map[string]any{
				"type": "tool_use", "id": toolUseID(seq, i), "name": b.name, "input": map[string]any{}}})
			add("content_block_delta", map[string]any{"index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": ""}})
			for _, c := range chunks(string(b.input), 16) {
				add("content_block_delta", map[string]any{"index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": c}})
			}
		default:
			add("content_block_start", map[string]any{"index": i, "content_block": map[string]any{"type": "text", "text": ""}})
			for _, c := range chunks(b.text, 16) {
				add("content_block_delta", map[string]any{"index": i, "delta": map[string]any{"type": "text_delta", "text": c}})
			}
		}
		add("content_block_stop", map[string]any{"index": i})
	}
	add("message_delta", map[string]any{
		"delta": map[string]any{"stop_reason": t.stopReason(), "stop_sequence": nil},
		"usage": u.json(u.OutputTokens),
	})
	add("message_stop", map[string]any{})
	return evs
}

// writeEvents writes evs to w in server-sent events framing, flushing after
// each so the client sees a real stream.
func writeEvents(w http.ResponseWriter, evs []Event) {
	f, _ := w.(http.Flusher)
	for _, e := range evs {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Name, e.Data)
		if f != nil {
			f.Flush()
		}
	}
}

// ReadEvents parses a server-sent event stream (as the fake or the real API
// sends it) into its events, in order. Comment lines are skipped; an event
// without a name is named by its data's "type".
func ReadEvents(r io.Reader) ([]Event, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []Event
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	for _, frame := range strings.Split(text, "\n\n") {
		if strings.TrimSpace(frame) == "" {
			continue
		}
		var e Event
		var data []string
		for _, line := range strings.Split(frame, "\n") {
			switch {
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event:"):
				e.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
		if len(data) == 0 {
			continue
		}
		e.Data = json.RawMessage(strings.Join(data, "\n"))
		if !json.Valid(e.Data) {
			return out, fmt.Errorf("fakeapi: event %q has invalid JSON data: %s", e.Name, e.Data)
		}
		if e.Name == "" {
			var t struct{ Type string }
			json.Unmarshal(e.Data, &t) //nolint:errcheck // valid JSON checked above
			e.Name = t.Type
		}
		out = append(out, e)
	}
	return out, nil
}

// Answer is a streamed message put back together by Assemble.
type Answer struct {
	ID         string     // message id from message_start
	Model      string     // model from message_start
	Text       string     // all text deltas, blocks joined without separator
	ToolUses   []ToolCall // tool_use blocks, inputs reassembled from input_json_delta
	StopReason string     // from message_delta
	Usage      Usage      // input tokens from message_start, output tokens from the last message_delta
}

// ToolCall is one tool_use block of an Answer.
type ToolCall struct {
	ID    string
	Name  string
	Input json.RawMessage // the concatenated partial_json, validated as JSON
}

// Assemble checks that evs form one complete message stream in the order
// the real API uses (message_start, then for each block start, deltas,
// stop, then message_delta and message_stop; ping anywhere) and puts the
// message back together.
func Assemble(evs []Event) (*Answer, error) {
	if len(evs) == 0 {
		return nil, errors.New("fakeapi: no events")
	}
	type data struct {
		Type    string `json:"type"`
		Index   int    `json:"index"`
		Message struct {
			ID    string    `json:"id"`
			Model string    `json:"model"`
			Usage usageJSON `json:"usage"`
		} `json:"message"`
		ContentBlock struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"content_block"`
		Delta struct {
			Type        string `json:"type"`
			Text        string `json:"text"`
			PartialJSON string `json:"partial_json"`
			StopReason  string `json:"stop_reason"`
		} `json:"delta"`
		Usage *usageJSON `json:"usage"`
	}
	a := &Answer{}
	state := "start" // start, between, block, delta, done
	open := -1       // index of the open block
	var blockType string
	var input strings.Builder
	for i, e := range evs {
		var d data
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, fmt.Errorf("fakeapi: event %d (%s): %w", i, e.Name, err)
		}
		if d.Type != e.Name {
			return nil, fmt.Errorf("fakeapi: event %d is named %q but its data has type %q", i, e.Name, d.Type)
		}
		bad := func() error { return fmt.Errorf("fakeapi: event %d: unexpected %s in state %s", i, e.Name, state) }
		switch e.Name {
		case "ping":
			continue
		case "message_start":
			if state != "start" {
				return nil, bad()
			}
			a.ID, a.Model, a.Usage.InputTokens = d.Message.ID, d.Message.Model, d.Message.Usage.InputTokens
			state = "between"
		case "content_block_start":
			if state != "between" || d.Index != open+1 {
				return nil, bad()
			}
			open, blockType, state = d.Index, d.ContentBlock.Type, "block"
			input.Reset()
			if blockType == "tool_use" {
				a.ToolUses = append(a.ToolUses, ToolCall{ID: d.ContentBlock.ID, Name: d.ContentBlock.Name})
			}
		case "content_block_delta":
			if state != "block" || d.Index != open {
				return nil, bad()
			}
			switch {
			case blockType == "text" && d.Delta.Type == "text_delta":
				a.Text += d.Delta.Text
			case blockType == "tool_use" && d.Delta.Type == "input_json_delta":
				input.WriteString(d.Delta.PartialJSON)
			default:
				return nil, fmt.Errorf("fakeapi: event %d: %s delta in a %s block", i, d.Delta.Type, blockType)
			}
		case "content_block_stop":
			if state != "block" || d.Index != open {
				return nil, bad()
			}
			if blockType == "tool_use" {
				in := json.RawMessage(input.String())
				if len(in) == 0 {
					in = json.RawMessage("{}")
				}
				if !json.Valid(in) {
					return nil, fmt.Errorf("fakeapi: tool_use block %d: input is not JSON: %s", open, in)
				}
				a.ToolUses[len(a.ToolUses)-1].Input = in
			}
			state = "between"
		case "message_delta":
			if state != "between" {
				return nil, bad()
			}
			a.StopReason = d.Delta.StopReason
			if d.Usage != nil {
				a.Usage.OutputTokens = d.Usage.OutputTokens
			}
		case "message_stop":
			if state != "between" || a.StopReason == "" {
				return nil, bad()
			}
			state = "done"
		case "error":
			return nil, fmt.Errorf("fakeapi: error event: %s", e.Data)
		default:
			return nil, fmt.Errorf("fakeapi: event %d: unknown event %q", i, e.Name)
		}
	}
	if state != "done" {
		return nil, errors.New("fakeapi: stream ended without message_stop")
	}
	return a, nil
}
