package incontainer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// AllowedTools is what Claude Code may use without asking: its own file,
// shell and web tools, ToolSearch (MCP tools are deferred: the model loads
// their schemas through it), and every tool of the nanoclaw MCP server. With
// --dangerously-skip-permissions nothing would ask anyway; the list keeps
// the set explicit should the permission mode ever change.
var AllowedTools = []string{
	"Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebSearch", "WebFetch",
	"ToolSearch", "mcp__nanoclaw__*",
}

// DisallowedTools are Claude Code's own schedulers and remote triggers: they
// live inside one process and die with the container, and would compete with
// the host's schedule_task, which survives restarts and is authorized by the
// group's socket.
var DisallowedTools = []string{"CronCreate", "CronDelete", "CronList", "ScheduleWakeup", "RemoteTrigger"}

// ClaudeArgs is Claude Code's argument vector (without the program name).
// Values that come from outside (session id, model, memory text, file name)
// are attached with "=" so none can be read as a flag of its own.
func ClaudeArgs(sessionID, model, mcpConfig, memoryFile string) []string {
	args := []string{
		"-p",
		"--input-format", "stream-json",
		"--output-format", "stream-json",
		"--verbose", // stream-json output requires it with -p
		// Claude Code refuses this as root; the container never runs as
		// root, and the container is the boundary (finding 1: it holds no
		// credential; finding 2: it has no network but the gateway).
		"--dangerously-skip-permissions",
		// Render the system prompt afresh on every request: by default a
		// resumed session reuses the prompt recorded on its first request,
		// which would freeze global memory at that day's text (checked with
		// the real binary: an --append-system-prompt passed on --resume is
		// ignored unless this is off).
		"--system-prompt-snapshot", "off",
		// Only our MCP server: never one from a .mcp.json the agent wrote.
		"--strict-mcp-config",
		"--mcp-config=" + mcpConfig,
		"--allowedTools=" + strings.Join(AllowedTools, ","),
		"--disallowedTools=" + strings.Join(DisallowedTools, ","),
		// The PreCompact hook archives the transcript before a compaction
		// (archive.go); passed per run, so nothing is written into the
		// image or the group's state for it.
		"--settings=" + HookSettings,
	}
	if sessionID != "" {
		args = append(args, "--resume="+sessionID)
	}
	if model != "" {
		// The group's model (or the host's MODEL); without it Claude Code
		// picks its own default.
		args = append(args, "--model="+model)
	}
	if memoryFile != "" {
		// A file on the container's private scratch space, not the text
		// itself: a process's arguments are readable by every user of the
		// host in /proc/<pid>/cmdline, and global memory is private.
		args = append(args, "--append-system-prompt-file="+memoryFile)
	}
	return args
}

// ClaudeEnv is Claude Code's whole environment: nothing is inherited. proxy
// is the forwarder's address (127.0.0.1:port), browserProxy the browser's
// (used when cfg.Browser).
func ClaudeEnv(cfg Config, proxy, browserProxy string) []string {
	url := "http://" + proxy
	env := []string{
		"PATH=" + cfg.Path,
		"HOME=" + cfg.Home,
		// Session transcripts and .claude.json go here, the one directory
		// the host keeps between containers, so --resume works next time.
		"CLAUDE_CONFIG_DIR=" + cfg.ClaudeDir,
		"LANG=C.UTF-8",
		"ANTHROPIC_BASE_URL=" + url,
		// finding 1: the only credential in the container is a placeholder;
		// the gateway replaces it with the real one.
		"ANTHROPIC_API_KEY=" + ipc.PlaceholderAPIKey,
		// Everything else leaves through the gateway's egress proxy
		// (finding 2), including what Claude Code's tools start.
		"HTTPS_PROXY=" + url, "HTTP_PROXY=" + url,
		"https_proxy=" + url, "http_proxy=" + url,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_AUTOUPDATER=1",
		// Where the PreCompact hook writes its archive.
		EnvGroupDir + "=" + cfg.WorkDir,
	}
	if cfg.TZ != "" {
		env = append(env, "TZ="+cfg.TZ)
	}
	if cfg.Browser {
		env = append(env, BrowserEnv(browserProxy)...)
	}
	return env
}

