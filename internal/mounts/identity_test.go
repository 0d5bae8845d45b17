package mounts

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// identityTree is a host with an allowed read-write root that also holds
// the agent binary (as when the owner allows ~/ and keeps nanoclaw in
// ~/bin), a data home and a config dir.
func identityTree(t *testing.T) (base string, al *Allowlist, protected []string) {
	t.Helper()
	base = tree(t)
	agent := filepath.Join(base, "allowed", "tools", "nanoclaw-agent")
	if err := os.MkdirAll(filepath.Dir(agent), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent, []byte("#!agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	al, err := LoadAllowlist(writeAllowlist(t, base, `{"allowedRoots": [{"path": "BASE/allowed", "allowReadWrite": true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return base, al, OwnDirs(filepath.Join(base, "data"), filepath.Join(base, "conf"), agent)
}

// R7: the directory holding nanoclaw-agent, and anything containing it, is
// never mounted, even under an allowed read-write root; its neighbours are.
func TestAgentBinaryDirIsNeverMounted(t *testing.T) {
	base, al, protected := identityTree(t)
	for _, c := range []struct {
		host    string
		allowed bool
	}{
		{"allowed/tools", false}, // the binary's own directory
		{"allowed", false},       // contains it
		{"allowed/proj", true},   // a neighbour: the control
	} {
		v := al.Check(store.Mount{HostPath: filepath.Join(base, c.host), ContainerPath: "x"}, true, protected...)
		if v.Allowed != c.allowed {
			t.Errorf("%s: allowed=%v (%s), want %v", c.host, v.Allowed, v.Reason, c.allowed)
		}
		if !c.allowed && !strings.Contains(v.Reason, "nanoclaw's own") {
			t.Errorf("%s: reason %q does not say it is nanoclaw's own", c.host, v.Reason)
		}
	}
	// The running host binary's directory is protected too.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range protected {
		found = found || d == filepath.Dir(exe)
	}
	if !found {
		t.Errorf("OwnDirs %v leaves out the host binary's directory %s", protected, filepath.Dir(exe))
	}
}

// R7: a symlink to a protected directory, or one whose target contains it,
// is refused by the directory it leads to.
func TestSymlinkAliasOfProtectedDirIsRefused(t *testing.T) {
	base, al, protected := identityTree(t)
	for link, target := range map[string]string{
		"allowed/proj/bin-link":  filepath.Join(base, "allowed", "tools"),
		"allowed/proj/home-link": filepath.Join(base, "data", "groups"),
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			t.Fatal(err)
		}
		v := al.Check(store.Mount{HostPath: filepath.Join(base, link), ContainerPath: "x"}, true, protected...)
		if v.Allowed || !strings.Contains(v.Reason, "nanoclaw's own") {
			t.Errorf("%s -> %s: allowed=%v (%s), want refused as nanoclaw's own", link, target, v.Allowed, v.Reason)
		}
	}
}

// R7: bind mounts give a protected directory a second name that no string
// comparison sees. Each alias is refused by identity: the protected
// directory itself, a directory inside it, a parent of it, and a
// directory with the protected one mounted inside it.
func TestBindMountAliasOfProtectedDirIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: bind-mount aliases need root to create (run the tests as root to cover R7's bind-mount case)")
	}
	base, al, protected := identityTree(t)
	bind := func(src, dst string) {
		t.Helper()
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
			t.Skipf("SKIPPED: cannot bind mount here (%v): R7's bind-mount case is not covered", err)
		}
		t.Cleanup(func() {
			if err := syscall.Unmount(dst, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dst, err)
			}
		})
	}
	aliases := map[string]string{
		"allowed/proj/agent-alias":  filepath.Join(base, "allowed", "tools"), // the agent binary's dir
		"allowed/proj/groups-alias": filepath.Join(base, "data", "groups"),   // inside the data home
		"allowed/proj/conf-alias":   filepath.Join(base, "conf"),             // the config dir
		"allowed/proj/base-alias":   base,                                    // contains them all
	}
	for alias, src := range aliases {
		bind(src, filepath.Join(base, alias))
	}
	// A directory that only holds, further down, a mount of a protected
	// directory: the runtimes mount recursively, so it would show it.
	holder := filepath.Join(base, "allowed", "proj", "holder")
	bind(filepath.Join(base, "conf"), filepath.Join(holder, "deep", "conf"))
	aliases["allowed/proj/holder"] = "a mount of the config dir below it"

	for alias, src := range aliases {
		v := al.Check(store.Mount{HostPath: filepath.Join(base, alias), ContainerPath: "x"}, true, protected...)
		if v.Allowed || !strings.Contains(v.Reason, "nanoclaw's own") {
			t.Errorf("%s (%s): allowed=%v (%s), want refused as nanoclaw's own", alias, src, v.Allowed, v.Reason)
		}
	}
	// The control: a bind mount of an ordinary directory is fine.
	bind(filepath.Join(base, "allowed", "cache"), filepath.Join(base, "allowed", "proj", "plain-alias"))
	if v := al.Check(store.Mount{HostPath: filepath.Join(base, "allowed", "proj", "plain-alias"), ContainerPath: "x"}, true, protected...); !v.Allowed {
		t.Errorf("a bind mount of an ordinary directory was refused: %s", v.Reason)
	}
}
