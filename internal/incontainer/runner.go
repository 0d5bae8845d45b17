// Package incontainer drives Claude Code inside a group's container: it
// forwards Claude Code's loopback traffic to the gateway socket, keeps one
// Claude Code process warm across prompts, feeds it the prompts the host
// hands out, and posts each turn's result back to the host as soon as it
// exists. It holds no credential (finding 1).
package incontainer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/incontainer/hostclient"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// ErrClaudeDied is returned by Run when Claude Code exited on its own.
var ErrClaudeDied = errors.New("claude code exited unexpectedly")

// ErrSessionNotFound is returned by Run (wrapped together with
// ErrClaudeDied) when Claude Code could not resume the session it was
// given: the host should forget that session and start a new one. Claude
// Code 2.1.332 reports this at once, before reading any prompt, with
// "No conversation found with session ID: …" and exit status 1.
var ErrSessionNotFound = errors.New("the session to resume does not exist")

// Run runs the agent until the host sends close, the idle timeout passes,
// or ctx ends (SIGTERM): all three end Claude Code gracefully and return
// nil. It returns an error when Claude Code dies (after posting an error
// Output for the prompt in flight, if any), or when the host cannot be
// reached.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	claudeBin, err := lookPath(cfg.Claude, cfg.Path)
	if err != nil {
		return err
	}
	if cfg.Subreaper {
		// Before anything starts: what detaches from Claude Code must land
		// here, not with the container's init (reaper.go).
		if err := becomeSubreaper(); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	proxy, browserProxy := ln.Addr().String(), ""
	fctx, stopFwd := context.WithCancel(context.Background())
	var fwdDone sync.WaitGroup
	defer fwdDone.Wait()
	defer stopFwd()
	forward := func(ln net.Listener, socket, part string) {
		fwdDone.Go(func() {
			if err := Forward(fctx, ln, socket, 0, log.With("part", part)); err != nil {
				log.Error("forwarder stopped", "part", part, "err", err)
			}
		})
	}
	forward(ln, cfg.Socket, "forwarder")
	if cfg.Browser {
		// The browser's own way out: a page's requests go where the
		// browser's socket lets them, never to the agent's (ipc.BrowserProxyPort).
		bln, err := net.Listen("tcp", cfg.BrowserListen)
		if err != nil {
			return fmt.Errorf("browser forwarder: %w", err)
		}
		browserProxy = bln.Addr().String()
		forward(bln, cfg.BrowserSocket, "browser-forwarder")
	}

	tmp, err := os.MkdirTemp(cfg.TempDir, "nanoclaw-agent-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	mcpConfig := filepath.Join(tmp, "mcp.json")
	if err := writeMCPConfig(mcpConfig, cfg.Self, cfg.Socket); err != nil {
		return err
	}
	memory, err := GlobalMemory(cfg.GlobalDir, cfg.Main)
	if err != nil {
		log.Warn("global memory left out", "err", err) // memory is ""
	}
	memoryFile := ""
	if memory != "" {
		memoryFile = filepath.Join(tmp, "global-memory.md")
		if err := os.WriteFile(memoryFile, []byte(memory), 0o600); err != nil {
			return fmt.Errorf("global memory: %w", err)
		}
	}

	args := ClaudeArgs(cfg.SessionID, cfg.Model, mcpConfig, memoryFile)
	start := time.Now()
	p, err := startClaude(claudeBin, args, ClaudeEnv(cfg, proxy, browserProxy), cfg.WorkDir, log.With("part", "claude"))
	if err != nil {
		return err
	}
	log.Info("claude code started", "pid", p.pid, "resume", cfg.SessionID, "main", cfg.Main,
		"global_memory_bytes", len(memory), "proxy", proxy)

	client := hostclient.New(cfg.Socket, log.With("part", "hostclient"))
	defer client.Close()
	r := &runner{cfg: cfg, log: log, client: client, p: p, sessionID: cfg.SessionID, started: start}
	runErr := r.loop(ctx)
	p.stop(cfg.StopGrace)
	// Claude Code is gone: nothing of the run is kept. Before release: a
	// stray may hold Claude Code's output open.
	r.killStrays("end", 0)
	p.release()
	log.Info("agent done", "turns", r.turns, "err", runErr)
	return runErr
}

// runner is the state of one Run.
type runner struct {
	cfg       Config
	log       *slog.Logger
	client    *hostclient.Client
	p         *claudeProc
	sessionID string // valid: Config.Validate and note check it
	started   time.Time
	turns     int    // prompts handed to Claude Code
	answered  int    // turns that ended without error
	stray     string // error of a result line that came outside a turn
}

type pollResult struct {
	in  ipc.Input
	ok  bool
	err error
}

// loop polls for inputs and runs turns until a reason to stop.
func (r *runner) loop(ctx context.Context) error {
	polls := make(chan pollResult, 1)
	var wg sync.WaitGroup
	pollCtx, cancelPoll := context.WithCancel(ctx)
	// The poll in flight is abandoned and waited for on every way out.
	defer wg.Wait()
	defer cancelPoll()
	polling := false
	badInputs := 0

	idle := time.NewTimer(r.cfg.Idle)
	defer idle.Stop()
	for {
		if !polling {
			polling = true
			wg.Go(func() {
				in, ok, err := r.client.Next(pollCtx)
				polls <- pollResult{in, ok, err}
			})
		}
		select {
		case <-ctx.Done():
			r.log.Info("stopping: signal")
			return nil
		case <-idle.C:
			r.log.Info("stopping: idle", "idle", r.cfg.Idle)
			return nil
		case ev, ok := <-r.p.events:
			if !ok {
				return r.died("while waiting for input", r.p.deathStatus())
			}
			r.note(ev)
			if ev.Type == "result" && ev.IsError {
				// Claude Code failed before any prompt (a resume that
				// cannot be done): keep why, for the error that follows.
				r.stray = ev.ErrorText()
				r.log.Error("claude code reported an error outside a turn", "error", sanitize.Clip(r.stray, 2048, "…"))
				continue
			}
			r.log.Debug("claude code output between turns", "type", ev.Type, "subtype", ev.Subtype)
		case pr := <-polls:
			polling = false
			switch {
			case pr.err != nil && ctx.Err() != nil:
				return nil
			case errors.Is(pr.err, hostclient.ErrInvalidInput):
				// The host handed something we cannot answer (it has no
				// valid id): log it, and do not spin if it keeps doing so.
				badInputs++
				r.log.Error("invalid input from the host; ignored", "err", pr.err)
				if badInputs > 10 {
					return fmt.Errorf("the host keeps sending invalid input: %w", pr.err)
				}
				continue
			case pr.err != nil:
				return fmt.Errorf("asking the host for input: %w", pr.err)
			case !pr.ok:
				continue
			}
			badInputs = 0
			if pr.in.Kind == ipc.InputClose {
				r.log.Info("stopping: the host closed the session")
				return nil
			}
			if err := r.turn(ctx, pr.in); err != nil {
				return err
			}
			// The answer is posted; what the turn left running detached
			// goes now (the next prompt is being fetched meanwhile).
			r.killStrays("turn", r.p.pid)
			idle.Reset(r.cfg.Idle) // since Go 1.23 no stale tick survives a Reset
			if ctx.Err() != nil {
				r.log.Info("stopping: signal")
				return nil
			}
		}
	}
}

// killStrays ends what a turn left running outside Claude Code's tree
// (KillStrays), when this process is the container's subreaper, and logs
// what it killed. when is "turn" or "end".
func (r *runner) killStrays(when string, claudePID int) {
	if !r.cfg.Subreaper {
		return
	}
	killed, err := KillStrays(claudePID, StrayBound)
	if len(killed) > 0 {
		r.log.Info("killed what the run left running", "after", when, "processes", len(killed), "names", strayNames(killed))
	}
	if err != nil {
		r.log.Error("processes left running", "after", when, "err", err)
	}
}

// note keeps the session id Claude Code reports.
func (r *runner) note(ev Event) {
	if ev.SessionID != "" && ev.SessionID != r.sessionID {
		if !ipc.ValidSessionID(ev.SessionID) {
			r.log.Warn("claude code reported a session id we will not pass on", "session_id", sanitize.Clip(ev.SessionID, 200, "…"))
			return
		}
		r.log.Info("session", "session_id", ev.SessionID)
		r.sessionID = ev.SessionID
	}
}

// turn hands Claude Code one prompt and posts its result. A stop (ctx)
// during the turn closes Claude Code's input, which lets the turn finish
// within the stop grace. It returns an error only when the run cannot go
// on.
func (r *runner) turn(ctx context.Context, in ipc.Input) error {
	r.turns++
	start := time.Now()
	log := r.log.With("input_id", in.ID)
	log.Info("turn started", "prompt_bytes", len(in.Text), "since_start_ms", time.Since(r.started).Milliseconds())
	if err := r.p.send(in.Text); err != nil {
		r.post(log, r.errorOutput(in.ID, start, err.Error()))
		return r.died("when handed prompt "+in.ID, err.Error()+" ("+r.p.status()+")")
	}
	var graceC <-chan time.Time
	stopping := ctx.Done()
	for {
		select {
		case ev, ok := <-r.p.events:
			if !ok {
				status := r.p.deathStatus()
				r.post(log, r.errorOutput(in.ID, start, "claude code exited during the turn: "+status))
				if graceC != nil {
					return nil // we closed its input: a stop, not a death
				}
				return r.died("during turn "+in.ID, status)
			}
			r.note(ev)
			if ev.Type != "result" {
				log.Debug("claude code", "type", ev.Type, "subtype", ev.Subtype)
				continue
			}
			out := r.output(in.ID, start, ev)
			if !out.IsError {
				r.answered++
			}
			log.Info("turn done", "is_error", out.IsError, "duration_ms", out.DurationMS,
				"claude_duration_ms", ev.DurationMS, "result_bytes", len(out.Result),
				"input_tokens", out.Usage.InputTokens, "output_tokens", out.Usage.OutputTokens)
			return r.post(log, out)
		case <-stopping:
			stopping = nil
			log.Info("stop requested during a turn; letting it finish", "grace", r.cfg.StopGrace)
			r.p.closeInput()
			graceC = time.After(r.cfg.StopGrace)
		case <-graceC:
			r.post(log, r.errorOutput(in.ID, start, "the agent was stopped before the turn finished"))
			return nil
		}
	}
}

// died is the error for Claude Code's unasked exit; status says how it
// ended. A resumed session that never answered and whose failure says the
// conversation was not found is ErrSessionNotFound.
func (r *runner) died(when, status string) error {
	if r.cfg.SessionID != "" && r.answered == 0 && strings.Contains(r.stray+" "+status, "No conversation found") {
		return fmt.Errorf("%w: %w: session %s (%s)", ErrSessionNotFound, ErrClaudeDied, r.cfg.SessionID, status)
	}
	if r.stray != "" {
		status += "; it had reported: " + sanitize.Clip(r.stray, 2048, "…")
	}
	return fmt.Errorf("%w %s: %s", ErrClaudeDied, when, status)
}

// output turns a result line into the host's Output.
func (r *runner) output(id string, start time.Time, ev Event) ipc.Output {
	out := ipc.Output{
		InputID:    id,
		Result:     sanitize.Clip(ev.Result, MaxResultBytes, "\n[cut]"),
		SessionID:  r.sessionID,
		IsError:    ev.IsError || strings.HasPrefix(ev.Subtype, "error"),
		DurationMS: time.Since(start).Milliseconds(),
		Usage:      ipc.Usage{InputTokens: max(ev.Usage.InputTokens, 0), OutputTokens: max(ev.Usage.OutputTokens, 0)},
	}
	if out.IsError {
		out.Error = sanitize.Clip(ev.ErrorText(), 64<<10, "\n[cut]")
	}
	return out
}

// errorOutput is the host's Output for a turn that failed with msg.
func (r *runner) errorOutput(id string, start time.Time, msg string) ipc.Output {
	return r.output(id, start, Event{IsError: true, Errors: []string{msg}})
}

// post sends an Output with its own deadline: it must go out even when the
// run is being stopped.
func (r *runner) post(log *slog.Logger, out ipc.Output) error {
	ctx, cancel := context.WithTimeout(context.Background(), hostclient.RetryFor+hostclient.CallTimeout)
	defer cancel()
	err := r.client.PostOutput(ctx, out)
	if errors.Is(err, hostclient.ErrRefused) {
		// The host has it and does not want it (a turn it no longer
		// waits for): nothing to retry, and no reason to stop.
		log.Warn("the host refused the output", "err", err)
		return nil
	}
	if err != nil {
		log.Error("posting the output failed", "err", err)
		return err
	}
	return nil
}
