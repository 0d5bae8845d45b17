// Package agent runs a group's agent: it starts the group's hardened
// container with exactly the mounts it may have, opens the group's gateway
// socket, feeds prompts to the warm container and collects the answers,
// keeps the group's Claude Code session, and stops the container on
// timeout, on idle or when asked.
//
// The host side of the session protocol (internal/ipc) lives here: the
// gateway hands the group's input and output requests to the Runner with
// the folder of the socket they came in on; tool calls go to the tools the
// wiring gave the gateway.
package agent

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Options configure a Runner. Paths are the host's.
type Options struct {
	Runtime *sandbox.Runtime
	Image   string
	// BrowserImage is the image of groups with the browser on: Image plus
	// Chromium and agent-browser (`nanoclaw image build --browser`).
	BrowserImage string
	AgentBinary  string // static nanoclaw-agent, mounted read-only into every container

	GroupsDir   string // groups/<folder> and groups/global
	SessionsDir string // sessions/<folder>/.claude
	IPCDir      string // ipc/<run>/gateway.sock: a directory per run
	LogsDir     string // logs/<folder>/<start>-<container>.log: the host's own, never mounted
	// SpoolDir (outbox/) holds the copies SpoolFile takes of the files the
	// agents send: the host's own (0700, made when missing), never mounted.
	SpoolDir string
	// SkillsDir (skills/) holds, per group, the copies of the owner's
	// skills its runs mount read-only: the host's own, never writable by a
	// container (internal/skills).
	SkillsDir string

	Timeout     time.Duration // longest turn before the container is stopped
	IdleTimeout time.Duration // how long a warm container waits for a follow-up
	StopGrace   time.Duration // between the graceful stop and the kill
	MemoryMB    int
	CPUs        float64
	PidsLimit   int
	// Model is the Claude model of groups that do not choose one (MODEL);
	// "" leaves it to Claude Code.
	Model string

	// DefaultEgress applies to groups whose config does not choose.
	DefaultEgress egress.Policy

	// AllowlistPath is the mount allowlist, read afresh at every run; no
	// file means no extra mounts. It is never mounted itself.
	AllowlistPath string

	Gateway gateway.Options // Tools answer the agents' tool calls; NewRunner sets Handler, Logger and Usage
	Store   *store.Store    // required: the groups' sessions and container ids
	Logger  *slog.Logger
}

// ErrNoCredential is Start's error when the host has neither an API key nor
// an OAuth token, so nothing can answer until the owner adds one. Its text
// is the one line that says how: the router shows it to the owner.
var ErrNoCredential = errors.New("nanoclaw has no Anthropic credential yet: put ANTHROPIC_API_KEY=… (or CLAUDE_CODE_OAUTH_TOKEN=…) " +
	"in ~/.config/nanoclaw/config with mode 600, or run 'nanoclaw setup'; then restart nanoclaw")

// Runner owns the running agent containers, at most one per group.
type Runner struct {
	opt Options
	gw  *gateway.Gateway
	log *slog.Logger

	mu         sync.Mutex
	containers map[string]*Container // by folder
	failures   map[string]int        // by folder: resumed runs in a row without a good answer
	imagesOK   sync.Map              // image → true once seen; it is not looked up again
}

// NewRunner makes a Runner; it serves the gateway's input and output
// requests itself.
func NewRunner(opt Options) *Runner {
	opt.Logger = cmp.Or(opt.Logger, slog.Default())
	opt.StopGrace = cmp.Or(opt.StopGrace, 5*time.Second)
	r := &Runner{opt: opt, log: opt.Logger, containers: make(map[string]*Container), failures: make(map[string]int)}
	gopt := opt.Gateway
	gopt.Handler, gopt.Logger = r, opt.Logger
	if opt.Store != nil { // a nil *store.Store in the interface would not read as nil
		gopt.Usage = opt.Store
	}
	r.gw = gateway.New(gopt)
	return r
}

// running returns the group's warm container, if one is running.
func (r *Runner) running(folder string) *Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.containers[folder]
}

// Start starts the group's container and returns it.
func (r *Runner) Start(ctx context.Context, g store.Group, opt StartOptions) (*Container, error) {
	s := newContainer(r, g)
	if err := r.launch(ctx, s, opt); err != nil {
		return nil, err
	}
	return s, nil
}

// launch checks what every container needs and starts s: a group's agent,
// or the self-test's probe (selftest.go), which goes the same way.
func (r *Runner) launch(ctx context.Context, s *Container, opt StartOptions) error {
	g := s.group
	if err := store.ValidateFolder(g.Folder); err != nil {
		return fmt.Errorf("start agent: %w", err) // finding 5
	}
	if r.opt.Runtime == nil {
		return errors.New("start agent: no container runtime (install podman or docker, or set NANOCLAW_RUNTIME)")
	}
	if s.probe == nil && r.opt.Gateway.APIKey == "" && r.opt.Gateway.OAuthToken == "" {
		// Claude Code would retry the gateway's refusal for minutes: say it now.
		return ErrNoCredential
	}
	if err := r.checkImage(ctx, r.image(g)); err != nil {
		return err
	}
	if err := checkAgentBinary(r.opt.AgentBinary); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	opt.SessionID = r.resumable(ctx, g.Folder, opt.SessionID)
	r.mu.Lock()
	if _, busy := r.containers[g.Folder]; busy {
		r.mu.Unlock()
		return fmt.Errorf("start agent %s: a container is already running for this group", g.Folder)
	}
	r.containers[g.Folder] = s
	r.mu.Unlock()

	if err := s.start(ctx, opt); err != nil {
		r.forget(s)
		return fmt.Errorf("start agent %s: %w", g.Folder, err)
	}
	return nil
}

