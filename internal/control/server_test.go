package control

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/local"
)

var quiet = slog.New(slog.DiscardHandler)

// shortDir is a private directory with a short path (unix socket paths are
// limited to 107 bytes; t.TempDir's can be longer).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestListenCreatesPrivateSocket(t *testing.T) {
	old := syscall.Umask(0) // the mode must not depend on the umask
	defer syscall.Umask(old)
	path := filepath.Join(shortDir(t), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Type() != fs.ModeSocket || info.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a 0600 socket", info.Mode())
	}
	// A second daemon must not take over a live socket.
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "in use by a running process") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after close: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "control.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false) // as a killed daemon leaves it
	old.Close()
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path) // the old one would refuse
	if err != nil {
		t.Fatalf("new socket does not answer: %v", err)
	}
	c.Close()
}

func TestListenRefuses(t *testing.T) {
	dir := shortDir(t)
	file := filepath.Join(dir, "control.sock")
	os.WriteFile(file, []byte("precious"), 0o600)
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if data, _ := os.ReadFile(file); string(data) != "precious" {
		t.Error("the file in the way was touched")
	}
	link := filepath.Join(dir, "link.sock")
	os.Symlink("/tmp", link)
	if _, err := Listen(link); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("symlink: %v", err)
	}

	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	if _, err := Listen(filepath.Join(open, "control.sock")); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("world-writable directory: %v", err)
	}
	long := filepath.Join(dir, strings.Repeat("d", 120), "control.sock")
	if _, err := Listen(long); err == nil || !strings.Contains(err.Error(), "longer than the 107") {
		t.Errorf("long path: %v", err)
	}
	if _, err := Listen(filepath.Join(dir, "missing", "control.sock")); err == nil {
		t.Error("missing directory accepted")
	}
}

func TestServeEndsWithContextAndRemovesSocket(t *testing.T) {
	ch := local.New(quiet)
	ch.Connect(context.Background(), nopHandler{})
	path := filepath.Join(shortDir(t), "control.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- NewServer(Options{Local: ch, Logger: quiet}).Serve(ctx, path) }()

	var st *EventStream
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		st, err = Dial(path).Events(context.Background(), "local:main")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer st.Close()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended (an open stream held it?)")
	}
	if _, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("open stream after the daemon stopped: %v, want EOF", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if ch.Subscribers("local:main") != 0 {
		t.Error("subscription left behind")
	}
}

// nopHandler stores nothing, like a router that drops a message of an
// unregistered chat without an error.
type nopHandler struct{}

func (nopHandler) OnMessage(context.Context, channel.Channel, channel.Message) (channel.Stored, error) {
	return channel.Stored{}, nil
}
func (nopHandler) OnChat(context.Context, channel.Channel, channel.ChatInfo) {}

// serve runs s on a temporary socket until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.ServeListener(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

// dropper drops messages of chats other than local:main without a word, as
// the router does for unregistered chats, and stores each id once.
type dropper struct {
	seen  map[string]bool
	calls int
}

func (d *dropper) OnMessage(_ context.Context, _ channel.Channel, m channel.Message) (channel.Stored, error) {
	d.calls++
	if m.ChatJID != "local:main" || d.seen[m.ID] {
		return channel.Stored{}, nil
	}
	d.seen[m.ID] = true
	return channel.Stored{Seq: int64(len(d.seen))}, nil
}
func (*dropper) OnChat(context.Context, channel.Channel, channel.ChatInfo) {}

func TestUnregisteredAndDuplicate(t *testing.T) {
	for _, withCheck := range []bool{false, true} {
		ch := local.New(quiet)
		h := &dropper{seen: map[string]bool{}}
		ch.Connect(context.Background(), h)
		opts := Options{Local: ch, Logger: quiet}
		if withCheck {
			opts.Registered = func(_ context.Context, jid string) (bool, error) { return jid == "local:main", nil }
		}
		cl := Dial(serve(t, NewServer(opts)))
		ctx := context.Background()

		_, err := cl.PostMessage(ctx, MessageRequest{Chat: "local:nope", Text: "hi"})
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 404 || !strings.Contains(err.Error(), `local:nope is not a registered group, so the message was not stored: register the group "nope" first`) {
			t.Errorf("check %v: unregistered: %v", withCheck, err)
		}
		if withCheck && h.calls != 0 {
			t.Error("a message of an unregistered chat was delivered despite the check")
		}

		r, err := cl.PostMessage(ctx, MessageRequest{Chat: "local:main", Text: "hi", ID: "retry-1"})
		if err != nil || r.Duplicate || r.Seq != 1 || r.ID != "retry-1" {
			t.Errorf("check %v: first attempt: %+v %v", withCheck, r, err)
		}
		r, err = cl.PostMessage(ctx, MessageRequest{Chat: "local:main", Text: "hi", ID: "retry-1"})
		if err != nil || !r.Duplicate || r.Seq != 0 {
			t.Errorf("check %v: retry: %+v %v", withCheck, r, err)
		}
		st, err := cl.PostMessageWait(ctx, MessageRequest{Chat: "local:main", Text: "hi", ID: "retry-1"})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := st.Next()
		if err != nil || ev.Type != local.EventStored || !ev.Duplicate || ev.ID != "retry-1" {
			t.Errorf("check %v: retry with wait: %+v %v", withCheck, ev, err)
		}
		if _, err := st.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("check %v: stream goes on after a duplicate: %v", withCheck, err)
		}
		st.Close()
	}
}

func TestLocalChannelMissingOrDown(t *testing.T) {
	path := serve(t, NewServer(Options{Logger: quiet}))
	_, err := Dial(path).PostMessage(context.Background(), MessageRequest{Chat: "local:main", Text: "hi"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 {
		t.Errorf("no local channel: %v", err)
	}
	ch := local.New(quiet) // never connected
	path = serve(t, NewServer(Options{Local: ch, Logger: quiet}))
	_, err = Dial(path).PostMessage(context.Background(), MessageRequest{Chat: "local:main", Text: "hi"})
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("unconnected channel: %v", err)
	}
}