// ChromiumPath is Debian's Chromium in the browser image.
const ChromiumPath = "/usr/bin/chromium"

// ChromiumArgs are the flags agent-browser adds to every Chromium it
// launches (AGENT_BROWSER_ARGS, one a line).
var ChromiumArgs = []string{
	// Chromium's own sandbox needs user namespaces or a setuid helper; with
	// no capabilities and no-new-privileges it cannot start. The container
	// is the sandbox (SECURITY.md, known limits).
	"--no-sandbox",
	// Field trials, safe-browsing lists, promotions: requests nobody asked
	// for, each one a refusal or an egress question for the owner.
	"--disable-background-networking",
	// Component updates would download code at run time (and be refused).
	"--disable-component-update",
	// No Google account, so nothing to sync; the sync service still calls out.
	"--disable-sync",
	// The first-run dialog and its requests, in a profile that is always new
	// (under /tmp, the container's tmpfs).
	"--no-first-run",
	// Crash reports would go to Google; a crash shows in the run's log.
	"--disable-breakpad",
	// QUIC is UDP, which cannot leave the container (--network none) nor go
	// through an HTTP proxy: without this Chromium tries it first for some
	// hosts and only then falls back.
	"--disable-quic",
}

// BrowserEnv is agent-browser's environment, for groups on the browser
// image. proxy is the browser's forwarder's address.
func BrowserEnv(proxy string) []string {
	return []string{
		// The image's Chromium: agent-browser would otherwise look for (and
		// offer to download) its own.
		"AGENT_BROWSER_EXECUTABLE_PATH=" + ChromiumPath,
		// finding 2: the browser's traffic goes through the gateway's egress
		// policy like curl's; the proxy resolves names, so DNS does too. It
		// is the browser's own forwarder, to the browser's socket: any page
		// can send requests through it, so it reaches public addresses only
		// and never the gateway itself (gateway.browserProxy).
		"AGENT_BROWSER_PROXY=http://" + proxy,
		// Without this agent-browser takes NO_PROXY (127.0.0.1,localhost) and
		// a page's scripts could reach loopback ports in the container
		// directly, Chromium's own DevTools port and the agent's forwarder
		// among them. "<-loopback>" sends even loopback to the browser's
		// proxy, which refuses it.
		"AGENT_BROWSER_PROXY_BYPASS=<-loopback>",
		// Else it fetches chromereleases.googleblog.com at every start.
		"AGENT_BROWSER_NO_VERSION_CHECK=1",
		"AGENT_BROWSER_ARGS=" + strings.Join(ChromiumArgs, "\n"),
	}
}

// MaxMemoryBytes caps the global memory handed to Claude Code.
const MaxMemoryBytes = 64 << 10

// GlobalMemory reads dir/CLAUDE.md and frames it for --append-system-prompt:
// Claude Code reads CLAUDE.md only from the working directory and its
// parents, and the global folder is neither. It returns "" when there is no
// such file or it is empty. Longer files are cut at MaxMemoryBytes.
func GlobalMemory(dir string, main bool) (string, error) {
	path := dir + "/CLAUDE.md"
	// Main's agent writes this file and every group reads it: a FIFO must
	// not hang them, a link must not lead elsewhere (O_NONBLOCK, O_NOFOLLOW;
	// then only a regular file is read).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("global memory: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("global memory: %s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxMemoryBytes+1))
	if err != nil {
		return "", fmt.Errorf("global memory %s: %w", path, err)
	}
	cut := len(b) > MaxMemoryBytes
	if cut {
		b = b[:MaxMemoryBytes]
	}
	text := strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
	if text == "" {
		return "", nil
	}
	rights := "It is read-only here; your own memory is CLAUDE.md in your working directory."
	if main {
		rights = "You may edit that file to change what every group knows; edits apply from each group's next session."
	}
	memory := "# Global memory\n\nThe following is " + path + ", memory shared by every group of this assistant. " + rights + "\n\n" + text
	if cut {
		memory += fmt.Sprintf("\n\n[global memory cut at %d bytes]", MaxMemoryBytes)
	}
	return memory, nil
}

