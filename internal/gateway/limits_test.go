package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/hostclient"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// floodHeapBound is what a flood of one socket may add to the host's heap:
// the /ipc bodies the socket may hold at once (maxBufferedBodies, about
// 8 MiB) plus 8 MiB for the connections' buffers (MaxConns of them) and
// the test's own 1000 client connections.
const floodHeapBound = maxBufferedBodies + 8<<20

// R3: 1000 slow and half-open requests on one group's socket — tool calls
// whose 300 KiB bodies the host holds while the tool runs, and outputs
// that declare 6 MiB and stop after 256 KiB — pin a bounded heap and a
// bounded number of goroutines on the host; the socket refuses what is
// over its caps at once; another group's socket on the same Gateway keeps
// answering; and the flooded group is served again once the flood ends.
func TestSocketFloodBounded(t *testing.T) {
	const n = 1000
	fake := fakeapi.New()
	defer fake.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey})
	e.handler.slowTool = "slow_tool"
	e.handler.slowGate = make(chan struct{})
	e.handler.slowArrived = make(chan struct{}, n)
	e.handler.toolRes = map[string]bool{"ok": true}
	released := false
	release := func() {
		if !released {
			released = true
			close(e.handler.slowGate)
		}
	}
	defer release()
	flood := e.open(t, "flood", false, egress.Policy{})
	calm := e.open(t, "calm", false, egress.Policy{})

	toolBody := `{"a":"` + strings.Repeat("x", 300<<10) + `"}`
	toolReq := []byte(fmt.Sprintf("POST %sslow_tool HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		ipc.PathToolPrefix, len(toolBody), toolBody))
	halfReq := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"+
		`{"input_id":"p1","result":"%s`, ipc.PathOutput, ipc.MaxOutputBytes, strings.Repeat("y", 256<<10)))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()
	start := time.Now()

	// Each client sends its request and reads the status line. A refusal
	// is a 503 or the connection closed before any answer; a cut is the
	// 408 of a body not complete within BodyTimeout (only if this test
	// ran slower than that). Clients stay until the end of the test, so
	// the goroutines counted besides them are the host's.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	settled := make(chan string, n)
	var clientsDone atomic.Int64
	for i := range n {
		req := toolReq
		if i%2 == 1 {
			req = halfReq
		}
		go func() {
			defer clientsDone.Add(1)
			defer func() { <-ctx.Done() }()
			c, err := net.Dial("unix", flood.path)
			if err != nil {
				settled <- "refused"
				return
			}
			defer context.AfterFunc(ctx, func() { c.Close() })()
			c.Write(req) // a write cut short by a refusal is fine: the answer is read below
			line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
			switch {
			case err != nil && line == "", strings.HasPrefix(line, "HTTP/1.1 503 "):
				c.Close() // a real client gives up the connection
				settled <- "refused"
			case strings.HasPrefix(line, "HTTP/1.1 408 "):
				settled <- "cut"
			}
		}()
	}
	// Settled: every tool call is held by the handler or refused, and
	// every half-open output refused or cut, except at most one, whose
	// body the socket's budget has room to read. With no caps (the code
	// before R3) 500 half-open bodies are being read and this never comes:
	// the heap is measured after a minute all the same.
	counts := map[string]int{}
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
wait:
	for counts["held"]+counts["refused"]+counts["cut"] < n-1 {
		select {
		case <-e.handler.slowArrived:
			counts["held"]++
		case s := <-settled:
			counts[s]++
		case <-deadline.C:
			t.Errorf("flood not settled after a minute: %v", counts)
			break wait
		}
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	grown := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	hostGoroutines := runtime.NumGoroutine() - goroutinesBefore - (n - int(clientsDone.Load()))
	t.Logf("flood of %d settled after %v: %v; heap grew by %.1f MiB (bound %.1f MiB); %d goroutines besides the clients'; stats %+v",
		n, time.Since(start).Round(time.Millisecond), counts, float64(grown)/(1<<20), float64(floodHeapBound)/(1<<20), hostGoroutines, e.gw.Stats()["flood"])
	if grown > floodHeapBound {
		t.Errorf("the flood pinned %.1f MiB of heap, over the bound of %.1f MiB", float64(grown)/(1<<20), float64(floodHeapBound)/(1<<20))
	}
	if limit := 2*defaultMaxConns + 16; hostGoroutines > limit {
		t.Errorf("the flood holds %d goroutines of the host, want at most %d", hostGoroutines, limit)
	}
	if counts["refused"] == 0 || e.gw.Stats()["flood"].Refused == 0 {
		t.Errorf("nothing refused: %v, stats %+v", counts, e.gw.Stats()["flood"])
	}
	if lines := e.log.lines(t, "gateway: socket at its caps, refusing"); len(lines) == 0 || len(lines) > 2 {
		t.Errorf("%d log lines about the caps, want one (at most one per %v)", len(lines), refusalLogEvery)
	}

	// The other group is served meanwhile: tools, its input, the API.
	if s, body, _ := do(t, calm, http.MethodPost, ipc.PathToolPrefix+"send_message", `{"text":"still here"}`); s != 200 {
		t.Errorf("calm group's tool: %d %s", s, body)
	}
	e.handler.inputs <- ipc.Input{Kind: ipc.InputPrompt, ID: "c1", Text: "hello"}
	if s, body, _ := do(t, calm, http.MethodGet, ipc.PathNext, ""); s != 200 || !strings.Contains(body, `"id":"c1"`) {
		t.Errorf("calm group's input: %d %s", s, body)
	}
	fake.Script(fakeapi.Text("calm answer"))
	if s, body, _ := do(t, calm, http.MethodPost, "/v1/messages?beta=true", streamBody); s != 200 || !strings.Contains(body, "calm answer") {
		t.Errorf("calm group's API call: %d %.200s", s, body)
	}

	// Once the flood ends, the flooded group's own client gets through
	// (it retries a 503).
	release()
	cancel()
	hc := hostclient.New(flood.path, nil)
	defer hc.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	resp, err := hc.CallTool(cctx, "send_message", json.RawMessage(`{"text":"after the flood"}`))
	if err != nil || resp.Error != "" {
		t.Fatalf("after the flood: %+v, %v", resp, err)
	}
}

