package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

const (
	resolveTimeout = 10 * time.Second
	dialTimeout    = 10 * time.Second
)

// flow is one egress attempt: what was asked, what was decided, and what
// went through. It ends as one log line.
type flow struct {
	kind   string // "connect" or "http"
	host   string // as canonical as it could be made
	port   int
	d      egress.Decision
	addrs  []netip.Addr // every address the decision checked, in resolver order
	start  time.Time
	up     atomic.Int64 // container → destination
	down   atomic.Int64 // destination → container
	err    error        // why an allowed flow failed
	status int          // HTTP status answered to the container
	// browser: the flow came on the browser's socket, so the policy is
	// the group's with PublicOnly.
	browser bool
}

// decide resolves host on the host (unless it is an IP literal or the
// policy refuses it unresolved) and applies the group's policy (finding 2).
// Under mode ask, a destination the policy leaves to the owner is held
// while the owner is asked (ask): a name no rule covers before it is
// looked up, an address once Decide has found it public.
func (e *Endpoint) decide(ctx context.Context, f *flow) {
	h, lit, err := egress.CanonicalHost(f.host)
	if err == nil {
		f.host = h
	}
	policy := e.policy
	policy.PublicOnly = f.browser
	if reason, ok := policy.Prescreen(f.host, f.port); !ok {
		f.d = egress.Decision{Reason: reason}
		return
	}
	approved := ""
	if policy.AskFirst(f.host, f.port) {
		if approved = e.ask(ctx, f); approved == "" {
			return
		}
	}
	var addrs []netip.Addr
	if !lit.IsValid() {
		ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		addrs, err = e.gw.opt.Resolver.LookupNetIP(ctx, "ip", f.host)
		if err != nil {
			f.d = egress.Decision{Reason: "cannot resolve " + f.host + ": " + err.Error()}
			return
		}
	}
	f.d = egress.Decide(policy, f.host, f.port, addrs)
	if f.d.Ask {
		// Decide gives Ask only when every address is public or opened
		// by a rule: the owner's yes never opens a private address.
		if approved == "" {
			if approved = e.ask(ctx, f); approved == "" {
				return
			}
		}
		f.d.Allowed, f.d.Ask, f.d.Reason = true, false, approved
	}
	if f.d.Allowed {
		// Decide passed every address, so each may be tried in turn.
		f.addrs = []netip.Addr{f.d.Addr}
		for _, a := range addrs {
			if a = a.Unmap(); a != f.d.Addr {
				f.addrs = append(f.addrs, a)
			}
		}
	}
}

// maxAsks bounds the destinations of one group waiting for the owner at
// once: each holds a connection slot and a request, and the owner's chat
// should not fill with questions.
const maxAsks = 4

// share is what one of an Endpoint's sockets may hold of the host.
type share struct {
	slots    chan struct{} // one per open egress connection
	asks     asks          // questions to the owner (mode ask)
	warnings logGate       // refusal and tool lines in the daemon's log
}

// shareOf is the share f draws on: the browser's own for a flow on its
// socket, so a page cannot use up the agent's.
func (e *Endpoint) shareOf(f *flow) *share {
	if f.browser {
		return &e.page
	}
	return &e.agent
}

// asks is what an Endpoint remembers of its questions to the owner.
type asks struct {
	mu      sync.Mutex
	pending int
	refused map[string]egress.Verdict // host:port → deny or timeout, for this run
}

// ask holds the flow while the owner is asked about its destination (at
// most Options.AskTimeout) and returns why it may go on, or "" after
// setting f.d to the refusal. A destination refused once in this run is
// refused again without asking, so an agent that retries cannot flood the
// owner's chat.
func (e *Endpoint) ask(ctx context.Context, f *flow) string {
	target := joinHostPort(f.host, f.port)
	refuse := func(format string, args ...any) string {
		f.d = egress.Decision{Reason: fmt.Sprintf(format, args...)}
		return ""
	}
	if e.gw.opt.Approver == nil {
		return refuse("%s is not in the group's allow list, and there is no one to ask", target)
	}
	a := &e.shareOf(f).asks
	a.mu.Lock()
	v, done := a.refused[target]
	full := a.pending >= maxAsks
	if !done && !full {
		a.pending++
	}
	a.mu.Unlock()
	switch {
	case done:
		return refuse("%s: the owner's answer in this run was %s", target, v)
	case full:
		return refuse("%s: %d destinations already wait for the owner's answer", target, maxAsks)
	}
	defer func() { a.mu.Lock(); a.pending--; a.mu.Unlock() }()

	actx, cancel := context.WithTimeout(ctx, e.gw.opt.AskTimeout)
	defer cancel()
	v, err := e.gw.opt.Approver.Ask(actx, e.group.Folder, f.host, f.port, f.browser)
	if err != nil {
		return refuse("%s: cannot ask the owner: %v", target, err)
	}
	if v.Allows() {
		return "allowed by the owner (" + string(v) + ")"
	}
	if v != egress.VerdictDeny {
		v = egress.VerdictTimeout // no answer, or none a verdict names: no
	}
	a.mu.Lock()
	if a.refused == nil {
		a.refused = map[string]egress.Verdict{}
	}
	a.refused[target] = v
	a.mu.Unlock()
	switch {
	case v == egress.VerdictDeny:
		return refuse("%s: the owner denied it", target)
	case ctx.Err() != nil:
		return refuse("%s: the connection ended before the owner answered", target)
	}
	return refuse("%s: no answer from the owner within %v", target, e.gw.opt.AskTimeout)
}

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// begin takes a connection slot of the group and decides; it answers the
// container and returns false when the flow may not go on.
func (e *Endpoint) begin(w http.ResponseWriter, r *http.Request, f *flow) bool {
	select {
	case e.shareOf(f).slots <- struct{}{}:
	default:
		whose := "per group"
		if f.browser {
			whose = "for the browser"
		}
		f.d = egress.Decision{Reason: fmt.Sprintf("too many open connections (max %d %s)", cap(e.shareOf(f).slots), whose)}
		f.status = http.StatusTooManyRequests
		e.refuse(w, f)
		return false
	}
	e.decide(r.Context(), f)
	if !f.d.Allowed {
		<-e.shareOf(f).slots
		f.status = http.StatusForbidden
		e.refuse(w, f)
		return false
	}
	e.gw.count(e.group.Folder, func(s *Stats) { s.Allowed++; s.Active++ })
	return true
}

