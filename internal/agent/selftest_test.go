package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
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

// The host finds its credential's bytes in a mount source and in the
// owner's trees — also across its read chunks — follows no link out of a
// tree a container writes, opens no FIFO, and says what it read and what
// it did not.
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
	if err := syscall.Mkfifo(filepath.Join(group, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(t.TempDir(), "nanoclaw-agent")
	if err := os.WriteFile(binary, []byte("ELF..."), 0o755); err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir() // the owner's groups/, say
	if err := os.WriteFile(filepath.Join(tree, "notes.md"), []byte("nothing here"), 0o600); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(t.TempDir(), "gone")
	mounts := []sandbox.Mount{{Source: group, Target: "/workspace/group"}, {Source: binary, Target: "/usr/local/bin/nanoclaw-agent"}}
	secrets := [][]byte{[]byte(secret), nil}
	done := make(chan selftest.Finding)
	go func() { done <- scanSources(mounts, []string{tree, gone}, secrets) }()
	var f selftest.Finding
	select {
	case f = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the scan blocked (on the FIFO?)")
	}
	if !f.OK {
		t.Fatalf("a link to a file holding the key was followed: %+v", f)
	}
	for _, want := range []string{"read 2 files", group + " (0 files", binary + " (1 files", tree + " (1 files",
		"2 links, FIFOs and other non-regular files", "missing " + gone} {
		if !strings.Contains(f.Detail, want) {
			t.Errorf("detail %q does not say %q", f.Detail, want)
		}
	}
	// Straddling the 1 MiB read chunk, in a mount source.
	big := make([]byte, 2<<20)
	copy(big[1<<20-10:], secret)
	if err := os.MkdirAll(filepath.Join(group, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(group, "sub", "notes.bin"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	// And in the owner's tree, which no probe container mounts.
	if err := os.WriteFile(filepath.Join(tree, "key.txt"), []byte("key="+secret), 0o600); err != nil {
		t.Fatal(err)
	}
	f = scanSources(mounts, []string{tree}, secrets)
	for _, want := range []string{filepath.Join(group, "sub", "notes.bin"), filepath.Join(tree, "key.txt")} {
		if f.OK || !strings.Contains(f.Detail, want) || strings.Contains(f.Detail, secret) {
			t.Errorf("planted key: %+v, want a failure naming %s and not the key", f, want)
		}
	}
	if f := scanSources(mounts, []string{tree}, [][]byte{nil, nil}); !f.OK || !strings.Contains(f.Detail, "no credential is configured") {
		t.Errorf("without a credential: %+v", f)
	}
}

// The gateway's own counts must cover what the probe says it was refused.
func TestCheckCounts(t *testing.T) {
	n := int64(len(selftest.PrivateTargets) + 2)
	if f := checkCounts(n, 1, 0, 2); !f.OK {
		t.Errorf("matching counts: %+v", f)
	}
	for _, c := range [][3]int64{{n - 1, 1, 0}, {n, 0, 0}, {n, 1, 1}, {0, 0, 0}} {
		if f := checkCounts(c[0], c[1], c[2], 2); f.OK {
			t.Errorf("denied %d, API refused %d, upstream %d: passed", c[0], c[1], c[2])
		}
	}
}

// B: the self-test's gateway holds no credential, whatever the daemon's
// options say: an API call on the probe's socket reaches no upstream with
// the key (it is refused before), and the gateway's refusals of calls
// outside its allowlist are counted.
func TestSelfTesterGatewayHoldsNoCredential(t *testing.T) {
	up := fakeapi.New()
	defer up.Close()
	upstream, _ := url.Parse(up.URL())
	key := "sk-ant-api03-" + keyMarker + "-" + strings.Repeat("k", 40)
	st := NewSelfTester(Options{Gateway: gateway.Options{Upstream: upstream, APIKey: key, OAuthToken: key},
		Logger: slog.New(slog.DiscardHandler)})
	dir := t.TempDir()
	ep, err := st.r.gw.Open(gateway.Caller{Folder: "probe"}, egress.Policy{Mode: egress.Public}, dir, os.Getuid(), os.Getgid())
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	client := testenv.UnixClient(filepath.Join(dir, ipc.SocketName))
	post := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://gateway"+path, strings.NewReader(body))
		req.Header.Set("x-api-key", ipc.PlaceholderAPIKey)
		req.Header.Set("content-type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/v1/messages", `{"model":"claude-x","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/messages on the probe's socket: %d, want 401 (no credential)", code)
	}
	for _, r := range up.Requests() {
		if slices.ContainsFunc([]string{r.Header.Get("x-api-key"), r.Header.Get("authorization")}, func(v string) bool { return strings.Contains(v, key) }) {
			t.Errorf("the upstream saw the real key on %s %s", r.Method, r.Path)
		}
	}
	if code := post("/v1/files", "{}"); code != http.StatusForbidden || st.r.gw.Stats()["probe"].APIRefused != 1 {
		t.Errorf("a call outside the allowlist: %d, counted %d; want 403, counted 1", code, st.r.gw.Stats()["probe"].APIRefused)
	}
}

// allContainers lists the containers of the harness's runtime, running or
// not (the self-test keeps its container until it has inspected it).
func allContainers(t *testing.T, h *harness, prefix string) []string {
	t.Helper()
	out, err := exec.Command(h.rt.Bin, "ps", "--all", "--format", "{{.Names}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	return names
}

func selfTest(t *testing.T, h *harness, folder string, trees ...string) map[string]selftest.Finding {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	st := NewSelfTester(h.runner.opt)
	defer st.Close(ctx)
	rep, err := st.Run(ctx, store.Group{Folder: folder}, SelfTestScan{Secrets: [][]byte{[]byte(h.key)}, Trees: trees})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("self-test took %v", time.Since(start).Round(time.Millisecond))
	got := map[string]selftest.Finding{}
	for _, f := range rep.Findings {
		got[f.Name] = f
		t.Logf("%s: ok %v: %s", f.Name, f.OK, f.Detail)
	}
	if len(got) != len(rep.Findings) || len(got) != len(selftest.Findings)+len(HostFindings) {
		t.Errorf("%d findings, %d names; want each of the probe's and the host's once", len(rep.Findings), len(got))
	}
	// Gone whatever happened: the container and the run's socket directory.
	if left := allContainers(t, h, "nanoclaw-"+folder+"-"); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
	if runs, _ := os.ReadDir(h.runner.opt.IPCDir); len(runs) > 0 {
		t.Errorf("socket directories left: %d", len(runs))
	}
	return got
}

// TestSelfTestE2E: on a real runtime every finding passes, the probe's
// and the host's; with the key planted in the group's folder, the probe
// (looking for its shape) and the host (looking for its bytes) both report
// it, and the host finds it in the owner's trees, which no probe sees.
func TestSelfTestE2E(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		owners := t.TempDir()
		got := selfTest(t, h, "probe", owners)
		for _, name := range slices.Concat(selftest.Findings, HostFindings) {
			if f, ok := got[name]; !ok || !f.OK {
				t.Errorf("finding %q: %+v, want it passed", name, f)
			}
		}
		if f := got[FindingRuntime]; !strings.Contains(f.Detail, "network none") {
			t.Errorf("runtime: %+v", f)
		}

		dir := filepath.Join(h.runner.opt.GroupsDir, "leaky")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "notes.md"), []byte("my key is "+h.key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(owners, "old.env"), []byte("KEY="+h.key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got = selfTest(t, h, "leaky", owners)
		if f := got[selftest.FindingFiles]; f.OK || !strings.Contains(f.Detail, "/workspace/group/notes.md") {
			t.Errorf("probe: %+v, want the planted key found in /workspace/group/notes.md", f)
		}
		if f := got[FindingSources]; f.OK || !strings.Contains(f.Detail, filepath.Join(dir, "notes.md")) || !strings.Contains(f.Detail, filepath.Join(owners, "old.env")) {
			t.Errorf("host: %+v, want the planted key found in %s and in %s", f, dir, owners)
		}
	})
}

// A: an image whose ENTRYPOINT prints a complete, passing report of its
// own does not replace the probe: the container runs the mounted
// nanoclaw-agent, whose real findings come back. And the runtime's record
// of a container started without nanoclaw's flags fails the host's check.
func TestSelfTestImageCannotSpeakForTheProbe(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		var fs []string
		for _, n := range selftest.Findings {
			fs = append(fs, fmt.Sprintf(`{"name":%q,"ok":true,"detail":"FAKE"}`, n))
		}
		fake := `{"findings":[` + strings.Join(fs, ",") + `],"mounts":[]}`
		dir := t.TempDir()
		dockerfile := filepath.Join(dir, "Dockerfile")
		df := fmt.Sprintf("FROM %s\nENTRYPOINT [\"/bin/echo\", %q]\n", testenv.AgentImage, fake)
		if err := os.WriteFile(dockerfile, []byte(df), 0o600); err != nil {
			t.Fatal(err)
		}
		image := "localhost/nanoclaw-wrapped:agenttest"
		ctx := context.Background()
		if err := h.rt.Build(ctx, sandbox.BuildOptions{ContextDir: dir, Dockerfile: dockerfile, Tag: image}, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command(h.rt.Bin, "rmi", "--force", image).Run() })
		h.runner.opt.Image = image
		got := selfTest(t, h, "wrapped")
		for name, f := range got {
			if strings.Contains(f.Detail, "FAKE") || !f.OK {
				t.Errorf("finding %q: %+v, want the real probe's, passed", name, f)
			}
		}

		name, _ := sandbox.ContainerName("loose", time.Now())
		if out, err := exec.Command(h.rt.Bin, "run", "--name", name, "--network", "host", testenv.BaseImage, "true").CombinedOutput(); err != nil {
			t.Fatalf("run: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command(h.rt.Bin, "rm", "--force", name).Run() })
		spec := sandbox.Spec{Name: name, User: "1879113728:1879113728", Cmd: []string{ipc.ContainerAgentBinary, "selftest"},
			Mounts: []sandbox.Mount{{Source: dir, Target: "/workspace/group"}}}
		f := checkInspection(ctx, h.rt, spec)
		for _, want := range []string{`network "host"`, "capabilities kept", "a writable root", "no no-new-privileges", `user ""`, "command", "bind mounts"} {
			if f.OK || !strings.Contains(f.Detail, want) {
				t.Errorf("an unhardened container: %+v, want a failure saying %q", f, want)
			}
		}
	})
}