// stderrTailBytes is how much of Claude Code's last stderr output an error
// Output carries.
const stderrTailBytes = 2048

// claudeProc is one running Claude Code. Its goroutines (stdout and stderr
// readers, the waiter) end when the process and everything it started in
// its process group are gone; stop makes sure of that.
type claudeProc struct {
	cmd        *exec.Cmd
	pid        int
	stdin      *os.File
	events     chan Event    // closed at the end of stdout
	stdoutDone chan struct{} // closed at the end of stdout, after events
	stderrDone chan struct{} // closed at the end of stderr
	stdoutR    *os.File      // read ends, closed by release if they never end
	stderrR    *os.File
	exited     chan struct{} // closed once the process was waited for
	log        *slog.Logger

	mu      sync.Mutex
	waitErr error
	tail    []byte // last stderr bytes
	wg      sync.WaitGroup
}

// startClaude starts Claude Code in its own process group with pipes that
// are plain files (no copying goroutines inside exec.Cmd): the process's
// lifetime and its output's end are watched separately.
func startClaude(bin string, args, env []string, dir string, log *slog.Logger) (*claudeProc, error) {
	var ends []*os.File // stdin's, stdout's and stderr's read and write ends
	closeAll := func() {
		for _, f := range ends {
			f.Close() // closing an end twice is harmless
		}
	}
	for range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, err
		}
		ends = append(ends, r, w)
	}
	inR, inW, outR, outW, errR, errW := ends[0], ends[1], ends[2], ends[3], ends[4], ends[5]
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	// Own process group, so stop can end Claude Code's children (our MCP
	// server, shells) with it; SIGKILL if we die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err := cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("start claude code %s: %w", bin, err)
	}
	p := &claudeProc{cmd: cmd, pid: cmd.Process.Pid, stdin: inW, events: make(chan Event, 16),
		stdoutDone: make(chan struct{}), stderrDone: make(chan struct{}), exited: make(chan struct{}), log: log,
		stdoutR: outR, stderrR: errR}
	p.wg.Go(func() { p.readStdout(outR) })
	p.wg.Go(func() { defer close(p.stderrDone); p.readStderr(errR) })
	p.wg.Go(p.wait)
	return p, nil
}

func (p *claudeProc) readStdout(r *os.File) {
	defer close(p.stdoutDone)
	defer close(p.events)
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br, MaxLineBytes)
		if errors.Is(err, errLineTooLong) {
			p.log.Warn("claude code wrote a line over the limit; skipped", "limit", MaxLineBytes)
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				p.log.Warn("reading claude code's output", "err", err)
			}
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := ParseEvent(line)
		if err != nil {
			// Never ours to interpret: log it and go on.
			p.log.Warn("claude code wrote a line that is not stream-json", "err", err)
			continue
		}
		p.events <- ev
	}
}

// readStderr turns Claude Code's stderr into log records (it is not JSON)
// and keeps its tail for error outputs.
func (p *claudeProc) readStderr(r *os.File) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br, 64<<10)
		if errors.Is(err, errLineTooLong) {
			continue
		}
		if err != nil {
			return
		}
		s := strings.ToValidUTF8(string(line), "?")
		if strings.TrimSpace(s) == "" {
			continue
		}
		p.log.Warn("claude code stderr", "line", sanitize.Clip(s, 2048, "…"))
		p.mu.Lock()
		p.tail = append(p.tail, line...)
		p.tail = append(p.tail, '\n')
		if len(p.tail) > stderrTailBytes {
			p.tail = p.tail[len(p.tail)-stderrTailBytes:]
		}
		p.mu.Unlock()
	}
}

