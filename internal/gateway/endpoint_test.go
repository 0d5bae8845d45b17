package gateway

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

func TestOpenSocketFile(t *testing.T) {
	e := newEnv(t, Options{})
	ep := e.open(t, "g", false, egress.Policy{})
	if ep.path != filepath.Join(e.dir, "ipc", "g", ipc.SocketName) {
		t.Fatalf("path %s", ep.path)
	}
	checkMode(t, ep.path, os.ModeSocket|0o600, os.Geteuid())
	checkMode(t, filepath.Dir(ep.path), os.ModeDir|0o700, os.Geteuid())

	if _, err := e.gw.Open(Caller{Folder: "g"}, egress.Policy{}, filepath.Join(e.dir, "other"), -1, -1); err == nil || !strings.Contains(err.Error(), "already has an open socket") {
		t.Fatalf("second Open of group g: %v", err)
	}
	for _, bad := range []string{"", "..", "a/b", "."} {
		if _, err := e.gw.Open(Caller{Folder: bad}, egress.Policy{}, t.TempDir(), -1, -1); err == nil {
			t.Errorf("Open accepted folder %q", bad)
		}
	}
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(ep.path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if err := ep.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The group may open again once closed.
	e.open(t, "g", false, egress.Policy{})
}

func TestOpenReplacesStaleSocketOnly(t *testing.T) {
	e := newEnv(t, Options{})
	dir := filepath.Join(e.dir, "stale")
	os.MkdirAll(dir, 0o755)
	sock := filepath.Join(dir, ipc.SocketName)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // a crashed daemon's socket: the file stays, nobody listens
	ep, err := e.gw.Open(Caller{Folder: "stale"}, egress.Policy{}, dir, -1, -1)
	if err != nil {
		t.Fatalf("Open over a stale socket: %v", err)
	}
	if s, _, _ := do(t, ep, "GET", "/nothing", ""); s != 403 {
		t.Fatalf("new socket answers %d", s)
	}
	checkMode(t, dir, os.ModeDir|0o700, os.Geteuid()) // tightened from 0755
	ep.Close()

	dir = filepath.Join(e.dir, "file")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, ipc.SocketName), []byte("keep me"), 0o600)
	if _, err := e.gw.Open(Caller{Folder: "file"}, egress.Policy{}, dir, -1, -1); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Open over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ipc.SocketName)); string(b) != "keep me" {
		t.Fatal("the regular file was touched")
	}

	target := t.TempDir()
	link := filepath.Join(e.dir, "link")
	os.Symlink(target, link)
	if _, err := e.gw.Open(Caller{Folder: "link"}, egress.Policy{}, link, -1, -1); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Open in a symlinked dir: %v", err)
	}
}

// As root the socket belongs to the container user: uid 1000 can connect,
// another unprivileged user cannot.
func TestSocketOwnerAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand the socket to uid 1000")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	base, err := os.MkdirTemp("", "gateway-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	e := newEnv(t, Options{})
	ep, err := e.gw.Open(Caller{Folder: "g"}, egress.Policy{}, filepath.Join(base, "g"), ipc.ContainerUID, ipc.ContainerGID)
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	checkMode(t, ep.path, os.ModeSocket|0o600, ipc.ContainerUID)
	checkMode(t, filepath.Dir(ep.path), os.ModeDir|0o700, ipc.ContainerUID)

	run := func(uid uint32) (string, error) {
		cmd := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", ep.path, "http://gateway/nothing")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(ipc.ContainerUID); err != nil || out != "403" {
		t.Fatalf("uid %d: %s %v; want to reach the gateway (403: not an API call it forwards)", ipc.ContainerUID, out, err)
	}
	// curl exits 7 ("couldn't connect") when connect(2) on the socket
	// fails with EACCES.
	if out, err := run(1001); err == nil || !strings.Contains(out, "Couldn't connect") {
		t.Fatalf("uid 1001: %s %v; want the connection refused", out, err)
	}
}

func checkMode(t *testing.T, path string, mode os.FileMode, uid int) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != mode {
		t.Errorf("%s: mode %v, want %v", path, st.Mode(), mode)
	}
	if got := int(st.Sys().(*syscall.Stat_t).Uid); got != uid {
		t.Errorf("%s: owner %d, want %d", path, got, uid)
	}
}
