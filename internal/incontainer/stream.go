package incontainer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// Claude Code's stream-json protocol, as version 2.1.332 speaks it (checked
// with the real binary; see the end-to-end test):
//
//   - stdin, one JSON object a line:
//     {"type":"user","message":{"role":"user","content":[{"type":"text","text":"…"}]}}
//     Each line starts a turn; Claude Code keeps running between turns and
//     exits when stdin is closed.
//   - stdout, one JSON object a line. Every turn opens with
//     {"type":"system","subtype":"init","session_id":…}, then "assistant"
//     and "user" (tool results) lines, "system" lines such as api_retry,
//     and ends with exactly one {"type":"result",…} line carrying subtype
//     ("success" or "error_…"), is_error, result (the final text),
//     session_id, duration_ms and usage for that turn only. Keys are not in
//     a fixed order ("type" is not first on a result line).

// MaxLineBytes bounds one line read from Claude Code. A longer line (a huge
// tool result echoed back) is skipped whole, never buffered.
const MaxLineBytes = 10 << 20

// Event is what nanoclaw-agent needs from one stream-json output line.
type Event struct {
	Type    string // "system", "assistant", "user", "result", …
	Subtype string // "init", "api_retry", "success", "error_during_execution", …
	// SessionID is Claude Code's session: on init and result lines.
	SessionID string

	// The rest is set on result lines only.
	Result     string
	IsError    bool
	DurationMS int64
	Usage      ipc.Usage // the turn's tokens, as the result line reports them
	Errors     []string
}

// rawEvent is a line as decoded first: only type, subtype and session_id
// must have their expected types. A field that changes shape in a later
// Claude Code version must not make a result line unreadable (the turn
// would never end), so the others are decoded one by one, best effort.
type rawEvent struct {
	Type       string          `json:"type"`
	Subtype    string          `json:"subtype"`
	SessionID  string          `json:"session_id"`
	Result     json.RawMessage `json:"result"`
	IsError    json.RawMessage `json:"is_error"`
	DurationMS json.RawMessage `json:"duration_ms"`
	Usage      json.RawMessage `json:"usage"`
	Errors     json.RawMessage `json:"errors"`
}

// ParseEvent decodes one stdout line. It fails on a line that is not a JSON
// object with a string "type".
func ParseEvent(line []byte) (Event, error) {
	var raw rawEvent
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("stream-json line is not a JSON object: %w (%.120q)", err, line)
	}
	if raw.Type == "" {
		return Event{}, fmt.Errorf("stream-json line has no type: %.120q", line)
	}
	ev := Event{Type: raw.Type, Subtype: raw.Subtype, SessionID: raw.SessionID}
	lenient(raw.Result, &ev.Result)
	lenient(raw.IsError, &ev.IsError)
	var d float64
	if lenient(raw.DurationMS, &d) {
		ev.DurationMS = int64(d)
	}
	lenient(raw.Usage, &ev.Usage)
	if !lenient(raw.Errors, &ev.Errors) && len(raw.Errors) > 0 && string(raw.Errors) != "null" {
		// Not a list of strings: keep it as JSON text, it is for people.
		ev.Errors = []string{string(raw.Errors)}
	}
	return ev, nil
}

// lenient decodes b into v if it can and reports whether it did.
func lenient(b json.RawMessage, v any) bool {
	return len(b) > 0 && json.Unmarshal(b, v) == nil
}

// ErrorText is what went wrong in a failed turn, for the host: the result
// text, the errors list, or the subtype, whichever says something.
func (ev Event) ErrorText() string {
	parts := ev.Errors
	if ev.Result != "" {
		parts = append([]string{ev.Result}, parts...)
	}
	if len(parts) == 0 {
		return "claude code ended the turn with " + ev.Subtype
	}
	return strings.Join(parts, "; ")
}

// UserMessage is the stream-json stdin line (newline included) that hands
// Claude Code one prompt.
func UserMessage(text string) []byte {
	b, err := json.Marshal(map[string]any{"type": "user", "message": map[string]any{
		"role": "user", "content": []map[string]string{{"type": "text", "text": text}}}})
	if err != nil {
		panic(err) // strings always marshal
	}
	return append(b, '\n')
}

// errLineTooLong marks a line over MaxLineBytes, which was skipped.
var errLineTooLong = errors.New("line too long")

// readLine reads the next newline-terminated line of r, without its newline,
// with a cap: a line longer than max is consumed and reported as
// errLineTooLong rather than buffered. At the end of the input it returns
// io.EOF (a last line without a newline is returned first).
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > max+1 { // +1: the newline
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, errLineTooLong
			}
			return bytes.TrimSuffix(buf, []byte{'\n'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && (tooLong || len(buf) > max):
			return nil, errLineTooLong
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return buf, nil
		default:
			return nil, err
		}
	}
}