// wait reaps the process; if something it started still holds stdout open
// after a moment, the rest of its process group is killed so the readers
// end.
func (p *claudeProc) wait() {
	err := p.cmd.Wait()
	p.mu.Lock()
	p.waitErr = err
	p.mu.Unlock()
	close(p.exited)
	p.log.Info("claude code exited", "pid", p.pid, "status", exitStatus(err))
	select {
	case <-time.After(2 * time.Second):
		syscall.Kill(-p.pid, syscall.SIGKILL) //nolint:errcheck // the group may be gone already
	case <-p.stdoutDone:
	}
}

// send writes one prompt to Claude Code's stdin. A write that cannot
// finish within the deadline means Claude Code stopped reading.
func (p *claudeProc) send(text string) error {
	p.stdin.SetWriteDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // a pipe supports deadlines
	if _, err := p.stdin.Write(UserMessage(text)); err != nil {
		return fmt.Errorf("writing the prompt to claude code: %w", err)
	}
	return nil
}

// closeInput closes stdin: Claude Code finishes the turn it is in, then
// exits. An *os.File may be closed again, and while a write is under way.
func (p *claudeProc) closeInput() { p.stdin.Close() }

// deathStatus is called once stdout has ended unasked: it waits (briefly)
// for the process to be gone, ending it if it lingers without output, and
// says how it ended.
func (p *claudeProc) deathStatus() string {
	if !p.exitsWithin(5 * time.Second) {
		syscall.Kill(-p.pid, syscall.SIGKILL) //nolint:errcheck // may be gone
		<-p.exited
	}
	return p.status()
}

// exitsWithin waits at most d for the process to exit and reports whether
// it did.
func (p *claudeProc) exitsWithin(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// status is how the process ended plus the tail of its stderr, for errors.
func (p *claudeProc) status() string {
	select {
	case <-p.exited:
	default:
		return "still running"
	}
	// What it said last may still be in the pipe when it is reaped: read
	// to the end first (a child holding stderr open gets a moment only).
	select {
	case <-p.stderrDone:
	case <-time.After(time.Second):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := exitStatus(p.waitErr)
	if t := strings.TrimSpace(strings.ToValidUTF8(string(p.tail), "?")); t != "" {
		s += "; stderr: " + t
	}
	return s
}

// stop closes stdin, gives Claude Code grace to exit, then ends its whole
// process group. Its output may still be read: release ends that.
func (p *claudeProc) stop(grace time.Duration) {
	p.closeInput()
	if !p.exitsWithin(grace) {
		p.log.Warn("claude code did not exit after its input closed; terminating", "pid", p.pid, "grace", grace)
		syscall.Kill(-p.pid, syscall.SIGTERM) //nolint:errcheck // may be gone
		if !p.exitsWithin(3 * time.Second) {
			syscall.Kill(-p.pid, syscall.SIGKILL) //nolint:errcheck // may be gone
			<-p.exited
		}
	}
}

// releaseBound is how long release waits for the ends of Claude Code's
// output once it has exited.
const releaseBound = 5 * time.Second

// release returns once every goroutine of p is done; call it after stop.
// A process that left Claude Code's process group holding its stdout or
// stderr would keep the readers waiting for ever: after releaseBound our
// read ends are closed under them.
func (p *claudeProc) release() {
	// Drain what is left so readStdout can finish.
	go func() {
		for range p.events { //nolint:revive // discard
		}
	}()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(releaseBound):
	}
	p.log.Warn("claude code's output is held open by a process it left; closing it", "pid", p.pid)
	p.stdoutR.Close()
	p.stderrR.Close()
	<-done
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + strconv.Itoa(int(ws.Signal())) + " (" + ws.Signal().String() + ")"
		}
		return ee.Error()
	default:
		return err.Error()
	}
}
