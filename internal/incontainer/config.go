package incontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/incontainer/mcpserver"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// EnvSocket is the environment variable through which the MCP server
// (nanoclaw-agent mcp, started by Claude Code) learns the gateway socket.
const EnvSocket = "NANOCLAW_SOCKET"

// Defaults of a run.
const (
	DefaultIdle = 30 * time.Minute
	// DefaultStopGrace is how long Claude Code may take to finish after its
	// input is closed (it completes the turn it is in).
	DefaultStopGrace = 15 * time.Second
	// DefaultPath is Claude Code's PATH: the image's programs only.
	DefaultPath = "/usr/local/bin:/usr/bin:/bin"
	// MaxResultBytes caps one turn's result text sent to the host, so the
	// Output stays within ipc.MaxOutputBytes even when JSON escaping takes
	// six bytes for each byte of the text.
	MaxResultBytes = ipc.MaxOutputBytes / 8
)

// Config is one run. DefaultConfig fills in the container's paths; the
// path fields exist so the run can be tested and debugged on a host
// (nanoclaw-agent run's --workdir, --global-dir, --home, --claude-dir,
// --tmp and --listen).
type Config struct {
	Socket    string        // the gateway socket
	Claude    string        // the Claude Code program
	SessionID string        // resume this session ("" for a new one)
	Model     string        // Claude Code's --model ("" for its own default)
	Main      bool          // the main group (may edit global memory)
	Browser   bool          // the group runs on the browser image: agent-browser's environment (BrowserEnv)
	Idle      time.Duration // end after this long without input
	StopGrace time.Duration // see DefaultStopGrace

	Listen string // the forwarder's loopback address, e.g. 127.0.0.1:3128
	// The browser's forwarder (Browser only): its loopback address and the
	// socket it pipes to, which serves web traffic to public addresses
	// only (ipc.BrowserProxyPort).
	BrowserListen string
	BrowserSocket string
	WorkDir       string // Claude Code's working directory (the group folder)
	GlobalDir     string // global memory's folder
	Home          string // HOME
	ClaudeDir     string // CLAUDE_CONFIG_DIR: Claude Code's state, kept by the host
	TempDir       string // where the MCP config file is written
	Path          string // PATH for Claude Code
	TZ            string // TZ for Claude Code ("" leaves it unset)
	Self          string // this program, started by Claude Code as the MCP server

	// Subreaper makes Run a child subreaper that kills, after every turn
	// and at its end, whatever a turn left running detached (reaper.go).
	// It claims every child of this process but Claude Code, so only a
	// process that is the container's agent sets it: DefaultConfig does;
	// tests that call Run inside a test binary turn it off.
	Subreaper bool

	Logger *slog.Logger
}

// DefaultConfig is a run inside the container.
func DefaultConfig() Config {
	return Config{
		Socket:        ipc.ContainerSocket,
		Claude:        "claude",
		Idle:          DefaultIdle,
		StopGrace:     DefaultStopGrace,
		Listen:        net.JoinHostPort("127.0.0.1", strconv.Itoa(ipc.ProxyPort)),
		BrowserListen: net.JoinHostPort("127.0.0.1", strconv.Itoa(ipc.BrowserProxyPort)),
		BrowserSocket: ipc.ContainerBrowserSocket,
		WorkDir:       ipc.ContainerGroupDir,
		GlobalDir:     ipc.ContainerGlobalDir,
		Home:          ipc.ContainerHome,
		ClaudeDir:     ipc.ContainerClaudeDir,
		TempDir:       "/tmp",
		Path:          DefaultPath,
		Self:          ipc.ContainerAgentBinary,
		Subreaper:     true,
	}
}

// Validate checks a Config before anything starts.
func (c Config) Validate() error {
	if c.SessionID != "" && !ipc.ValidSessionID(c.SessionID) {
		return fmt.Errorf("session %q: not a session id (letters, digits, '-' or '_', not starting with '-')", c.SessionID)
	}
	if c.Model != "" {
		if err := ipc.ValidateModel(c.Model); err != nil {
			return err
		}
	}
	if c.Idle <= 0 {
		return fmt.Errorf("idle timeout %v: must be positive", c.Idle)
	}
	if c.StopGrace <= 0 {
		return fmt.Errorf("stop grace %v: must be positive", c.StopGrace)
	}
	listens := map[string]string{"listen": c.Listen}
	paths := map[string]string{"socket": c.Socket, "workdir": c.WorkDir, "global dir": c.GlobalDir,
		"home": c.Home, "claude dir": c.ClaudeDir, "temp dir": c.TempDir, "agent binary": c.Self}
	if c.Browser {
		listens["browser listen"], paths["browser socket"] = c.BrowserListen, c.BrowserSocket
	}
	for name, addr := range listens {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("%s address %q: %w", name, addr, err)
		}
		// finding 2: the forwarder hands out the gateway; it must never be
		// reachable from anything but this container's loopback.
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%s address %q: must be a loopback IP", name, addr)
		}
	}
	for name, p := range paths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%s %q: must be an absolute path", name, p)
		}
	}
	if c.Claude == "" || c.Path == "" {
		return errors.New("claude program and PATH must be set")
	}
	return nil
}

// writeMCPConfig writes Claude Code's --mcp-config: the nanoclaw server is
// this program's `mcp` command, told the socket through its environment.
func writeMCPConfig(path, self, socket string) error {
	b, err := json.MarshalIndent(map[string]any{"mcpServers": map[string]any{mcpserver.ServerName: map[string]any{
		"type": "stdio", "command": self, "args": []string{"mcp"}, "env": map[string]string{EnvSocket: socket}}}}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("mcp config: %w", err)
	}
	return nil
}

// lookPath finds name in the directories of path (Claude Code's PATH, not
// whatever this process inherited), unless name is a path already.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("claude code: %q not found in %s", name, path)
}
