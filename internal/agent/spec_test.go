package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// The group's model, else the host's MODEL, reaches nanoclaw-agent run's
// --model; with neither, Claude Code keeps its own default.
func TestSpecPassesTheModel(t *testing.T) {
	for _, c := range []struct{ group, host, want string }{
		{"claude-opus-4-1", "claude-sonnet-4-5", "claude-opus-4-1"},
		{"", "claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"", "", ""},
	} {
		s := &Container{r: &Runner{opt: Options{Model: c.host, AgentBinary: "/opt/nanoclaw-agent"}},
			group: store.Group{Folder: "family", Config: store.ContainerConfig{Model: c.group}}}
		cmd := s.spec(groupPaths{}, 1000, "").Cmd
		if cmd[0] != ipc.ContainerAgentBinary || cmd[1] != "run" {
			t.Fatalf("cmd %q is not nanoclaw-agent run", cmd)
		}
		i := slices.Index(cmd, "--model")
		switch {
		case c.want == "" && i >= 0:
			t.Errorf("group %q, host %q: cmd %q passes a model", c.group, c.host, cmd)
		case c.want != "" && (i < 0 || i+1 >= len(cmd) || cmd[i+1] != c.want):
			t.Errorf("group %q, host %q: cmd %q, want --model %s", c.group, c.host, strings.Join(cmd, " "), c.want)
		}
	}
}

// A group with the browser runs on the browser image, with /dev/shm sized
// for Chromium (within its memory) and `--browser`; the others on the
// agent image, with the runtime's /dev/shm and no browser environment.
func TestSpecBrowser(t *testing.T) {
	r := &Runner{opt: Options{Image: "localhost/a:1", BrowserImage: "localhost/b:1", MemoryMB: 2048, AgentBinary: "/opt/nanoclaw-agent"}}
	for _, c := range []struct {
		browser  bool
		memoryMB int
		image    string
		shm      int
	}{
		{false, 0, "localhost/a:1", 0},
		{true, 0, "localhost/b:1", browserShmMB},
		{true, 256, "localhost/b:1", 128},
	} {
		s := &Container{r: r, group: store.Group{Folder: "family", Config: store.ContainerConfig{Browser: c.browser, MemoryMB: c.memoryMB}}}
		spec := s.spec(groupPaths{}, 1000, "")
		if spec.Image != c.image || spec.ShmMB != c.shm || slices.Contains(spec.Cmd, "--browser") != c.browser {
			t.Errorf("browser %v, memory %d: image %s, /dev/shm %d MB, command %q", c.browser, c.memoryMB, spec.Image, spec.ShmMB, spec.Cmd)
		}
	}
}
