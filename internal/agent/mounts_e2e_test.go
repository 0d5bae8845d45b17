package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

func writeFile(t *testing.T, name, body string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
}

// mountHarness is a harness whose runner reads the mount allowlist written
// at path, and whose log the test reads back.
func mountHarness(t *testing.T, rtName, path, allowlist string, tweak func(*Options)) (*harness, *testenv.Buffer) {
	t.Helper()
	writeFile(t, path, allowlist, 0o600)
	logs := &testenv.Buffer{}
	h := newHarness(t, rtName, func(o *Options) {
		o.AllowlistPath = path
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
		if tweak != nil {
			tweak(o)
		}
	})
	return h, logs
}

// TestExtraMounts runs a real container with a mix of extra mounts and
// checks, from inside, what the allowlist let through and how (finding 3).
func TestExtraMounts(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		rootRW, _ := filepath.EvalSymlinks(t.TempDir())
		rootRO, _ := filepath.EvalSymlinks(t.TempDir())
		confDir := t.TempDir()
		outside := t.TempDir()
		for _, d := range []string{rootRW, rootRO} {
			os.Chmod(d, 0o755)
		}
		marker := "ALLOWLIST" + "-MARK-" + newID()[:12]
		sshMarker := "SSHKEY" + "-MARK-" + newID()[:12]
		writeFile(t, filepath.Join(rootRW, "shared", "hello.txt"), "EXTRA-CONTENT\n", 0o644)
		writeFile(t, filepath.Join(rootRW, "writable", "keep.txt"), "x\n", 0o666)
		writeFile(t, filepath.Join(rootRW, ".ssh", "id_test"), sshMarker+"\n", 0o644)
		writeFile(t, filepath.Join(rootRO, "docs", "d.txt"), "DOCS-CONTENT\n", 0o644)
		for _, d := range []string{"shared", "writable", ".ssh"} {
			os.Chmod(filepath.Join(rootRW, d), 0o755)
		}
		os.Chmod(filepath.Join(rootRW, "writable"), 0o777) // the container user may write here
		os.Chmod(filepath.Join(rootRO, "docs"), 0o777)     // only the mount can stop a write
		h, logs := mountHarness(t, rtName, filepath.Join(confDir, "mount-allowlist.json"), `{"allowedRoots": [
			{"path": "`+rootRW+`", "allowReadWrite": true, "description": "`+marker+`"},
			{"path": "`+rootRO+`", "allowReadWrite": false}
		], "nonMainReadOnly": false}`, nil)
		g := h.group("extras", false, store.ContainerConfig{AdditionalMounts: []store.Mount{
			{HostPath: filepath.Join(rootRW, "shared"), ContainerPath: "shared", ReadOnly: true},
			{HostPath: filepath.Join(rootRO, "docs"), ContainerPath: "docs"},   // rw asked, ro root
			{HostPath: filepath.Join(rootRW, "writable"), ContainerPath: "rw"}, // rw granted: the control
			{HostPath: filepath.Join(rootRW, ".ssh"), ContainerPath: "ssh"},    // blocked
			{HostPath: filepath.Join(h.home, "groups"), ContainerPath: "data"}, // nanoclaw's own data
			{HostPath: outside, ContainerPath: "outside", ReadOnly: true},      // not under a root
			{HostPath: confDir, ContainerPath: "conf", ReadOnly: true},         // the allowlist's dir
		}})
		s := h.start(g, StartOptions{})
		out := h.bash(s, `cd /workspace/extra && ls -a; cat shared/hello.txt docs/d.txt; `+
			`touch shared/new 2>/dev/null && echo SHARED=writable || echo SHARED=readonly; `+
			`touch docs/new 2>/dev/null && echo DOCS=writable || echo DOCS=readonly; `+
			`touch rw/new 2>/dev/null && echo RW=writable || echo RW=readonly; `+
			`find / -path /proc -prune -o -path /sys -prune -o -name 'mount-allowlist*' -print 2>/dev/null; `+
			`grep -r -a -l -e 'ALLOWLIST''-MARK' -e 'SSHKEY''-MARK' / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; echo END-OF-CHECK`)
		if !strings.Contains(out, "END-OF-CHECK") {
			t.Fatalf("the check did not run to its end:\n%s", out)
		}
		for _, want := range []string{"EXTRA-CONTENT", "DOCS-CONTENT", "SHARED=readonly", "DOCS=readonly", "RW=writable"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in the container's view:\n%s", want, out)
			}
		}
		for _, bad := range []string{"ssh", "data", "conf", "outside", "mount-allowlist", "ALLOWLIST-MARK", "SSHKEY-MARK", "id_test"} {
			if strings.Contains(out, bad) {
				t.Errorf("%q is visible inside the container:\n%s", bad, out)
			}
		}
		// And on the host: the read-only mounts really kept their files.
		if _, err := os.Stat(filepath.Join(rootRW, "shared", "new")); err == nil {
			t.Error("the read-only mount was written through")
		}
		if _, err := os.Stat(filepath.Join(rootRO, "docs", "new")); err == nil {
			t.Error("the read-write request under a read-only root was written through")
		}
		if _, err := os.Stat(filepath.Join(rootRW, "writable", "new")); err != nil {
			t.Errorf("the granted read-write mount did not take the write: %v", err)
		}
		// Each skipped mount was logged with the group and the reason.
		l := logs.String()
		for _, want := range []string{`blocked pattern \".ssh\"`, "overlaps nanoclaw's own", "not under any allowed root", "allows only read-only"} {
			if !strings.Contains(l, want) {
				t.Errorf("the log does not say %q:\n%s", want, l)
			}
		}
		if n := strings.Count(l, "extra mount skipped"); n != 4 {
			t.Errorf("%d mounts logged as skipped, want 4", n)
		}
	})
}

