package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/doctor"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// doctorRun runs `nanoclaw doctor` with env and returns its exit code and
// stdout.
func doctorRun(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"doctor"}, args...)...)
	cmd.Env = env
	out, _ := cmd.Output()
	return cmd.ProcessState.ExitCode(), string(out)
}

// doctor passes on a working installation with the daemon running, and
// each broken state fails its own check with its own fix, exit 1.
func TestDoctorNamesTheFixOfEachBrokenState(t *testing.T) {
	bin := testenv.Runtime(t, "podman")
	testenv.Image(t, bin, testenv.AgentImage)
	fake := fakeapi.New()
	defer fake.Close()
	fake.RequireCredential("sk-ant-good")
	env, home := homeEnv(t)
	env = slices.Concat(env, []string{"NANOCLAW_RUNTIME=podman", "NANOCLAW_IMAGE=" + testenv.AgentImage,
		"NANOCLAW_BROWSER_IMAGE=" + testenv.BrowserImage,
		"NANOCLAW_AGENT_BINARY=" + testenv.AgentBinary(t), "ANTHROPIC_BASE_URL=" + fake.URL()})
	good := slices.Concat(env, []string{"ANTHROPIC_API_KEY=sk-ant-good"})
	d := startDaemon(t, good)
	d.waitLog(t, "nanoclaw running")

	code, out := doctorRun(t, good)
	if code != 0 || strings.Contains(out, "✗") || !strings.Contains(out, "checks passed") {
		t.Fatalf("doctor on a working installation: exit %d\n%s", code, out)
	}
	code, out = doctorRun(t, good, "--json")
	var checks []doctor.Check
	if err := json.Unmarshal([]byte(out), &checks); err != nil || code != 0 || len(checks) < 9 {
		t.Fatalf("doctor --json: exit %d, %v\n%s", code, err, out)
	}

	dataHome := filepath.Join(home, ".nanoclaw")
	for _, tc := range []struct {
		name, check, fix string
		env              []string
		before, after    func()
	}{
		{name: "no image", check: "agent image", fix: "nanoclaw image build",
			env: slices.Concat(good, []string{"NANOCLAW_IMAGE=localhost/nanoclaw-no-such-image:none"})},
		{name: "stale image", check: "agent image", fix: "nanoclaw image build",
			env: slices.Concat(good, []string{"NANOCLAW_IMAGE=" + testenv.BaseImage})},
		// The plain image under the browser image's name: no group has a
		// browser, but a group given one would run without it.
		{name: "browser image of the other variant", check: "browser image", fix: "nanoclaw image build --browser",
			env: slices.Concat(good, []string{"NANOCLAW_BROWSER_IMAGE=" + testenv.AgentImage})},
		{name: "bad key", check: "credential", fix: "replace the credential",
			env: slices.Concat(env, []string{"ANTHROPIC_API_KEY=sk-ant-bad"})},
		{name: "no key", check: "credential", fix: "nanoclaw setup", env: env},
		{name: "wrong permissions", check: "data home", fix: "chmod 700 " + dataHome, env: good,
			before: func() { os.Chmod(dataHome, 0o755) }, after: func() { os.Chmod(dataHome, 0o700) }},
		{name: "runtime down", check: "container runtime", fix: "make docker work",
			env: slices.Concat(good, []string{"NANOCLAW_RUNTIME=docker", "DOCKER_HOST=unix:///nonexistent/docker.sock"})},
		{name: "daemon down", check: "daemon", fix: "nanoclaw service start", env: good,
			before: func() { d.cmd.Process.Kill(); d.wait(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			if tc.after != nil {
				defer tc.after()
			}
			code, out := doctorRun(t, tc.env)
			want := "✗ " + tc.check + ":"
			if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "fix: ") || !strings.Contains(out[strings.Index(out, want):], tc.fix) {
				t.Errorf("exit %d; want 1 with %q and a fix naming %q:\n%s", code, want, tc.fix, out)
			}
			if n := strings.Count(out, "✗ "); tc.name != "runtime down" && n != 1 {
				t.Errorf("%d checks failed; want only %q:\n%s", n, tc.check, out)
			}
		})
	}
}
