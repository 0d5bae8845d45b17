package incontainer

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer serves a unix socket that echoes every connection's bytes
// back and closes its side when the client half-closes. It counts the
// connections open right now.
type echoServer struct {
	ln   net.Listener
	open atomic.Int32
	max  atomic.Int32
	wg   sync.WaitGroup
}

func newEchoServer(t *testing.T) (*echoServer, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "fwd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "echo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := e.open.Add(1)
			for {
				m := e.max.Load()
				if n <= m || e.max.CompareAndSwap(m, n) {
					break
				}
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer e.open.Add(-1)
				io.Copy(c, c)
				c.(*net.UnixConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); e.wg.Wait() })
	return e, path
}

// startForwarder forwards a new loopback listener to socket and returns
// its address.
func startForwarder(t *testing.T, socket string, max int) (string, context.CancelFunc, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, ln, socket, max, discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("forwarder did not stop")
		}
	})
	return ln.Addr().String(), cancel, done
}

// Bytes pass unchanged both ways, including binary data and a half-close.
func TestForwarderPipesBytes(t *testing.T) {
	_, sock := newEchoServer(t)
	addr, _, _ := startForwarder(t, sock, 0)

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			payload := make([]byte, 256<<10+i)
			rand.Read(payload)
			go func() {
				c.Write(payload)
				c.(*net.TCPConn).CloseWrite()
			}()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("conn %d: echoed %d of %d bytes, equal %v, err %v", i, len(got), len(payload), bytes.Equal(got, payload), err)
			}
		}()
	}
	wg.Wait()
}

// At most max connections are piped at once; the next waits its turn.
func TestForwarderIsBounded(t *testing.T) {
	echo, sock := newEchoServer(t)
	addr, _, _ := startForwarder(t, sock, 2)
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The first two are piped: they echo.
	for i, c := range conns[:2] {
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("conn %d: %q, %v", i, buf, err)
		}
	}
	// The third is not served while two are open.
	conns[2].Write([]byte("wait"))
	buf := make([]byte, 4)
	conns[2].SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := conns[2].Read(buf); err == nil {
		t.Fatalf("third connection served over the limit: %q", buf[:n])
	}
	if m := echo.max.Load(); m != 2 {
		t.Errorf("%d upstream connections at once, want 2", m)
	}
	// Closing one lets it through.
	conns[0].Close()
	conns[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conns[2], buf); err != nil || string(buf) != "wait" {
		t.Errorf("third connection after a slot freed: %q, %v", buf, err)
	}
}

// Stopping closes the listener and every open connection, upstream too.
func TestForwarderStopClosesEverything(t *testing.T) {
	echo, sock := newEchoServer(t)
	addr, cancel, done := startForwarder(t, sock, 0)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	done <- nil // for the cleanup
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("client connection still open after stop")
	}
	deadline := time.Now().Add(5 * time.Second)
	for echo.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := echo.open.Load(); n != 0 {
		t.Errorf("%d upstream connections still open", n)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepting after stop")
	}
}

// A missing gateway socket drops the connection; the forwarder goes on.
func TestForwarderSurvivesMissingSocket(t *testing.T) {
	addr, _, done := startForwarder(t, filepath.Join(t.TempDir(), "absent.sock"), 0)
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("read from a connection with no upstream succeeded")
		}
		c.Close()
	}
	select {
	case err := <-done:
		t.Fatalf("forwarder stopped: %v", err)
	default:
	}
}
