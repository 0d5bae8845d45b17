package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// errTimeout reports a turn that took longer than the group's timeout; its
// container has been stopped.
var errTimeout = errors.New("agent timed out")

// maxResumeFailures is how many resumed runs in a row may end without a
// good answer before the group's session is cleared.
const maxResumeFailures = 2

// exitSessionNotFound is nanoclaw-agent's exit code when the session it
// was told to resume does not exist.
const exitSessionNotFound = 3

// pollWindow bounds one long poll of the agent for input.
const pollWindow = 25 * time.Second

// Container is one running container of a group: a warm Claude Code that
// answers prompts until it is closed, idles out or times out.
type Container struct {
	r     *Runner
	group store.Group
	name  string // container name
	save  bool   // keep Claude Code's session id as the group's
	// resumed: started with a stored session id; answered: an answer was
	// accepted (a resume that ends before one says the session is gone).
	resumed     bool
	answered    bool
	hostStopped bool // the host ended it (timeout, or a close that had to stop it)

	ep      *gateway.Endpoint
	cmd     *exec.Cmd
	logFile *os.File
	logPath string
	runDir  string // ipc/<random>: this run's socket directory
	started time.Time
	ran     sandbox.Spec // what was started
	skills  stagedSkills // this run's skill mounts

	// The self-test's probe (selftest.go): its command's arguments after
	// the program, and where its stdout goes; nil for an agent.
	probe    []string
	probeOut io.Writer

	inputs  chan ipc.Input
	closeCh chan struct{} // closed: the agent's next poll gets "close"
	done    chan struct{} // closed when the container process has exited
	exitErr error

	mu        sync.Mutex
	waiting   map[string]chan ipc.Output
	idle      *time.Timer
	closeOnce sync.Once
	stopOnce  sync.Once
}

// StartOptions choose how a container starts.
type StartOptions struct {
	// SessionID is the Claude Code session to resume; "" starts fresh.
	SessionID string
	// Isolated runs keep their session to themselves: its id is not saved
	// as the group's (scheduled tasks with context_mode isolated).
	Isolated bool
}

func newContainer(r *Runner, g store.Group) *Container {
	return &Container{
		r:       r,
		group:   g,
		inputs:  make(chan ipc.Input, 16),
		closeCh: make(chan struct{}),
		done:    make(chan struct{}),
		waiting: make(map[string]chan ipc.Output),
	}
}

// Done is closed when the container has exited.
func (s *Container) Done() <-chan struct{} { return s.done }

// start starts the container; the caller names the group in an error.
func (s *Container) start(ctx context.Context, opt StartOptions) error {
	r := s.r
	g := s.group
	s.save = !opt.Isolated
	s.resumed = opt.SessionID != ""
	s.started = time.Now()
	var err error
	if s.name, err = sandbox.ContainerName(g.Folder, s.started); err != nil {
		return err
	}
	id, err := s.identity(ctx)
	if err != nil {
		return err
	}
	p, err := r.prepareDirs(g, id)
	if err != nil {
		return err
	}
	s.runDir = p.run
	if s.probe == nil {
		if s.skills, err = r.stageSkills(g, p); err != nil {
			s.removeRunDir()
			return err
		}
	}

	policy := r.opt.DefaultEgress
	if g.Config.Egress.Mode != "" {
		if policy, err = egress.ParsePolicy(string(g.Config.Egress.Mode), g.Config.Egress.Allow); err != nil {
			return fmt.Errorf("egress policy: %w", err)
		}
	}
	// R13: each run has its own socket directory, and only that directory
	// is mounted: a container of an earlier run (one a killed daemon left
	// behind) holds the old directory, and can never reach this socket.
	ep, err := r.gw.Open(gateway.Caller{Folder: g.Folder, IsMain: g.IsMain, Browser: g.Config.Browser}, policy, p.run, id, id)
	if err != nil {
		s.removeRunDir()
		return fmt.Errorf("open gateway: %w", err)
	}
	s.ep = ep
	fail := func(err error) error {
		ep.Close()
		s.removeRunDir()
		return err
	}

	spec := s.spec(p, id, opt.SessionID)
	s.ran = spec
	// The container's life is not the caller's request: it is ended by
	// Close, the idle timer or the timeout, through the runtime's stop.
	cmd, err := r.opt.Runtime.Command(context.WithoutCancel(ctx), spec)
	if err != nil {
		return fail(err)
	}
	// R1: the run log is the host's, in the host's own logs/<folder>, made
	// new (never an existing file, never through a link).
	s.logPath = filepath.Join(p.logs, s.started.UTC().Format("20060102T150405.000Z")+"-"+s.name+".log")
	s.logFile, err = os.OpenFile(s.logPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fail(fmt.Errorf("run log: %w", err))
	}
	pruneRunLogs(p.logs, s.logPath, r.log)
	fmt.Fprintf(s.logFile, "container %s\nimage %s\nuser %s\nstarted %s\nresume %q\nmain %v\n\n",
		s.name, spec.Image, spec.User, s.started.Format(time.RFC3339Nano), opt.SessionID, g.IsMain)
	out := &cappedWriter{w: s.logFile, left: maxRunLogOutput}
	cmd.Stdout, cmd.Stderr = out, out
	if s.probeOut != nil {
		cmd.Stdout = s.probeOut // the probe's report; its stderr stays in the run log
	}
	s.cmd = cmd
	if err := cmd.Start(); err != nil {
		s.logFile.Close()
		return fail(fmt.Errorf("%s run: %w", r.opt.Runtime.Kind, err))
	}
	r.log.Info("agent started", "group", g.Folder, "container", s.name, "user", spec.User, "resume", opt.SessionID != "")
	go s.wait()
	return nil
}

