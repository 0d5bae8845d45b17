package doctor

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
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
			configDir := filepath.Join(t.TempDir(), "config")
			key := "sk-ant-api03-DOCTORTEST-" + strings.Repeat("k", 40)
			cfg, err := config.Load(func(k string) string {
				return map[string]string{
					"NANOCLAW_HOME":         home,
					"NANOCLAW_CONFIG_DIR":   configDir,
					"NANOCLAW_RUNTIME":      rtName,
					"NANOCLAW_IMAGE":        testenv.AgentImage,
					"NANOCLAW_AGENT_BINARY": testenv.AgentBinary(t),
					"ANTHROPIC_API_KEY":     key,
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

			log := slog.New(slog.NewTextHandler(t.Output(), nil))
			checks := Sandbox(context.Background(), cfg, log)
			if want := len(selftest.Findings) + len(agent.HostFindings); len(checks) != want {
				t.Errorf("%d checks, want %d: %+v", len(checks), want, checks)
			}
			inside, host := 0, 0
			for _, c := range checks {
				if !c.OK || c.Fix != "" {
					t.Errorf("check %+v, want it passed", c)
				}
				switch {
				case strings.HasPrefix(c.Name, "sandbox (inside): "):
					inside++
				case strings.HasPrefix(c.Name, "sandbox (host): "):
					host++
				}
			}
			if inside != len(selftest.Findings) || host != len(agent.HostFindings) {
				t.Errorf("%d checks named as the probe's and %d as the host's, want %d and %d", inside, host, len(selftest.Findings), len(agent.HostFindings))
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

			// C: the key in a group's folder of the owner's data home and in
			// a root the allowlist grants, which no probe container mounts:
			// the host finds both and says where.
			family := filepath.Join(home, "groups", "family")
			projects := t.TempDir()
			for file, data := range map[string]string{
				filepath.Join(family, "notes.md"):                "key " + key,
				filepath.Join(projects, "app", ".env"):           "ANTHROPIC_API_KEY=" + key,
				filepath.Join(configDir, "mount-allowlist.json"): `{"allowedRoots":[{"path":"` + projects + `"}]}`,
			} {
				if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			byName := map[string]Check{}
			for _, c := range Sandbox(context.Background(), cfg, log) {
				byName[c.Name] = c
			}
			src := byName["sandbox (host): "+agent.FindingSources]
			for _, want := range []string{filepath.Join(family, "notes.md"), filepath.Join(projects, "app", ".env"), projects + " (1 files"} {
				if src.OK || src.Fix == "" || !strings.Contains(src.Detail, want) || strings.Contains(src.Detail, key) {
					t.Errorf("host scan: %+v, want a failure naming %s, never the key", src, want)
				}
			}
			if c := byName["sandbox (inside): "+selftest.FindingFiles]; !c.OK {
				t.Errorf("the probe saw the owner's trees: %+v", c)
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

// D: what a SIGKILLed self-test left in the temporary directory goes at
// the next self-test — only its own: stale, a directory of this user's,
// named as the self-test names them; never through a link.
func TestSweepScratch(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	target := t.TempDir() // what a planted link points at
	if err := os.WriteFile(filepath.Join(target, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mk := func(name string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(p, "groups", "selftest"), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := mk(scratchPrefix + "123")
	fresh := mk(scratchPrefix + "456")
	other := mk("nanoclaw-selftest-x1")
	someoneElses := mk(scratchPrefix + "789")
	link := filepath.Join(dir, scratchPrefix+"999")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, other, someoneElses, link} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(link, os.Geteuid(), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	chowned := os.Geteuid() == 0 && os.Chown(someoneElses, 65534, 65534) == nil
	sweepScratch(dir, time.Now(), slog.New(slog.DiscardHandler))
	if _, err := os.Lstat(stale); err == nil {
		t.Error("a stale scratch home was kept")
	}
	for _, p := range []string{fresh, other, link, filepath.Join(target, "keep")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(someoneElses); chowned && err != nil {
		t.Error("another user's directory was removed")
	}
}