// R3: connections over MaxConns are answered 503 and closed at once, even
// when they never send a byte; the socket serves again when one closes.
func TestSocketConnCap(t *testing.T) {
	e := newEnv(t, Options{MaxConns: 2})
	e.handler.toolRes = map[string]bool{"ok": true}
	ep := e.open(t, "g", false, egress.Policy{})
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("unix", ep.path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	// The listener takes connections in the order they came: these two
	// hold the slots, so the third is over the cap.
	_, _, resp := rawRequest(t, ep, "POST "+ipc.PathToolPrefix+"send_message HTTP/1.1\r\nHost: gateway\r\nContent-Length: 12\r\n\r\n{\"text\":\"x\"}")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		string(body) != `{"error":"gateway: too many connections on this socket (at most 2 at once); retry shortly"}` {
		t.Fatalf("third connection: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if st := e.gw.Stats()["g"]; st.Refused != 1 {
		t.Errorf("stats %+v, want 1 refused", st)
	}
	if got := e.handler.recorded(); len(got) != 0 {
		t.Errorf("the handler saw %v", got)
	}
	idle[0].Close()
	hc := hostclient.New(ep.path, nil)
	defer hc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := hc.CallTool(ctx, "send_message", json.RawMessage(`{"text":"y"}`)); err != nil || string(r.Result) != `{"ok":true}` {
		t.Fatalf("after a slot freed: %+v, %v", r, err)
	}
}

// R3: a body not complete within BodyTimeout is cut, on /ipc and on the
// API alike; what follows a complete body (an API stream, a slow tool)
// and a long poll are not bounded by it.
func TestSocketBodyTimeout(t *testing.T) {
	const bodyTimeout = 300 * time.Millisecond
	streamed := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\"}\n\n")
		w.(http.Flusher).Flush()
		<-streamed
		io.WriteString(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}))
	defer upstream.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, upstream.URL), APIKey: realKey, BodyTimeout: bodyTimeout, PollTimeout: 3 * bodyTimeout})
	e.handler.slowTool = "slow_tool"
	e.handler.slowGate = make(chan struct{})
	e.handler.slowArrived = make(chan struct{}, 1)
	ep := e.open(t, "g", false, egress.Policy{})

	for _, tc := range []struct{ path, want string }{
		{ipc.PathOutput, `"output: body not complete within 300ms"`},
		{ipc.PathToolPrefix + "send_message", `"tool send_message: arguments: body not complete within 300ms"`},
		{"/v1/messages?beta=true", `{"error":{"message":"gateway: request body not complete within 300ms","type":"timeout_error"},"type":"error"}`},
	} {
		_, _, resp := rawRequest(t, ep, "POST "+tc.path+" HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"input_id\":")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), tc.want) {
			t.Errorf("half-sent body to %s: %d %s; want 408 with %s", tc.path, resp.StatusCode, body, tc.want)
		}
	}

	// A stream that outlasts the body's deadline goes on.
	br := bufio.NewReader(postStream(t, ep, "/v1/messages?beta=true").Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "message_start") {
		t.Fatalf("first event: %q %v", line, err)
	}
	// A tool that takes longer than the body's deadline answers.
	toolDone := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://gateway"+ipc.PathToolPrefix+"slow_tool", strings.NewReader(`{}`))
		resp, err := client(ep).Do(req)
		if err != nil {
			toolDone <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		toolDone <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-e.handler.slowArrived
	// A long poll of three times the body's deadline ends with 204, and by
	// then both the stream and the tool call have outlasted it too.
	if s, body, _ := do(t, ep, http.MethodGet, ipc.PathNext, ""); s != http.StatusNoContent {
		t.Errorf("long poll: %d %s; want 204 after the poll time", s, body)
	}
	close(streamed)
	if rest, err := io.ReadAll(br); err != nil || !strings.Contains(string(rest), "message_stop") {
		t.Errorf("the stream was cut: %q %v", rest, err)
	}
	close(e.handler.slowGate)
	if got := <-toolDone; got != "200 {}" {
		t.Errorf("slow tool: %s; want 200 {}", got)
	}
}

// A socket refused in a loop writes at most maxWarnLines refusal lines a
// minute; the next line written says how many were not.
func TestLogGate(t *testing.T) {
	var g logGate
	t0 := time.Unix(1_700_000_000, 0)
	for i := range maxWarnLines {
		if ok, dropped := g.pass(t0.Add(time.Duration(i) * time.Millisecond)); !ok || dropped != 0 {
			t.Fatalf("line %d: %v, %d", i, ok, dropped)
		}
	}
	for range 1000 {
		if ok, _ := g.pass(t0.Add(time.Second)); ok {
			t.Fatal("a line beyond the minute's lines was let through")
		}
	}
	if ok, dropped := g.pass(t0.Add(time.Minute + time.Second)); !ok || dropped != 1000 {
		t.Errorf("the next minute's first line: %v, %d not logged; want 1000", ok, dropped)
	}
}