// removeRunDir removes this run's socket directory (the socket is gone by
// then); the host alone writes there.
func (s *Container) removeRunDir() {
	if err := os.Remove(s.runDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.r.log.Warn("remove the run's socket directory", "group", s.group.Folder, "dir", s.runDir, "err", err)
	}
}

// Prompt gives the warm agent one prompt and waits for its answer. The turn
// is bounded by the group's timeout: past it the container is stopped and
// errTimeout returned.
func (s *Container) Prompt(ctx context.Context, text string) (ipc.Output, error) {
	in := ipc.Input{Kind: ipc.InputPrompt, ID: newID(), Text: text}
	if err := in.Validate(); err != nil {
		return ipc.Output{}, err
	}
	ch := make(chan ipc.Output, 1)
	s.mu.Lock()
	s.waiting[in.ID] = ch
	if s.idle != nil {
		s.idle.Stop()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, in.ID)
		s.mu.Unlock()
	}()

	select {
	case s.inputs <- in:
	case <-s.closeCh:
		return ipc.Output{}, fmt.Errorf("agent %s is closing", s.group.Folder)
	case <-s.done:
		return ipc.Output{}, s.exited()
	case <-ctx.Done():
		return ipc.Output{}, ctx.Err()
	}
	timeout := positiveOr(time.Duration(s.group.Config.TimeoutSeconds)*time.Second, s.r.opt.Timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case out := <-ch:
		s.armIdle()
		return out, nil
	case <-timer.C:
		s.r.log.Warn("agent timed out; stopping its container", "group", s.group.Folder, "container", s.name, "timeout", timeout)
		s.stop(context.WithoutCancel(ctx))
		return ipc.Output{}, fmt.Errorf("%w after %v (group %s); its container was stopped", errTimeout, timeout, s.group.Folder)
	case <-s.done:
		return ipc.Output{}, s.exited()
	case <-ctx.Done():
		return ipc.Output{}, ctx.Err()
	}
}

// exited says why the container ended; s.done is closed.
func (s *Container) exited() error {
	how := ""
	if s.exitErr != nil {
		how = ": " + s.exitErr.Error()
	}
	return fmt.Errorf("agent container %s ended before answering%s (see its run log %s)", s.name, how, s.logPath)
}

// armIdle closes the container after the idle timeout unless another prompt
// comes first.
func (s *Container) armIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) > 0 { // another prompt is still in flight (deliver took ours out)
		return
	}
	if s.idle != nil {
		s.idle.Stop()
	}
	s.idle = time.AfterFunc(s.r.opt.IdleTimeout, func() {
		s.r.log.Info("agent idle; closing", "group", s.group.Folder, "container", s.name)
		s.Close(context.Background())
	})
}

