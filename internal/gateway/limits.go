package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// How one socket bounds what its container can make the host hold (R3):
//
//   - connections: at most Options.MaxConns open at once. One more is
//     answered 503 at once and closed unread, by the accept loop itself:
//     no goroutine, no buffer (capListener).
//   - headers: ReadHeaderTimeout and MaxHeaderBytes of the http.Server.
//   - bodies: every body must be complete within Options.BodyTimeout
//     (deadlineBody). /ipc bodies are read into memory, at most
//     ipc.MaxOutputBytes or ipc.MaxToolBodyBytes each and
//     maxBufferedBodies bytes for the whole socket at once (bodyBudget);
//     /v1 bodies are read to be checked (apibody.go), at most maxAPIBody
//     each and maxBufferedAPIBodies at once. A request over its budget is
//     answered 503 before its body is read.
//
// So the heap one socket can pin is about the two budgets plus
// MaxConns times a connection's buffers and header, whatever the
// container sends, and a flood on one socket leaves the others alone.

// maxBufferedBodies bounds the /ipc body bytes one socket holds at once:
// one output at its limit and a few tool calls beside it.
const maxBufferedBodies = ipc.MaxOutputBytes + 4*ipc.MaxToolBodyBytes

// maxBufferedAPIBodies bounds the /v1 body bytes one socket holds at once
// while they are checked (apibody.go): one request at the API's limit and
// room for a few ordinary ones beside it.
const maxBufferedAPIBodies = maxAPIBody + 8<<20

// refusalLogEvery bounds how often a socket at its caps logs: a flood is
// one line per interval with the count, not one per connection.
const refusalLogEvery = 10 * time.Second

// refuseAtCap counts one refusal at the socket's caps, in the group's
// stats and, at most every refusalLogEvery, in a log line.
func (e *Endpoint) refuseAtCap(what string) {
	e.refusals.Add(1)
	e.gw.count(e.group.Folder, func(s *Stats) { s.Refused++ })
	now := time.Now().UnixNano()
	last := e.refusalLogged.Load()
	if now-last < int64(refusalLogEvery) || !e.refusalLogged.CompareAndSwap(last, now) {
		return
	}
	e.gw.opt.Logger.Warn("gateway: socket at its caps, refusing", "group", e.group.Folder, "what", what,
		"refused", e.refusals.Swap(0), "max_conns", e.gw.opt.MaxConns, "max_buffered_body_bytes", maxBufferedBodies)
}

// capListener accepts at most cap(slots) connections at once; the slot is
// freed when the connection is closed.
type capListener struct {
	net.Listener
	slots  chan struct{}
	refuse func(what string) // counts and logs a refusal
	answer []byte            // the whole 503 response to a connection over the cap

	lingering atomic.Int32 // refused connections not closed yet
}

// How long, and how many, refused connections stay half-closed so their
// clients can read the answer (see linger).
const (
	lingerRefused = time.Second
	maxLingering  = 16
)

func newCapListener(ln net.Listener, max int, refuse func(what string)) *capListener {
	body := fmt.Sprintf(`{"error":"gateway: too many connections on this socket (at most %d at once); retry shortly"}`, max)
	answer := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return &capListener{Listener: ln, slots: make(chan struct{}, max), refuse: refuse, answer: []byte(answer)}
}

// Accept returns the next connection within the cap; those over it are
// answered and closed here, without reading what they sent.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
		default:
		}
		l.refuse("connection")
		// A fresh socket's send buffer takes the short answer at once; the
		// deadline only keeps the accept loop from ever waiting on it.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)) //nolint:errcheck // a failed write is fine: it is closed anyway
		c.Write(l.answer)                                          //nolint:errcheck // as above
		l.linger(c)
	}
}

// linger closes a refused connection. Closed at once, a client still
// writing its request would fail on the write before reading the answer;
// so the answer is followed by a half-close and the connection is closed
// a moment later, without a goroutine or a buffer of the host's — unless
// maxLingering refused connections linger already (a flood), which are
// closed at once.
func (l *capListener) linger(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || l.lingering.Add(1) > maxLingering {
		if ok {
			l.lingering.Add(-1)
		}
		c.Close()
		return
	}
	cw.CloseWrite() //nolint:errcheck // closed below anyway
	time.AfterFunc(lingerRefused, func() {
		c.Close()
		l.lingering.Add(-1)
	})
}

// slotConn gives its listener slot back when closed (once).
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}

// CloseWrite passes a half-close on (the egress tunnel and the server use
// it), where the connection has one.
func (c *slotConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("gateway: connection cannot half-close")
}

// bodyBudget bounds the body bytes a socket's requests hold at once.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

