package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// Public addresses the tests pretend names resolve to. Decide must see a
// public address to allow a name under mode public, but a test must not
// reach the internet: the injected Dial maps these to local listeners
// (testDialer.route), so the gateway's whole path — resolve, decide,
// connect to the checked address — runs for real against 127.0.0.1.
// 1.1.1.1 and 8.8.8.8 are well-known public resolvers, chosen because
// Forbidden must classify them as public (documentation ranges are not).
var (
	publicA = netip.MustParseAddr("1.1.1.1")
	publicB = netip.MustParseAddr("8.8.8.8")
)

// logBuffer collects the gateway's JSON log lines.
type logBuffer struct{ testenv.Buffer }

// lines returns the decoded log lines whose msg is msg.
func (l *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitLines waits until there are at least n lines with msg.
func (l *logBuffer) waitLines(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := l.lines(t, msg)
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				t.Fatalf("%d %q log lines, want %d:\n%s", len(got), msg, n, l)
			}
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testResolver answers from a table and counts lookups.
type testResolver struct {
	mu      sync.Mutex
	table   map[string][]netip.Addr
	seq     map[string][][]netip.Addr // successive answers, the last repeated
	lookups []string
}

func (r *testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, host)
	if s := r.seq[host]; len(s) > 0 {
		a := s[0]
		if len(s) > 1 {
			r.seq[host] = s[1:]
		}
		return a, nil
	}
	if a, ok := r.table[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *testResolver) looked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lookups...)
}

// testDialer records every address the gateway connects to and routes
// the pretend-public ones to local listeners; other loopback addresses are
// dialled for real, anything else fails (tests never leave the machine).
type testDialer struct {
	mu     sync.Mutex
	route  map[string]string // "1.1.1.1:443" → "127.0.0.1:PORT"
	dialed []string
}

func (d *testDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dialed = append(d.dialed, addr)
	to, ok := d.route[addr]
	d.mu.Unlock()
	if !ok {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !ap.Addr().IsLoopback() {
			return nil, fmt.Errorf("test dialer: %s is unreachable", addr)
		}
		to = addr
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

func (d *testDialer) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.dialed...)
}

// env is a gateway under test with its fakes.
type env struct {
	gw       *Gateway
	log      *logBuffer
	resolver *testResolver
	dialer   *testDialer
	handler  *testHandler
	usage    *testUsage
	dir      string
}

func newEnv(t *testing.T, opt Options) *env {
	t.Helper()
	e := &env{
		log:      &logBuffer{},
		resolver: &testResolver{table: map[string][]netip.Addr{}},
		dialer:   &testDialer{route: map[string]string{}},
		handler:  newTestHandler(),
		usage:    &testUsage{},
		dir:      t.TempDir(),
	}
	opt.Logger = slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opt.Resolver == nil {
		opt.Resolver = e.resolver
	}
	if opt.Dial == nil {
		opt.Dial = e.dialer.Dial
	}
	if opt.Handler == nil {
		opt.Handler, opt.Tools = e.handler, e.handler
	}
	if opt.Usage == nil {
		opt.Usage = e.usage
	}
	e.gw = New(opt)
	t.Cleanup(func() { e.gw.Close() })
	return e
}

// open opens an endpoint for folder with policy p.
func (e *env) open(t *testing.T, folder string, isMain bool, p egress.Policy) *Endpoint {
	t.Helper()
	return e.openAs(t, Caller{Folder: folder, IsMain: isMain}, p)
}