// end releases the slot of an allowed flow, counts its bytes and logs it.
func (e *Endpoint) end(f *flow) {
	<-e.shareOf(f).slots
	up, down := f.up.Load(), f.down.Load()
	e.gw.count(e.group.Folder, func(s *Stats) { s.Active--; s.BytesUp += up; s.BytesDown += down })
	e.logFlow(f)
}

func (e *Endpoint) refuse(w http.ResponseWriter, f *flow) {
	e.gw.count(e.group.Folder, func(s *Stats) { s.Denied++ })
	e.logFlow(f)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(f.status)
	target := f.host
	if f.port != 0 {
		target = net.JoinHostPort(f.host, strconv.Itoa(f.port))
	}
	fmt.Fprintf(w, "nanoclaw egress: %s denied: %s\n", target, f.d.Reason)
	if e.gw.opt.OnDenied != nil {
		e.gw.opt.OnDenied(e.group.Folder, sanitize.Clip(target, 256, "…"), f.d.Reason)
	}
}

// logFlow writes the one line of an egress attempt.
func (e *Endpoint) logFlow(f *flow) {
	attrs := []any{"group", e.group.Folder, "kind", f.kind, "host", sanitize.Clip(f.host, 256, "…"), "port", f.port,
		"allowed", f.d.Allowed, "reason", f.d.Reason}
	if f.browser {
		attrs = append(attrs, "via", "browser")
	}
	if f.d.Addr.IsValid() {
		attrs = append(attrs, "addr", f.d.Addr.String())
	}
	if f.d.Allowed {
		attrs = append(attrs, "bytes_up", f.up.Load(), "bytes_down", f.down.Load(),
			"duration_ms", time.Since(f.start).Milliseconds())
	}
	if f.status != 0 {
		attrs = append(attrs, "status", f.status)
	}
	if f.err != nil {
		attrs = append(attrs, "err", f.err.Error())
	}
	if f.d.Allowed && f.err == nil {
		e.gw.opt.Logger.Info("egress", attrs...)
	} else {
		e.gatedBy(&e.shareOf(f).warnings, slog.LevelWarn, "egress", attrs...)
	}
}

// dialChecked connects to an address the policy checked, never to the
// name: a second DNS answer cannot redirect it (DNS rebinding). The
// addresses are tried in the resolver's order (an IPv6 address first may
// be unreachable on an IPv4-only host); f.d.Addr becomes the one used.
func (e *Endpoint) dialChecked(ctx context.Context, f *flow) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var errs []error
	for _, a := range f.addrs {
		addr := netip.AddrPortFrom(a, uint16(f.port)).String()
		c, err := e.gw.opt.Dial(ctx, "tcp", addr)
		if err == nil {
			f.d.Addr = a
			return c, nil
		}
		errs = append(errs, fmt.Errorf("connect to %s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// connect serves CONNECT host:port: a byte tunnel, no TLS interception.
// browser says it came on the browser's socket.
func (e *Endpoint) connect(w http.ResponseWriter, r *http.Request, browser bool) {
	f := &flow{kind: "connect", start: time.Now(), browser: browser}
	host, portText, err := net.SplitHostPort(r.Host)
	if err == nil {
		// Out-of-range ports are left to the policy, which names them.
		f.host = host
		f.port, err = strconv.Atoi(portText)
	}
	if err != nil {
		f.host, f.port, f.status = r.Host, 0, http.StatusBadRequest
		f.d.Reason = "CONNECT needs host:port"
		e.refuse(w, f)
		return
	}
	if !e.begin(w, r, f) {
		return
	}
	defer e.end(f)
	dst, err := e.dialChecked(r.Context(), f)
	if err != nil {
		f.err, f.status = err, http.StatusBadGateway
		http.Error(w, "nanoclaw egress: "+err.Error(), f.status)
		return
	}
	defer dst.Close()
	src, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.err, f.status = fmt.Errorf("hijack: %w", err), http.StatusInternalServerError
		http.Error(w, "nanoclaw egress: cannot tunnel on this connection", f.status)
		return
	}
	defer src.Close()
	f.status = http.StatusOK
	src.SetDeadline(time.Time{}) //nolint:errcheck // cleared so the tunnel sets its own
	if _, err := io.WriteString(src, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		f.err = err
		return
	}
	// Bytes the client sent right after its CONNECT are already buffered.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := dst.Write(b); err != nil {
			f.err = err
			return
		}
		f.up.Add(int64(n))
	}
	f.err = tunnel(r.Context(), src, dst, e.gw.opt.TunnelIdle, &f.up, &f.down)
}

