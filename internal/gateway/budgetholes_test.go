package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
)

// slowUpstream streams a message whose final usage (message_delta: 50000
// output tokens, fewer than bigBody's max_tokens, so that an estimate is
// told from it) comes only after release is closed, as a long generation
// would; with cut, it ends the stream there without it instead.
func slowUpstream(t *testing.T, release chan struct{}, model string, cut bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":%q,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n", model)
		for range 50 {
			fmt.Fprint(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lots of useful output \"}}\n\n")
		}
		fmt.Fprint(w, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		if cut {
			panic(http.ErrAbortHandler)
		}
		fmt.Fprint(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":50000}}\n\n")
		fmt.Fprint(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawPost sends body to ep on a connection of its own and returns it.
func rawPost(t *testing.T, ep *Endpoint, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", ep.path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return c, bufio.NewReader(c)
}

// postCut posts body and reads the response, which the upstream cuts.
func postCut(t *testing.T, ep *Endpoint, body string) {
	t.Helper()
	resp, err := client(ep).Post("http://gateway/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

const bigBody = `{"model":"claude-opus-4-1","max_tokens":64000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

// The container reads the content and hangs up before message_delta: the
// gateway reads the rest, and the 50000 output tokens billed count.
func TestStreamClosedEarlyCountsItsEnd(t *testing.T) {
	release := make(chan struct{})
	up := slowUpstream(t, release, "claude-opus-4-1-20250805", false)
	usage := &testUsage{}
	e := newEnv(t, Options{Upstream: mustURL(t, up.URL), APIKey: realKey, Usage: usage})
	ep := e.open(t, "family", false, egress.Policy{})
	c, br := rawPost(t, ep, bigBody)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(l, "content_block_stop") {
			break
		}
	}
	c.Close()
	time.Sleep(100 * time.Millisecond) // the container is gone before the usage comes
	close(release)
	if recs := usage.wait(t, 1); recs[0].In != 10 || recs[0].Out != 50000 {
		t.Errorf("recorded %+v, want 10 in, 50000 out", recs)
	}
}

// A JSON response the container hangs up on early is read to its end.
func TestJSONClosedEarlyCountsItsEnd(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		text := strings.Repeat("lots of useful output ", 15000)
		fmt.Fprintf(w, `{"id":"msg_1","type":"message","model":"claude-opus-4-1","content":[{"type":"text","text":%q}],"usage":{"input_tokens":150000,"output_tokens":60000}}`, text)
	}))
	t.Cleanup(up.Close)
	usage := &testUsage{}
	e := newEnv(t, Options{Upstream: mustURL(t, up.URL), APIKey: realKey, Usage: usage})
	ep := e.open(t, "family", false, egress.Policy{})
	c, br := rawPost(t, ep, strings.Replace(bigBody, `"stream":true,`, "", 1))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 1024))
	c.Close()
	if recs := usage.wait(t, 1); recs[0].In != 150000 || recs[0].Out != 60000 {
		t.Errorf("recorded %+v, want 150000 in, 60000 out", recs)
	}
}

// A stream the upstream cuts before its final usage is charged input as
// message_start said and output at max_tokens.
func TestStreamCutChargesAnEstimate(t *testing.T) {
	release := make(chan struct{})
	close(release)
	up := slowUpstream(t, release, "claude-opus-4-1", true)
	usage := &testUsage{}
	e := newEnv(t, Options{Upstream: mustURL(t, up.URL), APIKey: realKey, Usage: usage})
	ep := e.open(t, "family", false, egress.Policy{})
	postCut(t, ep, bigBody)
	if recs := usage.wait(t, 1); recs[0].In != 10 || recs[0].Out != 64000 {
		t.Errorf("recorded %+v, want 10 in (message_start), 64000 out (max_tokens)", recs)
	}
}

// A JSON response the upstream cuts is charged the body's size / 3 as
// input and max_tokens as output.
func TestJSONCutChargesAnEstimate(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100000")
		io.WriteString(w, `{"id":"msg_1","type":"message","content":[{"type":"text","text":"cut`)
	}))
	t.Cleanup(up.Close)
	usage := &testUsage{}
	e := newEnv(t, Options{Upstream: mustURL(t, up.URL), APIKey: realKey, Usage: usage})
	ep := e.open(t, "family", false, egress.Policy{})
	body := strings.Replace(bigBody, `"stream":true,`, "", 1)
	postCut(t, ep, body)
	if recs := usage.wait(t, 1); recs[0].In != int64(len(body)/3) || recs[0].Out != 64000 {
		t.Errorf("recorded %+v, want %d in, 64000 out", recs, len(body)/3)
	}
}

// Calls started at once reserve their estimates: of 8 against a 300-token
// budget, two run (each reserves 156 tokens: its body / 3 and max_tokens
// 100; the first is not counted against itself, the second sees 156, the
// third 312); the others are told to try again later.
func TestParallelCallsReserve(t *testing.T) {
	release := make(chan struct{})
	up := slowUpstream(t, release, "claude-test", false)
	usage := &testUsage{}
	src := &memBudgets{usage: usage, group: map[string]Budget{"family": {DayTokens: 300}}}
	e := newEnv(t, Options{Upstream: mustURL(t, up.URL), APIKey: realKey, Usage: usage,
		Budget: NewBudgeter(BudgetOptions{Source: src})})
	ep := e.open(t, "family", false, egress.Policy{})
	var wg sync.WaitGroup
	var ok, later atomic.Int32
	for range 8 {
		wg.Go(func() {
			switch s, _, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody); s {
			case 200:
				ok.Add(1)
			case 429:
				later.Add(1)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	close(release)
	wg.Wait()
	if ok.Load() != 2 || later.Load() != 6 {
		t.Errorf("%d calls passed, %d told to retry; want 2 and 6", ok.Load(), later.Load())
	}
	// Settled: the next call sees the real spend (2 × 50010 tokens), not
	// a reservation.
	if s, body, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody); s != 402 || !strings.Contains(body, "100020 tokens used") {
		t.Errorf("after: %d %s", s, body)
	}
}

// With a dollar budget, a model the price table lacks is refused; with
// token budgets only, it runs.
func TestUnpricedModelRefusedUnderDollarBudget(t *testing.T) {
	release := make(chan struct{})
	close(release)
	up := slowUpstream(t, release, "claude-3-5-sonnet-20241022", false)
	usage := &testUsage{}
	prices, _ := ParsePrices(DefaultPrices)
	src := &memBudgets{usage: usage, group: map[string]Budget{"family": {DayUSD: 10}}}
	e := newEnv(t, Options{Upstream: mustURL(t, up.URL), APIKey: realKey, Usage: usage, Prices: prices,
		Budget: NewBudgeter(BudgetOptions{Source: src})})
	ep := e.open(t, "family", false, egress.Policy{})
	body := strings.Replace(streamBody, "claude-test", "claude-3-5-sonnet-20241022", 1)
	s, got, _ := do(t, ep, http.MethodPost, "/v1/messages", body)
	if s != 402 || !strings.Contains(got, `"billing_error"`) || !strings.Contains(got, "claude-3-5-sonnet-20241022") || !strings.Contains(got, "PRICES") {
		t.Errorf("unpriced under a dollar budget: %d %s", s, got)
	}
	if s, got, _ := do(t, ep, http.MethodPost, "/v1/messages", strings.Replace(body, "claude-3-5-sonnet-20241022", "claude-haiku-4-5", 1)); s != 200 {
		t.Errorf("priced model: %d %s", s, got)
	}
	src.mu.Lock()
	src.group["family"], src.total = Budget{DayTokens: 1 << 30}, Budget{}
	src.mu.Unlock()
	if s, got, _ := do(t, ep, http.MethodPost, "/v1/messages", body); s != 200 {
		t.Errorf("unpriced under token budgets only: %d %s", s, got)
	}
}

// failingUsage stores nothing.
type failingUsage struct{}

func (failingUsage) RecordUsage(context.Context, string, string, int64, int64, int64, int64, int64) error {
	return errors.New("disk full")
}

// A response whose row cannot be stored still counts against the budget.
func TestUnstoredUsageStillCounts(t *testing.T) {
	release := make(chan struct{})
	close(release)
	up := slowUpstream(t, release, "claude-test", false)
	src := &memBudgets{usage: &testUsage{}, group: map[string]Budget{"family": {DayTokens: 300}}}
	e := newEnv(t, Options{Upstream: mustURL(t, up.URL), APIKey: realKey, Usage: failingUsage{},
		Budget: NewBudgeter(BudgetOptions{Source: src})})
	ep := e.open(t, "family", false, egress.Policy{})
	if s, _, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody); s != 200 {
		t.Fatalf("first call: %d", s)
	}
	e.gw.records.Wait()
	if s, body, _ := do(t, ep, http.MethodPost, "/v1/messages", streamBody); s != 402 {
		t.Errorf("after an unstored row: %d %s", s, body)
	}
}

// One call at a time may always start while under the caps, whatever its
// estimate; a second beside it counts the first's; a released reservation
// counts no more.
func TestReserveRule(t *testing.T) {
	src := &memBudgets{usage: &testUsage{}, group: map[string]Budget{"family": {DayTokens: 300}}}
	b := NewBudgeter(BudgetOptions{Source: src})
	ctx := context.Background()
	big := Spend{Requests: 1, InputTokens: 10, OutputTokens: 32000}
	release, _, over, err := b.Reserve(ctx, "family", big, true)
	if over || err != nil {
		t.Fatalf("first call of a 300-token budget asking 32000: over %v, %v", over, err)
	}
	if _, hit, over, err := b.Reserve(ctx, "family", Spend{OutputTokens: 1}, true); !over || err != nil || hit.Limit != 0 {
		t.Fatalf("beside it: over %v, hit %+v, %v; want refused by the reservation alone", over, hit, err)
	}
	if _, _, over, _ := b.Reserve(ctx, "work", Spend{OutputTokens: 1}, true); over {
		t.Fatal("another group is refused by family's reservation")
	}
	release()
	release() // once only
	r2, _, over, err := b.Reserve(ctx, "family", Spend{OutputTokens: 1}, true)
	if over || err != nil {
		t.Fatalf("after release: over %v, %v", over, err)
	}
	r2()
	if _, _, _, err := b.Reserve(ctx, "family", Spend{}, false); err != nil {
		t.Fatalf("unpriced under token caps: %v", err)
	}
	src.mu.Lock()
	src.total = Budget{MonthUSD: 100}
	src.mu.Unlock()
	if _, _, _, err := b.Reserve(ctx, "family", Spend{}, false); !errors.Is(err, errUnpriced) {
		t.Fatalf("unpriced under the total's dollar cap: %v", err)
	}
}