func (s *Container) next(ctx context.Context) (ipc.Input, bool, error) {
	t := time.NewTimer(pollWindow)
	defer t.Stop()
	select {
	case in := <-s.inputs:
		return in, true, nil
	case <-s.closeCh:
		return ipc.Input{Kind: ipc.InputClose}, true, nil
	case <-t.C:
		return ipc.Input{}, false, nil
	case <-ctx.Done():
		return ipc.Input{}, false, ctx.Err()
	}
}

// deliver hands one answer to the prompt waiting for it. R15: the first
// answer to a prompt wins — taken out of the waiting set under the lock, so
// a container that posts many answers cannot pin a goroutine or its body;
// the rest are refused at once; its fields were capped by the gateway's
// Validate. R17: only the session id of an accepted, successful answer is
// kept.
func (s *Container) deliver(out ipc.Output) error {
	s.mu.Lock()
	ch, ok := s.waiting[out.InputID]
	if ok {
		delete(s.waiting, out.InputID)
		s.answered = s.answered || !out.IsError
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no prompt %q is waiting for an answer", out.InputID)
	}
	if !out.IsError && out.SessionID != "" && s.save {
		if err := s.r.opt.Store.SetSession(context.Background(), s.group.Folder, out.SessionID); err != nil {
			s.r.log.Error("save session", "group", s.group.Folder, "err", err)
		}
	}
	ch <- out // buffered for one, and this is its only sender
	return nil
}

// Close asks the agent to finish, waits a little for it, then stops the
// container if it is still there. It returns when the container is gone.
func (s *Container) Close(ctx context.Context) {
	s.closeOnce.Do(func() { close(s.closeCh) })
	select {
	case <-s.done:
	case <-time.After(s.r.opt.StopGrace):
		s.stop(ctx)
	}
	<-s.done
}

// stop ends the container now: graceful stop, then kill.
func (s *Container) stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.hostStopped = true
		s.mu.Unlock()
		s.closeOnce.Do(func() { close(s.closeCh) })
		if err := s.r.opt.Runtime.Stop(ctx, s.name, s.r.opt.StopGrace); err != nil {
			s.r.log.Error("stop agent container", "container", s.name, "err", err)
		}
		if s.cmd.Process != nil {
			select {
			case <-s.done:
			case <-time.After(s.r.opt.StopGrace + 5*time.Second):
				s.cmd.Process.Kill() // the runtime client; the container is gone by now
			}
		}
	})
}

func (s *Container) wait() {
	s.exitErr = s.cmd.Wait()
	s.ep.Close()
	s.removeRunDir()
	code := s.cmd.ProcessState.ExitCode() // -1 when it did not exit (a nil ProcessState too)
	s.settleResume(code)
	fmt.Fprintf(s.logFile, "\nexited %s after %v, code %d\n", time.Now().Format(time.RFC3339Nano),
		time.Since(s.started).Round(time.Millisecond), code)
	s.logFile.Close()
	s.mu.Lock()
	if s.idle != nil {
		s.idle.Stop()
	}
	s.mu.Unlock()
	s.r.forget(s)
	s.r.log.Info("agent exited", "group", s.group.Folder, "container", s.name, "code", code)
	close(s.done)
}

// settleResume decides, when a container has ended with code, whether the
// group's stored session is still one to resume. R17: a stored session
// that cannot be resumed — Claude Code says it does not exist, or resumed
// runs end without one good answer maxResumeFailures times in a row (a
// transcript the agent made unreadable or huge) — is cleared, so the next
// start is a fresh one rather than the same failure for good. Runs the
// host stopped itself (a timeout) do not count.
func (s *Container) settleResume(code int) {
	s.mu.Lock()
	answered, stopped := s.answered, s.hostStopped
	s.mu.Unlock()
	r, folder := s.r, s.group.Folder
	stale := false
	r.mu.Lock()
	switch {
	case answered || !s.resumed:
		delete(r.failures, folder)
	case !stopped:
		r.failures[folder]++
		if stale = code == exitSessionNotFound || r.failures[folder] >= maxResumeFailures; stale {
			delete(r.failures, folder)
		}
	}
	r.mu.Unlock()
	if stale {
		r.log.Warn("the group's session could not be resumed; cleared, the next run starts fresh", "group", folder, "container", s.name, "code", code)
		r.clearSession(context.Background(), folder)
	}
}
