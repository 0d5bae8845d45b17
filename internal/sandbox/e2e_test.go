package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// agentImage is the image scripts/test-env builds from agentimage/Dockerfile.
const agentImage = testenv.AgentImage

// eachLinuxRuntime runs f as a subtest on podman and on docker.
func eachLinuxRuntime(t *testing.T, f func(t *testing.T, r *Runtime)) {
	for _, kind := range []Kind{Podman, Docker} {
		t.Run(string(kind), func(t *testing.T) { f(t, realRuntime(t, kind)) })
	}
}

// A container run as nanoclaw runs one is confined the same way on both
// runtimes: not root, no capabilities, no-new-privileges, loopback only,
// read-only root, only the listed mounts writable as listed, limits in place.
func TestHardenedContainer(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		f := newHardenedFixture(t, uniqueFolder(t, "hard"), testenv.BaseImage)
		rep := runProbe(t, r, f)
		assertHardened(t, f, rep)
		if rep.NoNewPrivs != "1" {
			t.Errorf("NoNewPrivs = %q, want 1", rep.NoNewPrivs)
		}
		if rep.PidsMax != strconv.Itoa(f.Spec.PidsLimit) {
			t.Errorf("pids.max = %q, want %d", rep.PidsMax, f.Spec.PidsLimit)
		}
		if want := strconv.Itoa(f.Spec.MemoryMB << 20); rep.MemoryMax != want {
			t.Errorf("memory limit = %q, want %s", rep.MemoryMax, want)
		}
		if rep.Nproc != [2]uint64{nprocLimit, nprocLimit} {
			t.Errorf("RLIMIT_NPROC = %v, want %d", rep.Nproc, nprocLimit)
		}
		// The home is the container user's alone; /tmp is shared scratch.
		if want := "700 " + f.Spec.User; rep.Mode["/home/agent"] != want {
			t.Errorf("/home/agent is %q, want %q", rep.Mode["/home/agent"], want)
		}
		if want := "1777 0:0"; rep.Mode["/tmp"] != want {
			t.Errorf("/tmp is %q, want %q", rep.Mode["/tmp"], want)
		}
		// The read-only source really was not written.
		if entries, _ := os.ReadDir(f.ROSource); len(entries) != 0 {
			t.Errorf("read-only source has %d entries", len(entries))
		}
		if names, err := r.List(context.Background(), "nanoclaw-"+strings.SplitN(f.Spec.Name, "-", 3)[1]); err != nil || len(names) != 0 {
			t.Errorf("after the run: containers %v, %v (want none: --rm)", names, err)
		}
	})
}

// startSleeper starts a container that sleeps until stopped and waits until
// the runtime lists it as running.
func startSleeper(t *testing.T, ctx context.Context, r *Runtime, folder string) (*exec.Cmd, string) {
	t.Helper()
	f := newHardenedFixture(t, folder, testenv.BaseImage, "sleep", "1000")
	f.Spec.Interactive = true
	cmd, err := r.Command(ctx, f.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		r.run(context.Background(), r.removeArgs(f.Spec.Name)...)
	})
	waitFor(t, func() bool {
		names, _ := r.List(ctx, "nanoclaw-"+folder+"-")
		return slices.Contains(names, f.Spec.Name)
	}, "container "+f.Spec.Name+" running (stderr: "+stderr.String()+")")
	return cmd, f.Spec.Name
}

