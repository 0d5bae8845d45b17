package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// TestAgentBinaryDirNeverMounted (R7): the owner keeps nanoclaw-agent under
// a read-write allowed root; a non-main group asking for that directory,
// or for the root itself, gets neither, so it cannot replace the program
// every later container runs. A neighbouring directory is mounted.
func TestAgentBinaryDirNeverMounted(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		root, _ := filepath.EvalSymlinks(t.TempDir())
		os.Chmod(root, 0o755)
		agentBin := filepath.Join(root, "tools", "nanoclaw-agent")
		data, err := os.ReadFile(testenv.AgentBinary(t))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, agentBin, string(data), 0o755)
		os.Chmod(filepath.Dir(agentBin), 0o755)
		writeFile(t, filepath.Join(root, "work", "w.txt"), "WORK-CONTENT\n", 0o644)
		os.Chmod(filepath.Join(root, "work"), 0o755)
		allowlist := filepath.Join(t.TempDir(), "mount-allowlist.json")
		writeFile(t, allowlist, `{"allowedRoots": [{"path": "`+root+`", "allowReadWrite": true}], "nonMainReadOnly": false}`, 0o600)

		logs := &testenv.Buffer{}
		h := newHarness(t, rtName, func(o *Options) {
			o.AgentBinary = agentBin
			o.AllowlistPath = allowlist
			o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		g := h.group("binary", false, store.ContainerConfig{AdditionalMounts: []store.Mount{
			{HostPath: filepath.Join(root, "tools"), ContainerPath: "tools"}, // the agent binary's directory
			{HostPath: root, ContainerPath: "all"},                           // contains it
			{HostPath: filepath.Join(root, "work"), ContainerPath: "work"},   // the control
		}})
		s := h.start(g, StartOptions{})
		out := h.bash(s, `ls /workspace/extra; cat /workspace/extra/work/w.txt; echo END-OF-CHECK`)
		if !strings.Contains(out, "END-OF-CHECK") || !strings.Contains(out, "WORK-CONTENT") {
			t.Fatalf("the control mount is missing:\n%s", out)
		}
		for _, bad := range []string{"tools", "all"} {
			if strings.Contains(out, bad) {
				t.Errorf("%q is mounted:\n%s", bad, out)
			}
		}
		if n := strings.Count(logs.String(), "overlaps nanoclaw's own"); n != 2 {
			t.Errorf("%d mounts logged as overlapping nanoclaw's own, want 2:\n%s", n, logs.String())
		}
	})
}