// openAs opens the endpoint of caller c with policy p.
func (e *env) openAs(t *testing.T, c Caller, p egress.Policy) *Endpoint {
	t.Helper()
	ep, err := e.gw.Open(c, p, filepath.Join(e.dir, "ipc", c.Folder), -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// client is an HTTP client talking to the endpoint's socket.
func client(ep *Endpoint) *http.Client { return testenv.UnixClient(ep.path) }

// do sends a request to the socket and returns status and body.
func do(t *testing.T, ep *Endpoint, method, path string, body string, header ...string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://gateway"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := client(ep).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// rawRequest writes raw HTTP on a fresh socket connection and returns the
// connection and the response head.
func rawRequest(t *testing.T, ep *Endpoint, raw string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	return rawOn(t, ep.path, raw)
}

// rawOn is rawRequest on the unix socket at path.
func rawOn(t *testing.T, path, raw string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response to %q: %v", strings.SplitN(raw, "\r\n", 2)[0], err)
	}
	return c, br, resp
}

// connect sends CONNECT target and returns the status and, on 200, the
// tunnel.
func connect(t *testing.T, ep *Endpoint, target string) (int, string, net.Conn, *bufio.Reader) {
	t.Helper()
	c, br, resp := rawRequest(t, ep, fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target))
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil, nil
	}
	return resp.StatusCode, "", c, br
}

// echoServer accepts TCP connections on 127.0.0.1 and echoes lines back
// prefixed with "echo: ".
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "echo: %s\n", sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// testHandler records IPC calls, tool calls among them.
type testHandler struct {
	mu      sync.Mutex
	calls   []string // "next a", "output b in1", "tool a/main send_message {...}"
	inputs  chan ipc.Input
	nextCtx chan context.Context // each Next's context, for the test
	outErr  error
	toolRes any
	toolErr error
	// Calls of the tool named slowTool wait for slowGate to close, each
	// first sending on slowArrived (if not nil).
	slowTool    string
	slowGate    chan struct{}
	slowArrived chan struct{}
}

func newTestHandler() *testHandler {
	return &testHandler{inputs: make(chan ipc.Input, 4), nextCtx: make(chan context.Context, 4)}
}

func (h *testHandler) record(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, s)
}

func (h *testHandler) recorded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

func (h *testHandler) Next(ctx context.Context, folder string) (ipc.Input, bool, error) {
	h.record("next " + folder)
	select {
	case h.nextCtx <- ctx:
	default:
	}
	select {
	case in := <-h.inputs:
		return in, true, nil
	case <-ctx.Done():
		return ipc.Input{}, false, nil
	}
}

func (h *testHandler) Output(_ context.Context, folder string, out ipc.Output) error {
	h.record(fmt.Sprintf("output %s %s %q", folder, out.InputID, out.Result))
	return h.outErr
}

func (h *testHandler) Call(_ context.Context, c Caller, name string, args json.RawMessage) (any, error) {
	role := "other"
	if c.IsMain {
		role = "main"
	}
	if name == h.slowTool && h.slowTool != "" {
		if h.slowArrived != nil {
			h.slowArrived <- struct{}{}
		}
		<-h.slowGate
		return nil, nil
	}
	h.record(fmt.Sprintf("tool %s/%s %s %s", c.Folder, role, name, args))
	return h.toolRes, h.toolErr
}

// testUsage records AddUsage calls.
type testUsage struct {
	mu      sync.Mutex
	records []usageRecord
	block   chan struct{} // if set, a record waits for it to close, as a slow database would
}

type usageRecord struct {
	Folder, Day                    string
	In, Out, CacheRead, CacheWrite int64
	Cost                           int64
}

func (u *testUsage) RecordUsage(_ context.Context, folder, day string, in, out, cacheRead, cacheWrite, cost int64) error {
	if u.block != nil {
		<-u.block
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.records = append(u.records, usageRecord{folder, day, in, out, cacheRead, cacheWrite, cost})
	return nil
}

// wait returns the records once there are n of them.
func (u *testUsage) wait(t *testing.T, n int) []usageRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u.mu.Lock()
		got := append([]usageRecord(nil), u.records...)
		u.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d usage records, want %d: %+v", len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustPolicy(t *testing.T, mode string, allow ...string) egress.Policy {
	t.Helper()
	p, err := egress.ParsePolicy(mode, allow)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
