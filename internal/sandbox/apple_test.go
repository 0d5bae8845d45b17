package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// appleFake is Apple's container CLI as a recording fake in PATH that checks
// every command against the flags Apple's CLI documents and runs it with
// podman; it returns the runtime Detect finds and the fake's call log.
func appleFake(t *testing.T) (*Runtime, string) {
	t.Helper()
	podman := realRuntime(t, Podman)
	logPath := filepath.Join(t.TempDir(), "calls")
	t.Setenv("NANOCLAW_FAKE_LOG", logPath)
	t.Setenv("NANOCLAW_FAKE_CONTAINER", podman.Bin)
	t.Setenv("PATH", fakeCLIs(t, "container")+string(os.PathListSeparator)+os.Getenv("PATH"))
	r, err := Detect(context.Background(), "container")
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != Apple {
		t.Fatalf("Detect = %+v", r)
	}
	return r, logPath
}

// callsOf returns the recorded calls of one subcommand.
func callsOf(t *testing.T, logPath, sub string) [][]string {
	t.Helper()
	var calls [][]string
	for _, c := range recorded(t, logPath) {
		if len(c) > 1 && c[1] == sub {
			calls = append(calls, c[1:])
		}
	}
	return calls
}

// The Apple command line, run for real (through the fake, by podman),
// confines the container as the other runtimes do, except for what the VM
// covers instead (see appleArgs).
func TestAppleHardenedContainer(t *testing.T) {
	r, logPath := appleFake(t)
	f := newHardenedFixture(t, uniqueFolder(t, "apple"), testenv.BaseImage)
	want, err := r.RunArgs(f.Spec)
	if err != nil {
		t.Fatal(err)
	}
	rep := runProbe(t, r, f)

	runs := callsOf(t, logPath, "run")
	if len(runs) != 1 || !slices.Equal(runs[0], want) {
		t.Fatalf("recorded run calls %q, want exactly %q", runs, want)
	}
	args := runs[0]
	for _, pair := range [][2]string{
		{"--network", "none"}, {"--cap-drop", "ALL"}, {"--user", f.Spec.User},
		{"--mount", "type=bind,source=" + f.ROSource + ",target=/ro,readonly"},
		{"--mount", "type=bind,source=" + f.RWSource + ",target=/rw"},
		{"--mount", "type=tmpfs,target=/tmp,size=64M,mode=1777"},
		{"--ulimit", "nproc=100:100"},
	} {
		if !hasPair(args, pair[0], pair[1]) {
			t.Errorf("run lacks %s %s: %q", pair[0], pair[1], args)
		}
	}
	for _, flag := range []string{"--read-only", "--init", "--rm"} {
		if !slices.Contains(args, flag) {
			t.Errorf("run lacks %s", flag)
		}
	}
	// Flags Apple's CLI does not have are not passed (the fake would refuse them).
	for _, flag := range []string{"--security-opt", "--pids-limit", "--pull", "--log-driver", "--tmpfs", "--memory-swap"} {
		if slices.Contains(args, flag) {
			t.Errorf("run passes %s, which Apple's container does not support", flag)
		}
	}

	assertHardened(t, f, rep)
	// NoNewPrivs is not asserted: Apple's CLI has no such option (see appleArgs).
	if rep.Nproc != [2]uint64{100, 100} {
		t.Errorf("RLIMIT_NPROC = %v, want the pids limit 100 (Apple's stand-in for --pids-limit)", rep.Nproc)
	}
}

// The fake refuses what Apple's CLI would refuse, so the test above proves
// something: a docker-only flag fails.
func TestAppleFakeRefusesDockerFlags(t *testing.T) {
	r, _ := appleFake(t)
	for _, args := range [][]string{
		{"run", "--rm", "--security-opt", "no-new-privileges", testenv.BaseImage, "true"},
		{"run", "--rm", "--pids-limit", "10", testenv.BaseImage, "true"},
		{"run", "--rm", "--mount", "type=bind,source=/tmp,target=/x,bind-propagation=rprivate", testenv.BaseImage, "true"},
		{"ps", "--all"},
	} {
		out, err := exec.Command(r.Bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 64 {
			t.Errorf("%q: %v: %s", args, err, out)
		}
	}
}

func TestAppleLifecycle(t *testing.T) {
	r, logPath := appleFake(t)
	ctx := context.Background()
	folder := uniqueFolder(t, "applelife")
	prefix := "nanoclaw-" + folder + "-"

	if ok, err := r.ImageExists(ctx, testenv.BaseImage); err != nil || !ok {
		t.Errorf("ImageExists(base) = %v, %v", ok, err)
	}
	if ok, err := r.ImageExists(ctx, "localhost/nanoclaw-no-such-image:none"); err != nil || ok {
		t.Errorf("ImageExists(missing) = %v, %v", ok, err)
	}

	_, name := startSleeper(t, ctx, r, folder)
	start := time.Now()
	if err := r.Stop(ctx, name, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Stop took %v", took)
	}
	if names, err := r.List(ctx, prefix); err != nil || len(names) != 0 {
		t.Errorf("after Stop: %v, %v", names, err)
	}

	cmd, stale := startSleeper(t, ctx, r, folder)
	cmd.Process.Kill()
	cmd.Wait()
	removed, err := r.RemoveStale(ctx, prefix)
	if err != nil || !slices.Equal(removed, []string{stale}) {
		t.Errorf("RemoveStale = %v, %v; want [%s]", removed, err, stale)
	}

	want := map[string][]string{
		"stop":   {"stop", "--time", "2", name},
		"delete": {"delete", "--force", stale},
		"image":  {"image", "inspect", testenv.BaseImage},
		"list":   {"list", "--quiet", "--all"},
	}
	for sub, w := range want {
		if !slices.ContainsFunc(callsOf(t, logPath, sub), func(c []string) bool { return slices.Equal(c, w) }) {
			t.Errorf("no call %q among %q", w, callsOf(t, logPath, sub))
		}
	}
	if got := callsOf(t, logPath, "delete"); len(got) != 2 { // Stop's removal, RemoveStale's
		t.Errorf("delete calls %q", got)
	}
	for _, c := range recorded(t, logPath) {
		if strings.HasPrefix(c[1], "-") {
			t.Errorf("call starts with a flag: %q", c)
		}
	}
}

func TestAppleBuild(t *testing.T) {
	r, logPath := appleFake(t)
	dir := t.TempDir()
	dockerfile := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(dockerfile, []byte("ARG BASE\nFROM ${BASE}\nLABEL apple=yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "localhost/nanoclaw-runtime-apple-build-test:1"
	t.Cleanup(func() { exec.Command(realRuntime(t, Podman).Bin, "rmi", "--force", tag).Run() })
	err := r.Build(context.Background(), BuildOptions{
		ContextDir: dir, Dockerfile: dockerfile, Tag: tag,
		BuildArgs: map[string]string{"BASE": testenv.BaseImage},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"build", "--progress", "plain", "--file", dockerfile, "--tag", tag,
		"--build-arg", "BASE=" + testenv.BaseImage, dir}
	if got := callsOf(t, logPath, "build"); len(got) != 1 || !slices.Equal(got[0], want) {
		t.Errorf("build calls %q, want %q", got, want)
	}
}
