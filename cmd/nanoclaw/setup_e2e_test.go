package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// setup --yes from an empty home, with a credential file, checks the key
// with the upstream before saving it (never printing it), writes a
// verified service file (or installs it where systemd runs), and proves
// the assistant answers. Run again, every step is done.
func TestSetupFromAnEmptyHome(t *testing.T) {
	bin := testenv.Runtime(t, "podman")
	testenv.Image(t, bin, testenv.AgentImage)
	fake := fakeapi.New()
	defer fake.Close()
	const key = "sk-ant-setup-test-key"
	fake.RequireCredential(key)
	env, home := homeEnv(t)
	env = slices.Concat(env, []string{"NANOCLAW_IMAGE=" + testenv.AgentImage,
		"NANOCLAW_AGENT_BINARY=" + testenv.AgentBinary(t), "ANTHROPIC_BASE_URL=" + fake.URL()})
	run := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append([]string{"setup"}, args...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("sk-ant-wrong\n"), 0o600)
	code, out := run("--yes", "--runtime", "podman", "--credential-file", bad, "--skip-whatsapp")
	if code != 1 || !strings.Contains(out, "✗ 2. credential: not saved") || strings.Contains(out, "sk-ant-wrong") {
		t.Fatalf("a refused key: exit %d\n%s", code, out)
	}
	configFile := filepath.Join(home, ".config", "nanoclaw", "config")
	if data, _ := os.ReadFile(configFile); strings.Contains(string(data), "sk-ant-wrong") {
		t.Fatal("a refused key was saved")
	}

	good := filepath.Join(t.TempDir(), "good")
	os.WriteFile(good, []byte(key+"\n"), 0o600)
	fake.Script(fakeapi.Text("Hello, I am here."))
	code, out = run("--yes", "--runtime", "podman", "--credential-file", good, "--skip-whatsapp")
	if code != 0 {
		t.Fatalf("setup: exit %d\n%s", code, out)
	}
	t.Logf("setup:\n%s", out)
	for _, want := range []string{"✓ 1. machine: podman", "✓ 2. credential: accepted", "– 3. encryption at rest", "✓ 4. agent image",
		"– 5. WhatsApp", "6. background service", "✓ 7. proof: reply received: Andy: Hello, I am here."} {
		if !strings.Contains(out, want) {
			t.Errorf("setup output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil && !strings.Contains(out, "– 6. background service: NOT INSTALLED") {
		t.Errorf("without systemd the service step says loudly it did not install:\n%s", out)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil && !strings.Contains(out, "verifies (systemd-analyze verify)") && !strings.Contains(out, "✓ 6.") {
		t.Errorf("the unit file was not verified:\n%s", out)
	}
	if strings.Contains(out, key) {
		t.Error("setup printed the credential")
	}
	info, err := os.Stat(configFile)
	data, _ := os.ReadFile(configFile)
	if err != nil || info.Mode().Perm() != 0o600 || !strings.Contains(string(data), "ANTHROPIC_API_KEY="+key) || !strings.Contains(string(data), "NANOCLAW_RUNTIME=podman") {
		t.Errorf("config file (%v, %v):\n%s", info, err, data)
	}

	code, out = run("--yes", "--skip-whatsapp")
	if code != 0 || !strings.Contains(out, "✓ 2. credential: set, and accepted") || !strings.Contains(out, "✓ 4. agent image: "+testenv.AgentImage+", current") {
		t.Errorf("setup again: exit %d\n%s", code, out)
	}
}
