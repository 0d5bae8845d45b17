package gateway

import (
	"strings"
	"testing"
)

func TestUsageMeter(t *testing.T) {
	const stream = "event: message_start\r\n" +
		`data: {"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":1}}}` + "\r\n\r\n" +
		`data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"\"type\":\"message_delta\",\"usage\":{\"output_tokens\":999}"}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"output_tokens":5}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"input_tokens":12,"output_tokens":8}}` + "\n\n"
	for _, tc := range []struct {
		name, contentType, body string
		chunk                   int
		want                    Tokens
		model                   string
		ok                      bool
	}{
		{"stream in one piece", "text/event-stream", stream, len(stream), Tokens{Input: 12, Output: 8, CacheRead: 90}, "claude-x", true},
		{"stream byte by byte", "text/event-stream; charset=utf-8", stream, 1, Tokens{Input: 12, Output: 8, CacheRead: 90}, "claude-x", true},
		{"stream in odd pieces", "text/event-stream", stream, 7, Tokens{Input: 12, Output: 8, CacheRead: 90}, "claude-x", true},
		{"oversized line skipped", "text/event-stream", "data: " + strings.Repeat("x", maxMeteredLine+10) + "\n" + stream, 4096, Tokens{Input: 12, Output: 8, CacheRead: 90}, "claude-x", true},
		{"stream without usage", "text/event-stream", "data: {\"type\":\"ping\"}\n\n", 3, Tokens{}, "", false},
		{"json", "application/json", `{"id":"m","model":"claude-j","usage":{"input_tokens":4,"cache_creation_input_tokens":6,"output_tokens":3}}`, 5, Tokens{Input: 4, Output: 3, CacheWrite: 6}, "claude-j", true},
		{"json error", "application/json", `{"type":"error","error":{"type":"overloaded_error"}}`, 5, Tokens{}, "", false},
		{"json count_tokens", "application/json", `{"input_tokens":42}`, 50, Tokens{}, "", false},
		{"negative ignored", "application/json", `{"usage":{"input_tokens":-4,"output_tokens":3}}`, 50, Tokens{Output: 3}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newUsageMeter(tc.contentType)
			for b := []byte(tc.body); len(b) > 0; {
				n := min(tc.chunk, len(b))
				m.Write(b[:n])
				b = b[n:]
			}
			m.finish()
			got, model, ok := m.totals()
			if got != tc.want || model != tc.model || ok != tc.ok {
				t.Fatalf("totals %+v, %q, %v; want %+v, %q, %v", got, model, ok, tc.want, tc.model, tc.ok)
			}
			if got.Total() != tc.want.Input+tc.want.Output+tc.want.CacheRead+tc.want.CacheWrite {
				t.Fatalf("Total() = %d", got.Total())
			}
		})
	}
	if newUsageMeter("text/html") != nil || newUsageMeter("") != nil {
		t.Fatal("metering a response that carries no usage")
	}
}