// TestAgentBinaryDirNeverMounted (R7): the owner keeps nanoclaw-agent under
// a read-write allowed root; a non-main group asking for that directory,
// or for the root itself, gets neither, so it cannot replace the program
// every later container runs. A neighbouring directory is mounted.
func TestAgentBinaryDirNeverMounted(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		root, _ := filepath.EvalSymlinks(t.TempDir())
		os.Chmod(root, 0o755)
		agentBin := filepath.Join(root, "tools", "nanoclaw-agent")
		data, err := os.ReadFile(testenv.AgentBinary(t))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, agentBin, string(data), 0o755)
		os.Chmod(filepath.Dir(agentBin), 0o755)
		writeFile(t, filepath.Join(root, "work", "w.txt"), "WORK-CONTENT\n", 0o644)
		os.Chmod(filepath.Join(root, "work"), 0o755)
		h, logs := mountHarness(t, rtName, filepath.Join(t.TempDir(), "mount-allowlist.json"),
			`{"allowedRoots": [{"path": "`+root+`", "allowReadWrite": true}], "nonMainReadOnly": false}`,
			func(o *Options) { o.AgentBinary = agentBin })
		g := h.group("binary", false, store.ContainerConfig{AdditionalMounts: []store.Mount{
			{HostPath: filepath.Join(root, "tools"), ContainerPath: "tools"}, // the agent binary's directory
			{HostPath: root, ContainerPath: "all"},                           // contains it
			{HostPath: filepath.Join(root, "work"), ContainerPath: "work"},   // the control
		}})
		s := h.start(g, StartOptions{})
		out := h.bash(s, `ls /workspace/extra; cat /workspace/extra/work/w.txt; echo END-OF-CHECK`)
		if !strings.Contains(out, "END-OF-CHECK") || !strings.Contains(out, "WORK-CONTENT") {
			t.Fatalf("the control mount is missing:\n%s", out)
		}
		for _, bad := range []string{"tools", "all"} {
			if strings.Contains(out, bad) {
				t.Errorf("%q is mounted:\n%s", bad, out)
			}
		}
		if n := strings.Count(logs.String(), "overlaps nanoclaw's own"); n != 2 {
			t.Errorf("%d mounts logged as overlapping nanoclaw's own, want 2:\n%s", n, logs.String())
		}
	})
}
