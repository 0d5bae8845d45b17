package incontainer

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// MaxForwardedConns bounds the connections the forwarder pipes at once;
// further ones wait to be accepted. Claude Code keeps a handful open (API
// stream, egress CONNECTs of WebFetch, MCP-less side calls).
const MaxForwardedConns = 64

// Forwarder pipes the raw bytes of each TCP connection accepted on a
// loopback listener to a new connection on the gateway's unix socket, both
// ways. It neither reads nor changes what passes: the gateway serves the
// API proxy (/v1/…) and the egress proxy (CONNECT) on that socket, and the
// container has no other way out (finding 2: --network none).
type Forwarder struct {
	ln     net.Listener
	socket string
	max    int
	log    *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewForwarder forwards connections accepted on ln to the unix socket at
// socket, at most conns at a time (MaxForwardedConns if conns <= 0). Run serves;
// the forwarder owns ln from here on.
func NewForwarder(ln net.Listener, socket string, conns int, log *slog.Logger) *Forwarder {
	return &Forwarder{ln: ln, socket: socket, max: cmp.Or(max(conns, 0), MaxForwardedConns),
		log: cmp.Or(log, slog.New(slog.DiscardHandler)), conns: map[net.Conn]struct{}{}}
}

// Addr is the listening address, e.g. 127.0.0.1:3128.
func (f *Forwarder) Addr() net.Addr { return f.ln.Addr() }

// Run accepts and pipes connections until ctx ends, then closes the
// listener and every open connection and returns once all are done.
func (f *Forwarder) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { f.ln.Close() })
	defer stop()
	defer f.closeAll()

	slots := make(chan struct{}, f.max)
	var tempDelay time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := f.ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			// Out of file descriptors passes as connections close: wait
			// rather than end the run.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			return err
		}
		tempDelay = 0
		f.track(c, true)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-slots }()
			defer f.track(c, false)
			f.pipe(ctx, c)
		}()
	}
}

func (f *Forwarder) track(c net.Conn, add bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
}

func (f *Forwarder) closeAll() {
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// pipe copies both ways until both directions are done, passing on each
// half-close so request/response protocols end cleanly.
func (f *Forwarder) pipe(ctx context.Context, c net.Conn) {
	defer c.Close()
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := d.DialContext(dctx, "unix", f.socket)
	cancel()
	if err != nil {
		f.log.Warn("forwarder: gateway socket unreachable", "socket", f.socket, "err", err)
		return
	}
	defer up.Close()
	// The upstream conn is closed with the client conn (by closeAll via c,
	// and here on return); AfterFunc covers a stop while both are idle.
	stop := context.AfterFunc(ctx, func() { up.Close() })
	defer stop()

	done := make(chan struct{}, 2)
	go func() { copyHalf(up, c); done <- struct{}{} }()
	copyHalf(c, up)
	<-done
}

// copyHalf copies src to dst, then closes dst for writing (or entirely, if
// it cannot half-close) so the peer sees the end.
func copyHalf(dst, src net.Conn) {
	io.Copy(dst, src) //nolint:errcheck // a reset ends the copy; nothing to report
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() //nolint:errcheck // the peer may be gone already
	} else {
		dst.Close()
	}
}
