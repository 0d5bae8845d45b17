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

// Forward pipes the raw bytes of each TCP connection accepted on the
// loopback listener ln to a new connection on the gateway's unix socket,
// both ways, at most conns at a time (MaxForwardedConns if conns <= 0). It
// neither reads nor changes what passes: the gateway serves the API proxy
// (/v1/…) and the egress proxy (CONNECT) on that socket, and the container
// has no other way out (finding 2: --network none).
//
// Forward owns ln. It serves until ctx ends, then closes the listener and
// every open connection and returns once all are done.
func Forward(ctx context.Context, ln net.Listener, socket string, conns int, log *slog.Logger) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Every way out ends ctx, which closes the listener and each pipe's
	// connections.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { ln.Close() })

	slots := make(chan struct{}, cmp.Or(max(conns, 0), MaxForwardedConns))
	var tempDelay time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		c, err := ln.Accept()
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
		wg.Go(func() {
			defer func() { <-slots }()
			pipe(ctx, c, socket, log)
		})
	}
}

// pipe copies both ways until both directions are done, passing on each
// half-close so request/response protocols end cleanly.
func pipe(ctx context.Context, c net.Conn, socket string, log *slog.Logger) {
	defer c.Close()
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := d.DialContext(dctx, "unix", socket)
	cancel()
	if err != nil {
		log.Warn("forwarder: gateway socket unreachable", "socket", socket, "err", err)
		return
	}
	defer up.Close()
	// A stop closes both connections, idle or not.
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
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
