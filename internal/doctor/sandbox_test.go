package doctor

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// TestSandboxE2E is `doctor --sandbox` on podman and docker: every check
// passes, one per finding, and a container of a daemon that happens to
// share the self-test's name prefix (another instance label) is left alone.
func TestSandboxE2E(t *testing.T) {
	for _, rtName := range []string{"podman", "docker"} {
		t.Run(rtName, func(t *testing.T) {
			bin := testenv.Runtime(t, rtName)
			testenv.Image(t, bin, testenv.AgentImage)
			home := t.TempDir()
			cfg, err := config.Load(func(k string) string {
				return map[string]string{
					"NANOCLAW_HOME":         home,
					"NANOCLAW_CONFIG_DIR":   filepath.Join(t.TempDir(), "config"),
					"NANOCLAW_RUNTIME":      rtName,
					"NANOCLAW_IMAGE":        testenv.AgentImage,
					"NANOCLAW_AGENT_BINARY": testenv.AgentBinary(t),
					"ANTHROPIC_API_KEY":     "sk-ant-api03-DOCTORTEST-" + strings.Repeat("k", 40),
				}[k]
			})
			if err != nil {
				t.Fatal(err)
			}

			// A daemon's container, by its label, with a name the self-test's
			// clean-up prefix matches.
			daemonsName := "nanoclaw-" + SelfTestFolder + "-1"
			out, err := exec.Command(bin, "run", "-d", "--rm", "--name", daemonsName, "--network", "none",
				"--label", "nanoclaw.instance=daemon"+strings.Repeat("0", 12), testenv.BaseImage, "sleep", "120").CombinedOutput()
			if err != nil {
				t.Fatalf("start a daemon's container: %v: %s", err, out)
			}
			t.Cleanup(func() { exec.Command(bin, "rm", "--force", daemonsName).Run() })

			checks := Sandbox(context.Background(), cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
			if len(checks) < 10 {
				t.Errorf("only %d checks: %+v", len(checks), checks)
			}
			for _, c := range checks {
				if !c.OK || c.Fix != "" || !strings.HasPrefix(c.Name, "sandbox: ") {
					t.Errorf("check %+v, want it passed", c)
				}
			}
			rt := &sandbox.Runtime{Kind: sandbox.Kind(rtName), Bin: bin}
			names, err := rt.List(context.Background(), "nanoclaw-"+SelfTestFolder+"-")
			if err != nil || len(names) != 1 || names[0] != daemonsName {
				t.Errorf("containers after the self-test: %v, %v; want only the daemon's %s", names, err, daemonsName)
			}
			// Nothing of the self-test is left in the owner's data home.
			if entries, _ := os.ReadDir(home); len(entries) > 0 {
				t.Errorf("the self-test wrote into the data home: %v", entries)
			}
		})
	}
}

// Without a working runtime the self-test says so in one check with a fix.
func TestSandboxWithoutRuntime(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	cfg := &config.Config{Runtime: sandbox.Podman}
	checks := Sandbox(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if len(checks) != 1 || checks[0].OK || checks[0].Fix == "" || !strings.Contains(checks[0].Detail, "podman") {
		t.Errorf("checks = %+v, want one failed check naming podman, with a fix", checks)
	}
}
