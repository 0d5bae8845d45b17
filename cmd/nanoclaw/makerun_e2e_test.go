package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// repoRoot is the module's root: the Makefile and scripts/ are there.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runProgram runs path with args and exactly env, and returns its exit
// code, stdout and stderr.
func runProgram(t *testing.T, env []string, path string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", path, args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// fileState is what a file is, to tell that nothing touched it.
func fileState(path string) string {
	info, err := os.Stat(path)
	if err != nil {
		return "absent"
	}
	data, _ := os.ReadFile(path)
	return fmt.Sprintf("%s %d %x", info.ModTime(), info.Size(), data)
}

// scripts/runtime --check reports and changes nothing; the plain call does
// nothing, silently, when a runtime works; with no runtime it says what it
// would do, or what to install.
func TestRuntimeScript(t *testing.T) {
	testenv.Runtime(t, "podman")
	script := filepath.Join(repoRoot(t), "scripts", "runtime")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	touched := []string{"/etc/containers/containers.conf", "/var/log/nanoclaw-runtime.log"}
	var before []string
	for _, p := range touched {
		before = append(before, fileState(p))
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		for i, p := range touched {
			if fileState(p) != before[i] {
				t.Errorf("%s changed", p)
			}
		}
	}

	t.Run("a runtime works", func(t *testing.T) {
		code, out, errOut := runProgram(t, env, script, "--check")
		if code != 0 || out != "" || !strings.HasPrefix(errOut, "runtime: podman: works (") ||
			!strings.HasSuffix(errOut, "runtime: ready: nanoclaw will use podman; nothing to do\n") {
			t.Errorf("--check: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		code, out, errOut = runProgram(t, env, script)
		if code != 0 || out != "" || errOut != "" {
			t.Errorf("plain call: exit %d, stdout %q, stderr %q; want 0 and silence", code, out, errOut)
		}
		unchanged(t)
	})

	t.Run("none installed", func(t *testing.T) {
		// A PATH with the tools the script uses and no container CLI.
		dir := t.TempDir()
		for _, tool := range []string{"bash", "id", "uname", "grep", "sed", "timeout", "dpkg-query", "date", "tail", "mkdir", "mv", "chmod", "cat", "dirname"} {
			if p, err := exec.LookPath(tool); err == nil {
				if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
					t.Fatal(err)
				}
			}
		}
		code, out, errOut := runProgram(t, []string{"PATH=" + dir, "HOME=" + os.Getenv("HOME")}, script, "--check")
		want := "runtime: podman: not installed\nruntime: docker: not installed\nruntime: not ready: "
		if _, err := os.Stat("/etc/debian_version"); err == nil && os.Geteuid() == 0 {
			want += "without --check this installs podman runc catatonit and writes /etc/containers/containers.conf\n"
		}
		if code != 1 || out != "" || !strings.HasPrefix(errOut, want) {
			t.Errorf("--check: exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
		}
		unchanged(t)
	})

	t.Run("the chosen runtime is down", func(t *testing.T) {
		if _, err := exec.LookPath("docker"); err != nil {
			t.Skip("no docker CLI to point at a daemon that is not there")
		}
		down := append(slices.Clone(env), "NANOCLAW_RUNTIME=docker", "DOCKER_HOST=unix:///nonexistent/docker.sock")
		code, out, errOut := runProgram(t, down, script)
		if code != 1 || out != "" || !strings.Contains(errOut, "but `docker version` fails: Cannot connect to the Docker daemon") ||
			!strings.HasSuffix(errOut, "runtime: no working container runtime: NANOCLAW_RUNTIME=docker: make `docker version` work "+
				"(install Docker: https://docs.docker.com/engine/install/, and start its daemon), or unset NANOCLAW_RUNTIME to let nanoclaw use podman\n") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		unchanged(t)
	})
}

// freshTag is an agent image tag that no other test (or run) uses.
func freshTag(t *testing.T, bin, what string) string {
	t.Helper()
	tag := fmt.Sprintf("localhost/nanoclaw-agent:%s-%d-%d", what, os.Getpid(), time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { exec.Command(bin, "rmi", tag).Run() }) // untags: the layers are the test image's
	return tag
}

// From a fresh home and no image: `image status` says it is missing, `image
// build --if-needed` builds it with progress, and then both find it current
// and nothing is built again. An image from another Dockerfile is stale.
func TestImageBuildIfNeeded(t *testing.T) {
	bin := testenv.Runtime(t, "podman")
	testenv.Image(t, bin, testenv.AgentImage) // its layers make this build a cached one
	env, home := homeEnv(t)
	tag := freshTag(t, bin, "ifneeded")
	env = append(env, "NANOCLAW_RUNTIME=podman", "NANOCLAW_IMAGE="+tag)

	code, out, errOut := runProgram(t, env, binary, "image", "status")
	if want := "nanoclaw image: " + tag + " (podman) is missing: run 'nanoclaw image build'\n"; code != 1 || out != "" || errOut != want {
		t.Fatalf("status of no image: exit %d, stdout %q, stderr %q; want 1, %q", code, out, errOut, want)
	}
	code, _, errOut = runProgram(t, env, binary, "image", "build", "--if-needed", "--base", testenv.BaseImage)
	if code != 0 || !strings.HasPrefix(errOut, "nanoclaw image build: "+tag+" (podman) is missing\nnanoclaw image build: building "+tag+" with podman") ||
		!strings.Contains(errOut, "STEP 1/") || !strings.Contains(errOut, "nanoclaw image build: built "+tag+" in ") {
		t.Fatalf("first build: exit %d, stderr:\n%s", code, errOut)
	}
	code, out, errOut = runProgram(t, env, binary, "image", "status")
	if code != 0 || out != tag+" (podman) is current: built from this nanoclaw's Dockerfile\n" || errOut != "" {
		t.Errorf("status after the build: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runProgram(t, env, binary, "image", "build", "--if-needed", "--base", testenv.BaseImage)
	if want := "nanoclaw image build: " + tag + " (podman) is current: built from this Dockerfile; nothing to do\n"; code != 0 || out != "" || errOut != want {
		t.Errorf("second call: exit %d, stdout %q, stderr %q; want 0 and only %q", code, out, errOut, want)
	}
	if _, err := os.Stat(filepath.Join(home, ".nanoclaw")); !os.IsNotExist(err) {
		t.Errorf("the image commands made a data home (%v)", err)
	}

	stale := freshTag(t, bin, "stale")
	if out, err := exec.Command(bin, "tag", testenv.BaseImage, stale).CombinedOutput(); err != nil {
		t.Fatalf("podman tag: %v: %s", err, out)
	}
	code, _, errOut = runProgram(t, env, binary, "image", "status", "--tag", stale)
	if want := "nanoclaw image: " + stale + " (podman) is stale (built from another Dockerfile): run 'nanoclaw image build'\n"; code != 1 || errOut != want {
		t.Errorf("status of a stale image: exit %d, stderr %q; want 1, %q", code, errOut, want)
	}
}

// cleanEnv is this process's environment without a credential or any
// nanoclaw setting, so the test alone decides them.
func cleanEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return name == "ANTHROPIC_API_KEY" || name == "CLAUDE_CODE_OAUTH_TOKEN" || name == "ANTHROPIC_BASE_URL" ||
			name == "LOG_LEVEL" || strings.HasPrefix(name, "NANOCLAW_")
	})
	return append(env, extra...)
}

// noCredentialReply is what `send --wait` prints, and how it ends, when
// nanoclaw has no credential: the line on stdout, exit 1.
func checkNoCredentialReply(t *testing.T, env []string) {
	t.Helper()
	code, out, errOut := runProgram(t, env, binary, "send", "--wait=1m", "hello, anyone there?")
	// stderr: the stored message's id, then why there is no answer.
	if code != 1 || out != agent.ErrNoCredential.Error()+"\n" || !strings.HasPrefix(errOut, "stored in local:main as message 1 (id ") ||
		!strings.HasSuffix(errOut, ")\nnanoclaw send: no answer: the message is kept, and answered once nanoclaw runs with a credential\n") {
		t.Fatalf("send --wait without a credential: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}

// Without a credential the daemon starts, and `send --wait` to main prints
// the one line that says how to add one and exits 1; no container starts.
// The message is kept: the first start with a credential answers it.
func TestNoCredentialAnswersWithTheLineAndKeepsTheMessage(t *testing.T) {
	w := newWorld(t, "podman")
	withKey := w.env
	w.env = slices.DeleteFunc(slices.Clone(w.env), func(kv string) bool { return strings.HasPrefix(kv, "ANTHROPIC_API_KEY=") })
	w.start()
	checkNoCredentialReply(t, w.env)
	if n := len(w.fake.Requests()); n != 0 {
		t.Errorf("%d upstream requests without a credential, want none", n)
	}
	if done, _ := w.allAnswered(); done {
		t.Error("the message counts as answered")
	}
	w.stop()

	w.env = withKey
	w.fake.Script(fakeapi.Text("yes, here now"))
	w.start()
	defer w.stop()
	deadline := time.Now().Add(2 * time.Minute)
	for done, why := w.allAnswered(); !done; done, why = w.allAnswered() {
		if time.Now().After(deadline) {
			t.Fatalf("the kept message was not answered after the restart with a credential: %s\n%s", why, w.fake.Summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mains := w.fake.MainRequests(); len(mains) != 1 || !strings.Contains(mains[0].LastUserText(), "hello, anyone there?") {
		t.Errorf("the run after the restart did not get the kept message:\n%s", w.fake.Summary())
	}
}

// makeRun is a running `make run`, in its own process group.
type makeRun struct {
	cmd   *exec.Cmd
	out   *testenv.Buffer
	start time.Time
	done  chan struct{}
}

func startMakeRun(t *testing.T, env []string) *makeRun {
	t.Helper()
	m := &makeRun{out: &testenv.Buffer{}, start: time.Now(), done: make(chan struct{})}
	m.cmd = exec.Command("make", "--no-print-directory", "-C", repoRoot(t), "run")
	m.cmd.Env = env
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // make and the daemon stop together
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() { syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL); <-m.done })
	return m
}

// running waits until the daemon says it runs and returns how long that took.
func (m *makeRun) running(t *testing.T) time.Duration {
	t.Helper()
	deadline := time.After(10 * time.Minute) // a cold build of the image takes minutes
	for !strings.Contains(m.out.String(), `"msg":"nanoclaw running"`) {
		select {
		case <-m.done:
			t.Fatalf("make run ended before the daemon ran (exit %d):\n%s", m.cmd.ProcessState.ExitCode(), m.out.String())
		case <-deadline:
			t.Fatalf("the daemon did not run within 10 minutes:\n%s", m.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Since(m.start)
}

func (m *makeRun) stop(t *testing.T) {
	t.Helper()
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop on SIGTERM:\n%s", m.out.String())
	}
}

// `make run` from no data home and no image reaches a daemon that answers
// the local chat, without a credential, with the line that says how to add
// one; the second `make run` goes straight to the daemon.
func TestMakeRunFromNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nanoclaw with make and the agent image (-short)")
	}
	bin := testenv.Runtime(t, "podman")
	testenv.Image(t, bin, testenv.AgentImage) // its layers make this build a cached one
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Missing(t, "make is not installed")
	}
	fresh := t.TempDir()
	tag := freshTag(t, bin, "makerun")
	env := cleanEnv("NANOCLAW_HOME="+filepath.Join(fresh, "data"), "NANOCLAW_CONFIG_DIR="+filepath.Join(fresh, "config"),
		"NANOCLAW_IMAGE="+tag, "NANOCLAW_RUNTIME=podman")

	first := startMakeRun(t, env)
	took := first.running(t)
	if out := first.out.String(); !strings.Contains(out, "nanoclaw image build: building "+tag) {
		t.Errorf("the first make run did not build the image:\n%s", out)
	}
	t.Logf("first make run: the daemon ran after %s (build, image, start)", took.Round(100*time.Millisecond))
	checkNoCredentialReply(t, env)
	first.stop(t)

	second := startMakeRun(t, env)
	took = second.running(t)
	if out := second.out.String(); strings.Contains(out, "nanoclaw image build") || strings.Contains(out, "runtime:") {
		t.Errorf("the second make run did set-up work:\n%s", out)
	}
	t.Logf("second make run: the daemon ran after %s", took.Round(100*time.Millisecond))
	second.stop(t)
}
