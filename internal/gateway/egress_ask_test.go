package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
)

// question is one Ask the gateway made, with the way to answer it.
type question struct {
	folder, host string
	port         int
	browser      bool     // a page in the group's browser asks
	looked       []string // lookups the resolver had seen when the question came
	answer       chan egress.Verdict
}

// testApprover hands each question to the test and waits for its answer
// or the end of the wait.
type testApprover struct {
	res *testResolver
	mu  sync.Mutex
	all []question
	q   chan question
}

func newApprover(res *testResolver) *testApprover {
	return &testApprover{res: res, q: make(chan question, 16)}
}

func (a *testApprover) Ask(ctx context.Context, folder, host string, port int, browser bool) (egress.Verdict, error) {
	q := question{folder: folder, host: host, port: port, browser: browser, looked: a.res.looked(), answer: make(chan egress.Verdict, 1)}
	a.mu.Lock()
	a.all = append(a.all, q)
	a.mu.Unlock()
	a.q <- q
	select {
	case v := <-q.answer:
		return v, nil
	case <-ctx.Done():
		return egress.VerdictTimeout, nil
	}
}

func (a *testApprover) asked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.all)
}

// next waits for the gateway's next question.
func (a *testApprover) next(t *testing.T) question {
	t.Helper()
	select {
	case q := <-a.q:
		return q
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway asked nothing")
		return question{}
	}
}

// askEnv is an env whose name a.example resolves to publicA (routed to an
// echo server), private.example to 10.0.0.1, and group g's endpoint
// under mode ask with the rule named.example.
func askEnv(t *testing.T, opt Options) (*env, *Endpoint, *testApprover) {
	t.Helper()
	res := &testResolver{table: map[string][]netip.Addr{
		"a.example": {publicA}, "named.example": {publicA}, "private.example": {netip.MustParseAddr("10.0.0.1")},
	}}
	ap := newApprover(res)
	opt.Resolver, opt.Approver = res, ap
	e := newEnv(t, opt)
	e.resolver = res
	e.dialer.route["1.1.1.1:443"] = echoServer(t)
	return e, e.open(t, "g", false, mustPolicy(t, "ask", "named.example")), ap
}

// connectAsync sends CONNECT target and returns the response when it
// comes.
func connectAsync(t *testing.T, ep *Endpoint, target string) <-chan connectResult {
	out := make(chan connectResult, 1)
	go func() {
		c, br, resp := rawRequest(t, ep, fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target))
		r := connectResult{status: resp.StatusCode, br: br}
		if resp.StatusCode != http.StatusOK {
			b := make([]byte, 512)
			n, _ := resp.Body.Read(b)
			r.body = string(b[:n])
		} else {
			r.conn = c
		}
		out <- r
	}()
	return out
}

type connectResult struct {
	status int
	body   string
	conn   interface {
		Write([]byte) (int, error)
	}
	br *bufio.Reader
}

func waitResult(t *testing.T, ch <-chan connectResult) connectResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the CONNECT")
		return connectResult{}
	}
}