// waitFor polls cond (an external runtime's state has no event to wait on).
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStopEndsContainerWithinGrace(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		ctx := context.Background()
		folder := uniqueFolder(t, "stop")
		cmd, name := startSleeper(t, ctx, r, folder)
		const grace = 3 * time.Second
		start := time.Now()
		if err := r.Stop(ctx, name, grace); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		// sleep does not handle SIGTERM itself; the init forwards it and
		// the process dies of it, well before the grace ends.
		if took > grace {
			t.Errorf("Stop took %v, more than the %v grace", took, grace)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the run command did not end after Stop")
		}
		if there, err := exists(ctx, r, name); err != nil || there {
			t.Errorf("after Stop: exists=%v err=%v, want it removed", there, err)
		}
		// Stopping what is gone is not an error.
		if err := r.Stop(ctx, name, grace); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

func TestStopRejectsForeignNames(t *testing.T) {
	r := &Runtime{Kind: Docker, Bin: "/nonexistent/docker"}
	for _, name := range []string{"postgres", "nanoclaw-x", "--all", "nanoclaw-a-1 nanoclaw-b-2"} {
		if err := r.Stop(context.Background(), name, time.Second); err == nil || !strings.Contains(err.Error(), "invalid container name") {
			t.Errorf("Stop(%q) = %v", name, err)
		}
	}
	for _, prefix := range []string{"", "postgres", "nanoclaw", "nanoclaw-A", "nanoclaw-;"} {
		if _, err := r.RemoveStale(context.Background(), prefix); err == nil || !strings.Contains(err.Error(), "invalid container name prefix") {
			t.Errorf("RemoveStale(%q) = %v", prefix, err)
		}
	}
}

// A host killed while its containers ran leaves them behind, running or
// stopped; RemoveStale removes them all with one command.
func TestRemoveStaleAfterKilledHost(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, real *Runtime) {
		// Record the CLI calls: the fake passes them to the real CLI.
		logPath := filepath.Join(t.TempDir(), "calls")
		t.Setenv("NANOCLAW_FAKE_LOG", logPath)
		t.Setenv("NANOCLAW_FAKE_"+strings.ToUpper(string(real.Kind)), real.Bin)
		r := &Runtime{Kind: real.Kind, Bin: filepath.Join(fakeCLIs(t, string(real.Kind)), string(real.Kind))}
		ctx := context.Background()
		folder := uniqueFolder(t, "stale")
		prefix := "nanoclaw-" + folder + "-"

		// A running one whose host side died: kill our CLI process only.
		cmd, running := startSleeper(t, ctx, r, folder)
		cmd.Process.Kill()
		cmd.Wait()
		// A created one that never ran.
		stopped, err := ContainerName(folder, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(real.Bin, "create", "--name", stopped, testenv.BaseImage, "true").CombinedOutput(); err != nil {
			t.Fatalf("create: %v: %s", err, out)
		}
		t.Cleanup(func() { real.run(context.Background(), real.removeArgs(stopped)...) })
		if names, _ := r.List(ctx, prefix); !slices.Equal(names, []string{running}) {
			t.Fatalf("before: running %v, want [%s]", names, running)
		}

		if err := os.Remove(logPath); err != nil {
			t.Fatal(err)
		}
		removed, err := r.RemoveStale(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(removed)
		want := []string{running, stopped}
		slices.Sort(want)
		if !slices.Equal(removed, want) {
			t.Errorf("removed %v, want %v", removed, want)
		}
		var rmCalls [][]string
		for _, c := range recorded(t, logPath) {
			if c[1] == "rm" {
				rmCalls = append(rmCalls, c)
			}
		}
		if len(rmCalls) != 1 || !slices.Contains(rmCalls[0], running) || !slices.Contains(rmCalls[0], stopped) {
			t.Errorf("rm calls %q, want one call naming both", rmCalls)
		}
		for _, n := range want {
			if there, err := exists(ctx, real, n); err != nil || there {
				t.Errorf("%s still exists (%v)", n, err)
			}
		}
		if again, err := r.RemoveStale(ctx, prefix); err != nil || len(again) != 0 {
			t.Errorf("second RemoveStale: %v, %v", again, err)
		}
	})
}

// A host cleans up only its own containers: another host's (another user's
// data home, a parallel test) survive its RemoveStale.
func TestRemoveStaleSparesOtherInstances(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, real *Runtime) {
		n := time.Now().UnixNano() % 1_000_000_000
		mine := &Runtime{Kind: real.Kind, Bin: real.Bin, Instance: fmt.Sprintf("mine%d", n)}
		theirs := &Runtime{Kind: real.Kind, Bin: real.Bin, Instance: fmt.Sprintf("theirs%d", n)}
		ctx := context.Background()
		_, ours := startSleeper(t, ctx, mine, uniqueFolder(t, "mine"))
		_, other := startSleeper(t, ctx, theirs, uniqueFolder(t, "theirs"))
		if names, _ := mine.List(ctx, "nanoclaw-"); !slices.Equal(names, []string{ours}) {
			t.Errorf("List of one instance shows %v, want only [%s]", names, ours)
		}
		removed, err := mine.RemoveStale(ctx, "nanoclaw-")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(removed, []string{ours}) {
			t.Errorf("removed %v, want only [%s]", removed, ours)
		}
		if ok, _ := exists(ctx, real, other); !ok {
			t.Errorf("another instance's container %s was removed", other)
		}
	})
}

// When the caller's context ends, the container goes too, not just the CLI.
func TestCommandContextEndRemovesContainer(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		ctx, cancel := context.WithCancel(context.Background())
		folder := uniqueFolder(t, "cancel")
		cmd, name := startSleeper(t, ctx, r, folder)
		cancel()
		err := cmd.Wait()
		if err == nil {
			t.Error("Wait after cancel: nil error")
		}
		if there, err := exists(context.Background(), r, name); err != nil || there {
			t.Errorf("after cancel: exists=%v err=%v", there, err)
		}
	})
}

