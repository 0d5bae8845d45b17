package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// BaseImage is the Debian base image scripts/test-env builds offline and
// imports into every runtime under this one name.
const BaseImage = "localhost/debian:bookworm-slim"

// AgentImage is the agent image scripts/test-env builds from BaseImage with
// agentimage/Dockerfile, in every runtime under this one name.
const AgentImage = "localhost/nanoclaw-agent:test"

// BrowserImage is the browser variant of AgentImage (Chromium and
// agent-browser; `nanoclaw image build --browser`), which scripts/test-env
// builds beside it, in every runtime under this one name.
const BrowserImage = "localhost/nanoclaw-agent-browser:test"

// CacheDir is where scripts/test-env keeps what it downloads or builds.
const CacheDir = "/var/cache/nanoclaw-test"

// Required reports whether missing end-to-end prerequisites are failures
// (NANOCLAW_E2E=required, as in CI) rather than skips.
func Required() bool { return os.Getenv("NANOCLAW_E2E") == "required" }

// Missing ends the test because what is missing: a failure when end-to-end
// tests are required, otherwise a skip with one loud line.
func Missing(t testing.TB, what string) {
	t.Helper()
	if Required() {
		t.Fatalf("NANOCLAW_E2E=required, but %s (run `make test` as root on Debian 12 to install it)", what)
	}
	msg := fmt.Sprintf("E2E SKIPPED: %s (run `make test` as root on Debian 12 to install it)", what)
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

var (
	probeMu sync.Mutex
	probed  = map[string]error{}
)

// Runtime returns the path of a working container CLI ("podman" or
// "docker") that has BaseImage, or ends the test through Missing.
func Runtime(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed")
		return ""
	}
	probeMu.Lock()
	err, done := probed[name]
	if !done {
		err = probe(path)
		probed[name] = err
	}
	probeMu.Unlock()
	if err != nil {
		Missing(t, err.Error())
	}
	return path
}

func probe(path string) error {
	name := filepath.Base(path)
	if out, err := exec.Command(path, "info").CombinedOutput(); err != nil {
		return fmt.Errorf("%s is installed but not working (`%s info`: %v: %.200s)", name, name, err, out)
	}
	if err := exec.Command(path, "image", "inspect", BaseImage).Run(); err != nil {
		return fmt.Errorf("%s has no image %s", name, BaseImage)
	}
	return nil
}

// ClaudeBinary returns the path of the real Claude Code binary
// ($NANOCLAW_TEST_CLAUDE, or the one scripts/test-env installed), resolved
// through symlinks so it can be bind-mounted, or ends the test through Missing.
func ClaudeBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("NANOCLAW_TEST_CLAUDE")
	if path == "" {
		path = filepath.Join(CacheDir, "claude")
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		Missing(t, "the Claude Code binary is not at "+path)
		return ""
	}
	return real
}

// Image ends the test through Missing unless the runtime at bin has ref.
func Image(t testing.TB, bin, ref string) {
	t.Helper()
	if err := exec.Command(bin, "image", "inspect", ref).Run(); err != nil {
		Missing(t, fmt.Sprintf("%s has no image %s", filepath.Base(bin), ref))
	}
}

// AgentBinary builds nanoclaw-agent (static, as it ships) once per test
// binary and returns its path.
func AgentBinary(t testing.TB) string {
	t.Helper()
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nanoclaw-agent-")
		if err != nil {
			agentErr = err
			return
		}
		agentPath = filepath.Join(dir, "nanoclaw-agent")
		cmd := exec.Command("go", "build", "-trimpath", "-o", agentPath, "github.com/nanoclaw/nanoclaw/cmd/nanoclaw-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("build nanoclaw-agent: %v\n%s", err, out)
			return
		}
		// The container user must be able to read and run it, whatever
		// umask the test process has (PrepareHome makes it 077).
		agentErr = errors.Join(os.Chmod(dir, 0o755), os.Chmod(agentPath, 0o755))
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentPath
}

var (
	agentOnce sync.Once
	agentPath string
	agentErr  error
)

// TestContainerID is the uid and gid that tests run ad-hoc containers as
// when they run as root: like a group's own id, it is no account of the
// host (see agent.FirstContainerID; this one sits just below that range).
const TestContainerID = 0x70000100

// ContainerUser is the --user of an ad-hoc test container: the test's own
// uid:gid, or TestContainerID when the test runs as root.
func ContainerUser() string {
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		return fmt.Sprintf("%d:%d", TestContainerID, TestContainerID)
	}
	return fmt.Sprintf("%d:%d", uid, gid)
}
