package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

var (
	toolDir   string // where the test programs under testdata/ are built
	buildMu   sync.Mutex
	toolPaths = map[string]string{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nanoclaw-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by the container user: the probe is bind-mounted from here.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tool builds testdata/<name> once (static, so it runs in any image) and
// returns the program's path. `go test` puts GOROOT/bin first in PATH.
func tool(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := toolPaths[name]; ok {
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building testdata/%s needs the go command: %v", name, err)
	}
	out := filepath.Join(toolDir, name, name)
	cmd := exec.Command(goBin, "build", "-o", out, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/%s: %v\n%s", name, err, msg)
	}
	toolPaths[name] = out
	return out
}

// fakeCLIs makes a directory holding the fake CLI under each of names, for
// use as PATH. Set NANOCLAW_FAKE_<NAME> to choose how each behaves (see
// testdata/fakecli).
// The fake CLI is configured through NANOCLAW_FAKE_* variables, which the
// explicit CLI environment (cliEnv) would otherwise leave out.
func init() { passEnvPrefix = "NANOCLAW_FAKE_" }

func fakeCLIs(t *testing.T, names ...string) string {
	t.Helper()
	fake := tool(t, "fakecli")
	dir := t.TempDir()
	for _, n := range names {
		if err := os.Symlink(fake, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// recorded reads the argument vectors the fake CLI logged, each with the
// name it was called under first.
func recorded(t *testing.T, logPath string) [][]string {
	t.Helper()
	f, err := os.Open(logPath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var argv []string
		if err := json.Unmarshal(sc.Bytes(), &argv); err != nil {
			t.Fatalf("fake log line %q: %v", sc.Text(), err)
		}
		calls = append(calls, argv)
	}
	return calls
}

// realRuntime returns a working podman or docker, or ends the test through
// testenv.Missing.
func realRuntime(t *testing.T, kind Kind) *Runtime {
	t.Helper()
	return &Runtime{Kind: kind, Bin: testenv.Runtime(t, string(kind))}
}

// uniqueFolder is a group folder no other test (or test run) uses, so tests
// that list and remove containers by prefix touch only their own.
func uniqueFolder(t *testing.T, what string) string {
	t.Helper()
	return fmt.Sprintf("rt%s-%d-%d", what, os.Getpid(), time.Now().UnixNano()%1_000_000_000)
}

// probeReport is what testdata/probe prints.
type probeReport struct {
	UID, GID   int
	CapEff     string
	NoNewPrivs string
	Interfaces []string
	Write      map[string]string
	Mode       map[string]string
	PidsMax    string
	MemoryMax  string
	Nofile     [2]uint64
	Nproc      [2]uint64
	Home       string
	PID1       string
}

// hardenedSpec is a container as nanoclaw runs one, with the probe program
// mounted in and two host directories: one read-only, one read-write.
type hardenedFixture struct {
	Spec     Spec
	ROSource string
	RWSource string
	UID, GID int
}

func newHardenedFixture(t *testing.T, folder, image string, cmd ...string) hardenedFixture {
	t.Helper()
	probe := tool(t, "probe")
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	ro, rw := filepath.Join(base, "ro"), filepath.Join(base, "rw")
	for _, d := range []string{ro, rw} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	user := testenv.ContainerUser()
	var uid, gid int
	if _, err := fmt.Sscanf(user, "%d:%d", &uid, &gid); err != nil {
		t.Fatal(err)
	}
	// The read-write folder belongs to the container user, as the host makes
	// a group's folder; the read-only one stays the host's.
	if os.Getuid() == 0 {
		if err := os.Chown(rw, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	name, err := ContainerName(folder, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd) == 0 {
		cmd = []string{"/probe", "/", "/ro", "/rw", "/tmp", "/home/agent", "/etc"}
	}
	return hardenedFixture{
		Spec: Spec{
			Name:    name,
			Image:   image,
			User:    user,
			Workdir: "/rw",
			Env:     []string{"HOME=/home/agent"},
			Mounts: []Mount{
				{Source: probe, Target: "/probe", ReadOnly: true},
				{Source: ro, Target: "/ro", ReadOnly: true},
				{Source: rw, Target: "/rw"},
			},
			Tmpfs:     []Tmpfs{{Target: "/tmp", SizeMB: 64}, {Target: "/home/agent", SizeMB: 32, Private: true}},
			MemoryMB:  256,
			CPUs:      1,
			PidsLimit: 100,
			Cmd:       cmd,
		},
		ROSource: ro, RWSource: rw, UID: uid, GID: gid,
	}
}

// runProbe runs the fixture's container to the end and decodes the probe's report.
func runProbe(t *testing.T, r *Runtime, f hardenedFixture) probeReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := r.Command(ctx, f.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s run: %v\nstderr: %s\nstdout: %s", r.Kind, err, stderr.String(), out)
	}
	var rep probeReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("probe output %q: %v (stderr %s)", out, err, stderr.String())
	}
	return rep
}

// assertHardened checks what every runtime must guarantee.
func assertHardened(t *testing.T, f hardenedFixture, rep probeReport) {
	t.Helper()
	if rep.UID != f.UID || rep.GID != f.GID {
		t.Errorf("runs as %d:%d, want %d:%d", rep.UID, rep.GID, f.UID, f.GID)
	}
	if rep.CapEff != "0000000000000000" {
		t.Errorf("CapEff = %q, want no capabilities", rep.CapEff)
	}
	if len(rep.Interfaces) != 1 || rep.Interfaces[0] != "lo" {
		t.Errorf("network interfaces %v, want only lo", rep.Interfaces)
	}
	wantWrite := map[string]string{
		"/":           "read-only file system",
		"/etc":        "read-only file system",
		"/ro":         "read-only file system",
		"/rw":         "ok",
		"/tmp":        "ok",
		"/home/agent": "ok",
	}
	for dir, want := range wantWrite {
		if got := rep.Write[dir]; got != want {
			t.Errorf("writing in %s: %q, want %q", dir, got, want)
		}
	}
	if rep.Home != "/home/agent" {
		t.Errorf("HOME = %q", rep.Home)
	}
	if rep.Nofile != [2]uint64{nofileLimit, nofileLimit} {
		t.Errorf("RLIMIT_NOFILE = %v, want %d:%d", rep.Nofile, nofileLimit, nofileLimit)
	}
	if !strings.Contains(rep.PID1, "init") {
		t.Errorf("PID 1 is %q, want an init (it forwards SIGTERM and reaps orphans)", rep.PID1)
	}
}

// exists reports whether a container of that name exists, running or not.
func exists(ctx context.Context, r *Runtime, name string) (bool, error) {
	names, err := r.names(ctx, true, "nanoclaw-")
	return slices.Contains(names, name), err
}