func TestImageExists(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		ctx := context.Background()
		if ok, err := r.ImageExists(ctx, testenv.BaseImage); err != nil || !ok {
			t.Errorf("base image: %v, %v", ok, err)
		}
		if ok, err := r.ImageExists(ctx, "localhost/nanoclaw-no-such-image:none"); err != nil || ok {
			t.Errorf("missing image: %v, %v", ok, err)
		}
		if _, err := r.ImageExists(ctx, "-x"); err == nil {
			t.Error("invalid reference accepted")
		}
		broken := &Runtime{Kind: r.Kind, Bin: filepath.Join(fakeCLIs(t, string(r.Kind)), string(r.Kind))}
		if _, err := broken.ImageExists(ctx, testenv.BaseImage); err == nil {
			t.Error("a failing CLI reads as an answer")
		}
	})
}

// Build runs a Dockerfile with a RUN step (docker here has no bridge network,
// so this also covers the --network host fallback), build args and labels.
func TestBuild(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		ctx := context.Background()
		dir := t.TempDir()
		dockerfile := filepath.Join(dir, "Dockerfile")
		content := "ARG BASE\nFROM ${BASE}\nARG GREETING\nRUN [\"mkdir\", \"/built\"]\nLABEL greeting=${GREETING}\n"
		if err := os.WriteFile(dockerfile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		tag := "localhost/nanoclaw-runtime-build-test:" + strconv.Itoa(os.Getpid())
		t.Cleanup(func() { exec.Command(r.Bin, "rmi", "--force", tag).Run() })
		var progress strings.Builder
		err := r.Build(ctx, BuildOptions{
			ContextDir: dir, Dockerfile: dockerfile, Tag: tag,
			BuildArgs: map[string]string{"BASE": testenv.BaseImage, "GREETING": "hello"},
			Labels:    map[string]string{"org.nanoclaw.test": "yes"},
		}, &progress)
		if err != nil {
			t.Fatalf("%v\n%s", err, progress.String())
		}
		if progress.Len() == 0 {
			t.Error("no progress output")
		}
		out, err := exec.Command(r.Bin, "image", "inspect", "--format",
			`{{index .Config.Labels "greeting"}} {{index .Config.Labels "org.nanoclaw.test"}}`, tag).Output()
		if err != nil || strings.TrimSpace(string(out)) != "hello yes" {
			t.Errorf("labels %q, %v", out, err)
		}
		if labels, found, err := r.ImageLabels(ctx, tag); err != nil || !found || labels["greeting"] != "hello" || labels["org.nanoclaw.test"] != "yes" {
			t.Errorf("ImageLabels = %v, %v, %v", labels, found, err)
		}
		if _, found, err := r.ImageLabels(ctx, "localhost/nanoclaw-no-such-image:none"); err != nil || found {
			t.Errorf("ImageLabels of a missing image: found=%v, %v", found, err)
		}
		// A failing build is an error naming the runtime and the tag. (It
		// fails in COPY, not RUN: docker's classic builder keeps the
		// container of a failed RUN step.)
		if err := os.WriteFile(dockerfile, []byte("FROM "+testenv.BaseImage+"\nCOPY no-such-file /x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err = r.Build(ctx, BuildOptions{ContextDir: dir, Dockerfile: dockerfile, Tag: tag}, nil)
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || !strings.Contains(err.Error(), tag) {
			t.Errorf("failing build: %v", err)
		}
	})
}

// The agent image runs Claude Code and its tools under the full hardening.
func TestAgentImage(t *testing.T) {
	eachLinuxRuntime(t, func(t *testing.T, r *Runtime) {
		ctx := context.Background()
		if ok, err := r.ImageExists(ctx, agentImage); err != nil || !ok {
			testenv.Missing(t, string(r.Kind)+" has no image "+agentImage+" (scripts/test-env builds it)")
		}
		folder := uniqueFolder(t, "agent")
		for _, c := range []struct {
			cmd  []string
			want string
		}{
			{[]string{"claude", "--version"}, "(Claude Code)"},
			{[]string{"git", "--version"}, "git version"},
			{[]string{"rg", "--version"}, "ripgrep"},
			{[]string{"jq", "--version"}, "jq-"},
			{[]string{"curl", "--version"}, "curl"},
		} {
			f := newHardenedFixture(t, folder, agentImage, c.cmd...)
			cmd, err := r.Command(ctx, f.Spec)
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), c.want) {
				t.Errorf("%v: %v: %s", c.cmd, err, out)
			}
		}
		f := newHardenedFixture(t, folder, agentImage)
		rep := runProbe(t, r, f)
		assertHardened(t, f, rep)
		if want := "700 " + f.Spec.User; rep.Mode["/home/agent"] != want {
			t.Errorf("/home/agent is %q, want %q", rep.Mode["/home/agent"], want)
		}
	})
}