// Under ask a CONNECT to a name no rule covers waits while the owner is
// asked — before the name is looked up — and goes through on allow; what
// a rule names goes through without a question.
func TestAskAllowLetsTheHeldConnectionThrough(t *testing.T) {
	e, ep, ap := askEnv(t, Options{})
	res := connectAsync(t, ep, "A.Example:443")
	q := ap.next(t)
	if q.folder != "g" || q.host != "a.example" || q.port != 443 {
		t.Fatalf("asked %+v", q)
	}
	if len(q.looked) != 0 {
		t.Errorf("looked up %v before the owner answered", q.looked)
	}
	select {
	case r := <-res:
		t.Fatalf("the CONNECT was answered before the owner: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	q.answer <- egress.VerdictAllow
	r := waitResult(t, res)
	if r.status != http.StatusOK {
		t.Fatalf("after allow: %d %s", r.status, r.body)
	}
	fmt.Fprintf(r.conn, "ping\n")
	if line, err := r.br.ReadString('\n'); err != nil || line != "echo: ping\n" {
		t.Fatalf("through the tunnel: %q, %v", line, err)
	}
	if got := e.dialer.addrs(); !slices.Equal(got, []string{"1.1.1.1:443"}) {
		t.Errorf("dialled %v", got)
	}

	// A rule's destination is not asked about.
	status, body, c, _ := connect(t, ep, "named.example:443")
	if status != http.StatusOK {
		t.Fatalf("named: %d %s", status, body)
	}
	c.Close()
	if n := ap.asked(); n != 1 {
		t.Errorf("%d questions, want only the first", n)
	}
}

// deny and no answer refuse the connection; the same destination is then
// refused in this run without asking again.
func TestAskDenyAndTimeoutRefuse(t *testing.T) {
	e, ep, ap := askEnv(t, Options{AskTimeout: 200 * time.Millisecond})
	res := connectAsync(t, ep, "a.example:443")
	ap.next(t).answer <- egress.VerdictDeny
	if r := waitResult(t, res); r.status != http.StatusForbidden || !strings.Contains(r.body, "the owner denied it") {
		t.Fatalf("after deny: %d %q", r.status, r.body)
	}
	status, body, _, _ := connect(t, ep, "a.example:443")
	if status != http.StatusForbidden || !strings.Contains(body, "answer in this run was deny") || ap.asked() != 1 {
		t.Fatalf("again after deny: %d %q, %d questions", status, body, ap.asked())
	}

	start := time.Now()
	res = connectAsync(t, ep, "b.example:443")
	ap.next(t) // never answered
	r := waitResult(t, res)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "no answer from the owner within 200ms") {
		t.Fatalf("unanswered: %d %q", r.status, r.body)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("refused after %v, before the ask timeout", d)
	}
	if len(e.dialer.addrs()) != 0 || len(e.resolver.looked()) != 0 {
		t.Errorf("dialled %v, looked up %v for refused destinations", e.dialer.addrs(), e.resolver.looked())
	}
	if st := e.gw.Stats()["g"]; st.Denied != 3 || st.Active != 0 {
		t.Errorf("stats %+v", st)
	}
}

// Private, loopback, metadata and host addresses are refused without a
// question; a name the owner allowed that resolves to a private address
// is refused all the same.
func TestAskNeverForPrivateDestinations(t *testing.T) {
	_, ep, ap := askEnv(t, Options{})
	for _, target := range []string{"127.0.0.1:8080", "10.0.0.1:443", "169.254.169.254:80", "[::1]:443", "localhost:80"} {
		status, body, _, _ := connect(t, ep, target)
		if status != http.StatusForbidden {
			t.Errorf("%s: %d %s", target, status, body)
		}
	}
	if n := ap.asked(); n != 0 {
		t.Fatalf("asked %d times about private destinations", n)
	}
	res := connectAsync(t, ep, "private.example:443")
	ap.next(t).answer <- egress.VerdictAllow
	if r := waitResult(t, res); r.status != http.StatusForbidden || !strings.Contains(r.body, "private") {
		t.Fatalf("allowed name to a private address: %d %q", r.status, r.body)
	}
}

// A public IP literal is judged first and asked about after; the plain
// http:// forward is held the same way.
func TestAskLiteralAndForward(t *testing.T) {
	e, ep, ap := askEnv(t, Options{})
	e.dialer.route["8.8.8.8:80"] = e.dialer.route["1.1.1.1:443"]
	res := connectAsync(t, ep, "1.1.1.1:443")
	if q := ap.next(t); q.host != "1.1.1.1" || q.port != 443 {
		t.Fatalf("asked %+v", q)
	} else {
		q.answer <- egress.VerdictAlways
	}
	if r := waitResult(t, res); r.status != http.StatusOK {
		t.Fatalf("literal after always: %d %s", r.status, r.body)
	}
	done := make(chan int, 1)
	go func() {
		_, _, resp := rawRequest(t, ep, "GET http://8.8.8.8/x HTTP/1.1\r\nHost: 8.8.8.8\r\n\r\n")
		done <- resp.StatusCode
	}()
	q := ap.next(t)
	if q.host != "8.8.8.8" || q.port != 80 {
		t.Fatalf("asked %+v", q)
	}
	q.answer <- egress.VerdictDeny
	if got := <-done; got != http.StatusForbidden {
		t.Fatalf("forward after deny: %d", got)
	}
}

// What a group can make wait is bounded: past maxAsks pending questions a
// new destination is refused at once; without an Approver nothing is
// held.
func TestAskBounded(t *testing.T) {
	_, ep, ap := askEnv(t, Options{})
	var held []question
	var results []<-chan connectResult
	for i := range maxAsks {
		results = append(results, connectAsync(t, ep, fmt.Sprintf("h%d.example:443", i)))
		held = append(held, ap.next(t))
	}
	status, body, _, _ := connect(t, ep, "more.example:443")
	if status != http.StatusForbidden || !strings.Contains(body, "already wait for the owner") {
		t.Fatalf("beyond the bound: %d %q", status, body)
	}
	for i, q := range held {
		q.answer <- egress.VerdictDeny
		waitResult(t, results[i])
	}

	e := newEnv(t, Options{})
	ep = e.open(t, "g", false, mustPolicy(t, "ask"))
	status, body, _, _ = connect(t, ep, "a.example:443")
	if status != http.StatusForbidden || !strings.Contains(body, "no one to ask") {
		t.Fatalf("no approver: %d %q", status, body)
	}
}