// take reserves n bytes, or reports false if they are not free now.
func (b *bodyBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// errBodyBusy means the socket holds as many bodies as it may: retry.
var errBodyBusy = errors.New("too many requests in flight on this socket; retry shortly")

// readBody reads the whole body of a request, at most max bytes,
// within the socket's budget. The caller calls release once it no longer
// holds the body. An error is errBodyBusy, a body over max, or a read
// failure (a body not complete within BodyTimeout among them); status is
// the answer for it.
func (e *Endpoint) readBody(r *http.Request, max int64, budget *bodyBudget) (body []byte, release func(), status int, err error) {
	// A declared length within max is reserved exactly; otherwise the
	// read stops at max.
	n := max
	if r.ContentLength >= 0 && r.ContentLength <= max {
		n = r.ContentLength
	}
	if !budget.take(n) {
		e.refuseAtCap("body")
		return nil, nil, http.StatusServiceUnavailable, errBodyBusy
	}
	release = func() { budget.used.Add(-n) }
	// It reads up to the limit even when Content-Length already says too
	// much, so a client that is still writing gets to read the answer. A
	// declared length is read into a buffer of its size, allocated once;
	// net/http hands io.EOF over with its last bytes, which lifts the
	// body's deadline (deadlineBody).
	if n == r.ContentLength {
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(r.Body, max+1))
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		status, err = http.StatusRequestTimeout, fmt.Errorf("body not complete within %v", e.gw.opt.BodyTimeout)
	case err != nil:
		status, err = http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	case int64(len(body)) > max:
		status, err = http.StatusBadRequest, fmt.Errorf("body exceeds the limit of %d bytes", max)
	default:
		return body, release, 0, nil
	}
	release()
	return nil, nil, status, err
}

// deadlineBody lifts the connection's read deadline once the body has
// been read to its end: the deadline bounds the body only, not an API
// stream or a tool call that follows it, which the server would otherwise
// cancel when its background read hits the deadline.
type deadlineBody struct {
	io.ReadCloser
	once    sync.Once
	clear   func()
	expired atomic.Bool // a read hit the deadline
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.once.Do(b.clear)
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.expired.Store(true)
	}
	return n, err
}

// timedOut reports whether b is a body that was cut at its deadline; the
// server cancels the request's context then, so the error that reaches a
// handler may say only that.
func (b *deadlineBody) timedOut() bool { return b != nil && b.expired.Load() }

// limitBody puts the body of r under the BodyTimeout (R3): a body sent
// slowly or never finished is cut then, whoever reads it. It returns the
// body now in r, or nil if r has none.
func (e *Endpoint) limitBody(w http.ResponseWriter, r *http.Request) *deadlineBody {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(e.gw.opt.BodyTimeout)); err != nil {
		return nil
	}
	b := &deadlineBody{ReadCloser: r.Body, clear: func() { rc.SetReadDeadline(time.Time{}) }} //nolint:errcheck // the connection is gone then
	r.Body = b
	return b
}

// maxWarnLines is how many refusal and tool-call lines one socket may write
// to the daemon's log a minute. A container refused in a loop must not flood the
// log and rotate the owner's history away (the log keeps 60 MB): the lines
// beyond it are counted, and the next line written says how many.
const maxWarnLines = 30

// logGate counts an endpoint's refusal and tool lines per minute.
type logGate struct {
	mu      sync.Mutex
	start   time.Time
	n       int // written this minute
	dropped int // not written since the last line written
}

// pass says whether a line may be written now, and how many were not
// written before it.
func (g *logGate) pass(now time.Time) (ok bool, dropped int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.start) >= time.Minute {
		g.start, g.n = now, 0
	}
	if g.n >= maxWarnLines {
		g.dropped++
		return false, 0
	}
	g.n++
	dropped, g.dropped = g.dropped, 0
	return true, dropped
}

// warn writes a refusal line of the endpoint's, within its logGate.
func (e *Endpoint) warn(msg string, attrs ...any) { e.gated(slog.LevelWarn, msg, attrs...) }

// gated writes a line the container can make the host write at will (a
// refusal, a tool call), within the endpoint's logGate.
func (e *Endpoint) gated(level slog.Level, msg string, attrs ...any) {
	e.gatedBy(&e.agent.warnings, level, msg, attrs...)
}

// gatedBy writes such a line within the logGate g: the agent's socket's,
// or the browser's, so a page cannot crowd the agent's lines out of the log.
func (e *Endpoint) gatedBy(g *logGate, level slog.Level, msg string, attrs ...any) {
	ok, dropped := g.pass(time.Now())
	if !ok {
		return
	}
	if dropped > 0 {
		attrs = append(attrs, "not_logged_before", dropped)
	}
	e.gw.opt.Logger.Log(context.Background(), level, msg, attrs...)
}
