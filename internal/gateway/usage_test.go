package gateway

import (
	"strings"
	"testing"
)

func TestUsageMeter(t *testing.T) {
	const stream = "event: message_start\r\n" +
		`data: {"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":1}}}` + "\r\n\r\n" +
		`data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"\"type\":\"message_delta\",\"usage\":{\"output_tokens\":999}"}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"output_tokens":5}}` + "\n\n" +
		`data: {"type":"message_delta","usage":{"input_tokens":12,"output_tokens":8}}` + "\n\n"
	for _, tc := range []struct {
		name, contentType, body string
		chunk                   int
		in, out                 int64
		ok                      bool
	}{
		{"stream in one piece", "text/event-stream", stream, len(stream), 102, 8, true},
		{"stream byte by byte", "text/event-stream; charset=utf-8", stream, 1, 102, 8, true},
		{"stream in odd pieces", "text/event-stream", stream, 7, 102, 8, true},
		{"oversized line skipped", "text/event-stream", "data: " + strings.Repeat("x", maxMeteredLine+10) + "\n" + stream, 4096, 102, 8, true},
		{"stream without usage", "text/event-stream", "data: {\"type\":\"ping\"}\n\n", 3, 0, 0, false},
		{"json", "application/json", `{"id":"m","usage":{"input_tokens":4,"cache_creation_input_tokens":6,"output_tokens":3}}`, 5, 10, 3, true},
		{"json error", "application/json", `{"type":"error","error":{"type":"overloaded_error"}}`, 5, 0, 0, false},
		{"json count_tokens", "application/json", `{"input_tokens":42}`, 50, 0, 0, false},
		{"negative ignored", "application/json", `{"usage":{"input_tokens":-4,"output_tokens":3}}`, 50, 0, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newUsageMeter(tc.contentType)
			for b := []byte(tc.body); len(b) > 0; {
				n := min(tc.chunk, len(b))
				m.Write(b[:n])
				b = b[n:]
			}
			m.finish()
			in, out, ok := m.totals()
			if in != tc.in || out != tc.out || ok != tc.ok {
				t.Fatalf("totals %d, %d, %v; want %d, %d, %v", in, out, ok, tc.in, tc.out, tc.ok)
			}
		})
	}
	if newUsageMeter("text/html") != nil || newUsageMeter("") != nil {
		t.Fatal("metering a response that carries no usage")
	}
}