// tunnel copies bytes both ways until both sides are done, either fails,
// nothing moved either way for idle, or ctx ends (the endpoint closes).
func tunnel(ctx context.Context, client, dst net.Conn, idle time.Duration, up, down *atomic.Int64) error {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	closeBoth := func() { client.Close(); dst.Close() }
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()

	errs := make(chan error, 2)
	pipe := func(to, from net.Conn, n *atomic.Int64) {
		buf := make([]byte, 32<<10)
		for {
			from.SetReadDeadline(time.Now().Add(idle)) //nolint:errcheck // a failed deadline shows as a read error
			nr, err := from.Read(buf)
			if nr > 0 {
				last.Store(time.Now().UnixNano())
				to.SetWriteDeadline(time.Now().Add(idle)) //nolint:errcheck // as above
				nw, werr := to.Write(buf[:nr])
				n.Add(int64(nw))
				if werr != nil {
					errs <- werr
					return
				}
			}
			if err == nil {
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, last.Load())) < idle {
				continue // the other direction is busy: this one may wait
			}
			if errors.Is(err, io.EOF) {
				// Pass the half-close on; the other direction goes on.
				// Without CloseWrite the collector closes both.
				if cw, ok := to.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite() //nolint:errcheck // the peer may be gone already
					err = nil
				}
				errs <- err
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("idle for %v", idle)
			}
			errs <- err
			return
		}
	}
	go pipe(dst, client, up)
	go pipe(client, dst, down)
	var first error
	for range 2 {
		if err := <-errs; err != nil {
			if first == nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				first = err
			}
			closeBoth() // one side failed: end the other direction too
		}
	}
	closeBoth()
	return first
}

// forward serves an absolute-URI plain-HTTP request ("GET http://host/...")
// through the checked address. browser says it came on the browser's
// socket.
func (e *Endpoint) forward(w http.ResponseWriter, r *http.Request, browser bool) {
	f := &flow{kind: "http", start: time.Now(), host: r.URL.Hostname(), port: 80, browser: browser}
	var err error
	if p := r.URL.Port(); p != "" {
		f.port, err = strconv.Atoi(p)
	}
	if r.URL.Scheme != "http" || err != nil {
		f.d.Reason, f.status = fmt.Sprintf("only http:// URLs are forwarded (got %s://%s); use CONNECT for https", r.URL.Scheme, r.URL.Host), http.StatusBadRequest
		e.refuse(w, f)
		return
	}
	if !e.begin(w, r, f) {
		return
	}
	defer e.end(f)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := e.dialChecked(ctx, f)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			return &countingConn{Conn: c, idle: e.gw.opt.TunnelIdle, up: &f.up, down: &f.down}, nil
		},
		Proxy:                  nil, // never chain to another proxy
		DisableKeepAlives:      true,
		DisableCompression:     true, // pass the body through as the server sent it
		MaxResponseHeaderBytes: 1 << 20,
		ResponseHeaderTimeout:  e.gw.opt.TunnelIdle,
	}
	defer func() {
		transport.CloseIdleConnections()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Header.Del("Proxy-Authorization")
			pr.Out.Header.Del("Proxy-Connection")
		},
		Transport:     transport,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			f.status = resp.StatusCode
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.err, f.status = err, http.StatusBadGateway
			if r.Context().Err() == nil {
				http.Error(w, "nanoclaw egress: "+err.Error(), f.status)
			}
		},
		ErrorLog: e.srv.ErrorLog,
	}
	rp.ServeHTTP(w, r)
}

// countingConn counts the bytes of a forwarded request and closes the
// connection when it sits idle.
type countingConn struct {
	net.Conn
	idle     time.Duration
	up, down *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle)) //nolint:errcheck // a failed deadline shows as a read error
	n, err := c.Conn.Read(p)
	c.down.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle)) //nolint:errcheck // as above
	n, err := c.Conn.Write(p)
	c.up.Add(int64(n))
	return n, err
}
