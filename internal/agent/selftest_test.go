package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

func TestSelfTestIDSkipsTheHostsIDs(t *testing.T) {
	top := FirstContainerID + containerIDs - 1
	cases := []struct {
		used usedIDs
		want int
	}{
		{nil, top},
		{usedIDs{{top, top + 1}}, top - 1},
		{usedIDs{{top - 9, top + 1}}, top - 10}, // a subordinate range over the top
	}
	for _, c := range cases {
		if got, err := selfTestID(c.used); err != nil || got != c.want {
			t.Errorf("selfTestID(%v) = %d, %v; want %d", c.used, got, err, c.want)
		}
	}
	if _, err := selfTestID(usedIDs{{FirstContainerID, top + 1}}); err == nil {
		t.Error("a fully used range gave an id")
	}
}

func mnt(point string, ro bool, fsType string) selftest.Mount {
	return selftest.Mount{Point: point, ReadOnly: ro, FSType: fsType}
}

func TestCheckMounts(t *testing.T) {
	spec := sandbox.Spec{
		Mounts: []sandbox.Mount{{Source: "/h/g", Target: "/workspace/group"}, {Source: "/h/a", Target: "/usr/local/bin/nanoclaw-agent", ReadOnly: true}},
		Tmpfs:  []sandbox.Tmpfs{{Target: "/tmp", SizeMB: 1}},
	}
	good := []selftest.Mount{
		mnt("/", true, "overlay"), mnt("/proc", false, "proc"), mnt("/proc/keys", false, "tmpfs"), mnt("/dev/shm", false, "shm"),
		mnt("/sys/fs/cgroup", false, "tmpfs"), mnt("/etc/hosts", true, "ext4"), mnt("/run/podman-init", true, "ext4"),
		mnt("/workspace/group", false, "ext4"), mnt("/usr/local/bin/nanoclaw-agent", true, "ext4"), mnt("/tmp", false, "tmpfs"),
	}
	if f := checkMounts(spec, good); !f.OK {
		t.Fatalf("a container as the spec made it: %+v", f)
	}
	cases := []struct {
		name   string
		change func([]selftest.Mount) []selftest.Mount
		want   string
	}{
		{"an extra bind mount", func(m []selftest.Mount) []selftest.Mount {
			return append(m, selftest.Mount{Point: "/host", FSType: "ext4"})
		}, "unexpected mount /host"},
		{"a writable root", func(m []selftest.Mount) []selftest.Mount { m[0].ReadOnly = false; return m }, "/ is not mounted read-only"},
		{"a writable agent binary", func(m []selftest.Mount) []selftest.Mount { m[8].ReadOnly = false; return m }, "writable, the spec says read-only"},
		{"a missing mount", func(m []selftest.Mount) []selftest.Mount { return m[:8] }, "/usr/local/bin/nanoclaw-agent is missing"},
		{"a writable runtime file", func(m []selftest.Mount) []selftest.Mount { m[5].ReadOnly = false; return m }, "unexpected mount /etc/hosts"},
		{"a disk where the tmpfs should be", func(m []selftest.Mount) []selftest.Mount { m[9].FSType = "ext4"; return m }, "/tmp is not the spec's tmpfs"},
	}
	for _, c := range cases {
		f := checkMounts(spec, c.change(append([]selftest.Mount(nil), good...)))
		if f.OK || !strings.Contains(f.Detail, c.want) {
			t.Errorf("%s: %+v, want a failure saying %q", c.name, f, c.want)
		}
	}
}

// The host finds its credential's bytes in a mount source — also across
// its read chunks — and follows no link out of a tree a container writes.
func TestScanSources(t *testing.T) {
	secret := "sk-ant-api03-" + keyMarker + "-" + strings.Repeat("x", 60)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "elsewhere"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	group := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "elsewhere"), filepath.Join(group, "link")); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(t.TempDir(), "nanoclaw-agent")
	if err := os.WriteFile(binary, []byte("ELF..."), 0o755); err != nil {
		t.Fatal(err)
	}
	mounts := []sandbox.Mount{{Source: group, Target: "/workspace/group"}, {Source: binary, Target: "/usr/local/bin/nanoclaw-agent"}}
	secrets := [][]byte{[]byte(secret), nil}
	if f := scanSources(mounts, secrets); !f.OK {
		t.Fatalf("a link to a file holding the key was followed: %+v", f)
	}
	// Straddling the 1 MiB read chunk.
	big := make([]byte, 2<<20)
	copy(big[1<<20-10:], secret)
	if err := os.MkdirAll(filepath.Join(group, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(group, "sub", "notes.bin"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	f := scanSources(mounts, secrets)
	if f.OK || !strings.Contains(f.Detail, filepath.Join(group, "sub", "notes.bin")) || strings.Contains(f.Detail, secret) {
		t.Errorf("planted key: %+v, want a failure naming the file and not the key", f)
	}
	if f := scanSources(mounts, [][]byte{nil, nil}); !f.OK || !strings.Contains(f.Detail, "no credential is configured") {
		t.Errorf("without a credential: %+v", f)
	}
}

func selfTest(t *testing.T, h *harness, folder string) map[string]selftest.Finding {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := h.runner.SelfTest(ctx, store.Group{Folder: folder})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("self-test took %v", time.Since(start).Round(time.Millisecond))
	got := map[string]selftest.Finding{}
	for _, f := range rep.Findings {
		got[f.Name] = f
		t.Logf("%s: ok %v: %s", f.Name, f.OK, f.Detail)
	}
	// Gone whatever happened: the container and the run's socket directory.
	if left := h.containers("nanoclaw-" + folder + "-"); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
	if runs, _ := os.ReadDir(h.runner.opt.IPCDir); len(runs) > 0 {
		t.Errorf("socket directories left: %d", len(runs))
	}
	return got
}

// TestSelfTestE2E: on a real runtime every finding passes; with the key
// planted in the group's folder, the probe (looking for its shape) and
// the host (looking for its bytes) both report it.
func TestSelfTestE2E(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		got := selfTest(t, h, "probe")
		for _, f := range got {
			if !f.OK {
				t.Errorf("finding %q failed: %s", f.Name, f.Detail)
			}
		}
		for _, name := range []string{selftest.FindingRoute, selftest.FindingUser, selftest.FindingCaps, selftest.FindingReadOnly,
			selftest.FindingFiles, selftest.FindingEgress, selftest.FindingAPI, FindingMounts, FindingSources} {
			if _, ok := got[name]; !ok {
				t.Errorf("no finding %q", name)
			}
		}

		dir := filepath.Join(h.runner.opt.GroupsDir, "leaky")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "notes.md"), []byte("my key is "+h.key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got = selfTest(t, h, "leaky")
		if f := got[selftest.FindingFiles]; f.OK || !strings.Contains(f.Detail, "/workspace/group/notes.md") {
			t.Errorf("probe: %+v, want the planted key found in /workspace/group/notes.md", f)
		}
		if f := got[FindingSources]; f.OK || !strings.Contains(f.Detail, filepath.Join(dir, "notes.md")) {
			t.Errorf("host: %+v, want the planted key found in %s", f, dir)
		}
	})
}