// checkAgentBinary refuses a nanoclaw-agent that someone other than the
// daemon's user could replace: every container, main's included, runs it.
// The file and each directory above it must belong to the daemon's user
// or root and be writable by no one else (a sticky directory like /tmp is
// fine above it, not as its own directory).
func checkAgentBinary(path string) error {
	if path == "" {
		return errors.New("no nanoclaw-agent binary configured (NANOCLAW_AGENT_BINARY)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("nanoclaw-agent %s: %w (run 'make build' or set NANOCLAW_AGENT_BINARY)", path, err)
	}
	me := uint32(os.Geteuid())
	for p, first := real, true; ; p, first = filepath.Dir(p), false {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		sticky := st.Mode()&os.ModeSticky != 0 && !first && p != filepath.Dir(real)
		if sys.Uid != me && sys.Uid != 0 || st.Mode().Perm()&0o022 != 0 && !sticky {
			return fmt.Errorf("nanoclaw-agent %s: %s can be changed by another user (owner uid %d, mode %v), and every container runs this binary: make it and its directories writable only by you or root", path, p, sys.Uid, st.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// resumable returns id if the group's Claude state holds that session's
// transcript, and otherwise clears the stored session and returns "": a
// session id is the container's word, and a missing or bogus one must not
// make every later start fail (R17).
func (r *Runner) resumable(ctx context.Context, folder, id string) string {
	if id == "" {
		return ""
	}
	why := "its id is invalid"
	if ipc.ValidSessionID(id) {
		if r.transcriptExists(folder, id) {
			return id
		}
		why = "its transcript is missing, unreadable or too large"
	}
	r.log.Warn("the group's stored session cannot be resumed; starting a fresh one", "group", folder, "session", id, "reason", why)
	r.clearSession(ctx, folder)
	return ""
}

// transcriptExists looks for Claude Code's transcript of session id (a
// container-writable tree: through os.Root, without following a link at
// its end).
func (r *Runner) transcriptExists(folder, id string) bool {
	root, err := os.OpenRoot(filepath.Join(r.opt.SessionsDir, folder, ".claude"))
	if err != nil {
		return false
	}
	defer root.Close()
	st, err := root.Lstat(claudeProjectDir + "/" + id + ".jsonl")
	// Readable by its owner, and not so large that loading it would take
	// the container's memory (a sparse file costs the agent no disk).
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o400 != 0 && st.Size() <= maxTranscriptBytes
}

// maxTranscriptBytes is the largest transcript a run resumes; a larger one
// starts a fresh session.
const maxTranscriptBytes = 256 << 20

// claudeProjectDir is where Claude Code keeps the transcripts of sessions
// run in ipc.ContainerGroupDir, relative to its state directory.
const claudeProjectDir = "projects/-workspace-group"

func (r *Runner) clearSession(ctx context.Context, folder string) {
	if err := r.opt.Store.ClearSession(context.WithoutCancel(ctx), folder); err != nil {
		r.log.Error("clear the group's session", "group", folder, "err", err)
	}
}

// image is the image group g runs on.
func (r *Runner) image(g store.Group) string {
	if g.Config.Browser {
		return r.opt.BrowserImage
	}
	return r.opt.Image
}

// checkImage fails clearly when the image is missing, instead of letting
// the container start fail with the runtime's own words. An image another
// nanoclaw built (its Claude Code, its Chromium policy) still runs, and the
// log says how to rebuild it, once.
func (r *Runner) checkImage(ctx context.Context, image string) error {
	if _, ok := r.imagesOK.Load(image); ok {
		return nil
	}
	build, variant := "nanoclaw image build", agentimage.TargetAgent
	if image == r.opt.BrowserImage && image != r.opt.Image {
		build, variant = build+" --browser", agentimage.TargetBrowser
	}
	if image == "" {
		return fmt.Errorf("start agent: no image configured: set NANOCLAW_IMAGE and NANOCLAW_BROWSER_IMAGE, or run '%s'", build)
	}
	exists, err := r.opt.Runtime.ImageExists(ctx, image)
	if err != nil {
		return fmt.Errorf("start agent: look up image %s: %w", image, err)
	}
	if !exists {
		return fmt.Errorf("start agent: the agent image %s does not exist in %s: run '%s'", image, r.opt.Runtime.Kind, build)
	}
	// Its labels, where the runtime shows them (Apple's container does not).
	if st, err := agentimage.Status(ctx, r.opt.Runtime, image, variant); err == nil && st != agentimage.Current {
		r.log.Warn("the image was not built by this nanoclaw: run '"+build+"' (make run does it)", "image", image, "state", string(st))
	}
	r.imagesOK.Store(image, true)
	return nil
}

func (r *Runner) forget(s *Container) {
	r.mu.Lock()
	if r.containers[s.group.Folder] == s {
		delete(r.containers, s.group.Folder)
	}
	r.mu.Unlock()
}

// Close stops every running container.
func (r *Runner) Close(ctx context.Context) {
	r.mu.Lock()
	all := slices.Collect(maps.Values(r.containers))
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.Close(ctx) })
	}
	wg.Wait()
}

// Next implements gateway.Handler: the agent's long poll for input.
func (r *Runner) Next(ctx context.Context, folder string) (ipc.Input, bool, error) {
	s := r.running(folder)
	if s == nil {
		return ipc.Input{Kind: ipc.InputClose}, true, nil
	}
	return s.next(ctx)
}

// Output implements gateway.Handler: one answer from the agent.
func (r *Runner) Output(_ context.Context, folder string, out ipc.Output) error {
	s := r.running(folder)
	if s == nil {
		return fmt.Errorf("no agent container is running for group %s", folder)
	}
	return s.deliver(out)
}

// newID makes a prompt id.
func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
