package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// The machine prepared by scripts/test-env runs a hardened container, as a
// non-root user without network, on every runtime the end-to-end tests use.
func TestRuntimesRunHardenedContainers(t *testing.T) {
	for _, name := range []string{"podman", "docker"} {
		t.Run(name, func(t *testing.T) {
			bin := Runtime(t, name)
			out, err := exec.Command(bin, "run", "--rm", "--network", "none", "--user", "1000:1000",
				"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
				"--pids-limit", "64", "--memory", "256m", BaseImage,
				"cat", "/proc/self/status").CombinedOutput()
			if err != nil {
				t.Fatalf("%s run: %v\n%s", name, err, out)
			}
			status := string(out)
			for _, want := range []string{"Uid:\t1000\t1000\t1000\t1000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
				if !strings.Contains(status, want) {
					t.Errorf("%s: container status lacks %q:\n%s", name, want, status)
				}
			}
		})
	}
}

func TestClaudeBinaryRuns(t *testing.T) {
	out, err := exec.Command(ClaudeBinary(t), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Claude Code") {
		t.Fatalf("claude --version: %v: %s", err, out)
	}
}
