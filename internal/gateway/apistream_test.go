package gateway

// API answers on their way back: server-sent events pass through as they
// come, and the usage read from them (or from a plain JSON answer) is
// recorded once per response, per group and day, even for a stream the
// container abandons.

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

// Server-sent events pass through as they come: the first event reaches
// the container while the upstream is still writing. Usage is read from
// the stream on the way.
func TestAPIStreamsIncrementally(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"+
			"{\"input_tokens\":10,\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"message_delta\"}}\n\n")
		io.WriteString(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n")
		io.WriteString(w, "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":42}}\r\n\r\n")
		io.WriteString(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}))
	defer upstream.Close()
	defer close(release)
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey})
	ep := e.open(t, "family", false, egress.Policy{})

	br := bufio.NewReader(postStream(t, ep, "/v1/messages").Body)
	first := make(chan string, 1)
	go func() {
		var ev strings.Builder
		for {
			line, err := br.ReadString('\n')
			ev.WriteString(line)
			if err != nil || line == "\n" {
				first <- ev.String()
				return
			}
		}
	}()
	select {
	case ev := <-first:
		if !strings.Contains(ev, "message_start") {
			t.Fatalf("first event: %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the upstream was still streaming: the gateway buffers")
	}
	release <- struct{}{}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "message_stop") {
		t.Fatalf("rest of the stream: %q, %v", rest, err)
	}
	recs := e.usage.wait(t, 1)
	want := usageRecord{Folder: "family", Day: time.Now().UTC().Format("2006-01-02"), In: 10, Out: 42, CacheRead: 100, CacheWrite: 5}
	if len(recs) != 1 || recs[0] != want {
		t.Fatalf("usage %+v, want [%+v]", recs, want)
	}
}

// Usage is recorded once per response, per group and day, for streamed and
// plain JSON answers, and not for answers without usage.
func TestAPIUsagePerGroup(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey})
	a := e.open(t, "alpha", true, egress.Policy{})
	b := e.open(t, "beta", false, egress.Policy{})
	fake.Script(fakeapi.Text("streamed answer").WithCache(700, 30), fakeapi.Text("a JSON answer, somewhat longer").WithCache(9, 1000),
		fakeapi.Error(529, "overloaded_error", "busy"))

	if s, body, _ := do(t, a, http.MethodPost, "/v1/messages", streamBody); s != 200 {
		t.Fatalf("alpha: %d %s", s, body)
	}
	if s, body, _ := do(t, b, http.MethodPost, "/v1/messages", jsonBody); s != 200 {
		t.Fatalf("beta: %d %s", s, body)
	}
	if s, _, _ := do(t, b, http.MethodPost, "/v1/messages", streamBody); s != 529 {
		t.Fatalf("beta's error turn: status %d", s)
	}
	if s, _, _ := do(t, b, http.MethodPost, "/v1/messages/count_tokens", jsonBody); s != 200 {
		t.Fatalf("count_tokens: status %d", s)
	}
	st := e.gw.Stats()
	e.gw.Close() // waits for usage being stored
	recs := e.usage.wait(t, 0)
	slices.SortFunc(recs, func(a, b usageRecord) int { return strings.Compare(a.Folder, b.Folder) })
	reqs := fake.Requests()
	today := time.Now().UTC().Format("2006-01-02")
	var want []usageRecord
	for i, f := range []string{"alpha", "beta"} {
		u := reqs[i].Usage
		want = append(want, usageRecord{f, today, int64(u.InputTokens), int64(u.OutputTokens), int64(u.CacheReadInputTokens), int64(u.CacheCreationInputTokens), 0})
	}
	if len(recs) != 2 || recs[0] != want[0] || recs[1] != want[1] || want[0].In == 0 || want[1].Out == 0 || want[0].CacheRead != 700 || want[1].CacheWrite != 1000 {
		t.Fatalf("usage %+v, want %+v", recs, want)
	}
	if st["alpha"].APIRequests != 1 || st["beta"].APIRequests != 3 || st["alpha"].InputTokens != want[0].In+730 || st["beta"].OutputTokens != want[1].Out {
		t.Errorf("stats %+v", st)
	}
	if lines := e.log.lines(t, "api"); len(lines) != 4 || lines[0]["group"] != "alpha" || lines[0]["output_tokens"] != float64(want[0].Out) {
		t.Errorf("api log lines: %v", lines)
	}
}

// A stream the container abandons is still counted once, with what had
// passed, and logged.
func TestAPIStreamCutShort(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":33,\"output_tokens\":1}}}\n\n")
		w.(http.Flusher).Flush()
		for r.Context().Err() == nil {
			io.WriteString(w, ": keep-alive\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	}))
	defer upstream.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey})
	ep := e.open(t, "g", false, egress.Policy{})
	resp := postStream(t, ep, "/v1/messages")
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "message_start") {
		t.Fatalf("first line %q, %v", line, err)
	}
	resp.Body.Close()
	// The gateway keeps reading the stream after the container left, for
	// its usage; closing the gateway ends that, and the stream never
	// said its output: charged at max_tokens.
	time.Sleep(100 * time.Millisecond)
	e.gw.Close()
	e.log.waitLines(t, "api", 1)
	if recs := e.usage.wait(t, 0); len(recs) != 1 || recs[0].In != 33 || recs[0].Out != 100 {
		t.Fatalf("usage %+v, want one record of 33 in, 100 out (max_tokens)", recs)
	}
}
