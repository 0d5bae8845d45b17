package incontainer

// Tests of how a Run ends or copes: Claude Code dying in or between
// turns, a session that cannot be resumed, a stop, the idle timeout, a
// Claude Code that ignores its stop, invalid input, a missing binary and
// the listener freed; against the fake Claude Code of runner_test.go.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

func TestRunClaudeDiesDuringTurn(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.gw.Prompt("p1", "die")
	o := h.output(t)
	if o.InputID != "p1" || !o.IsError || !strings.Contains(o.Error, "exit status 3") || !strings.Contains(o.Error, "boom marker-stderr") {
		t.Errorf("output %+v; want an error naming the exit and stderr", o)
	}
	if err := h.result(t, 10*time.Second); !errors.Is(err, ErrClaudeDied) {
		t.Errorf("Run = %v, want ErrClaudeDied", err)
	}
}

// A session that cannot be resumed is told apart, whether or not a prompt
// was already handed over.
func TestRunSessionNotFound(t *testing.T) {
	for _, prompt := range []bool{false, true} {
		t.Run(fmt.Sprintf("prompt=%v", prompt), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.SessionID = "missing-session" })
			if prompt {
				h.gw.Prompt("p1", "hello")
			}
			h.start(t)
			err := h.result(t, 10*time.Second)
			if !errors.Is(err, ErrSessionNotFound) || !errors.Is(err, ErrClaudeDied) {
				t.Errorf("Run = %v; want ErrSessionNotFound", err)
			}
			if !prompt {
				return
			}
			// If the prompt got to Claude Code, it is answered with the error.
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if o, err := h.gw.Output(ctx); err == nil && (!o.IsError || !strings.Contains(o.Error, "No conversation found")) {
				t.Errorf("output %+v; want the resume error", o)
			}
		})
	}
}

func TestRunClaudeDiesWhileIdle(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.gw.Prompt("p1", "exit-after")
	if o := h.output(t); o.Result != "bye" || o.IsError {
		t.Errorf("output %+v", o)
	}
	err := h.result(t, 10*time.Second)
	if !errors.Is(err, ErrClaudeDied) || !strings.Contains(err.Error(), "exit status 5") {
		t.Errorf("Run = %v, want ErrClaudeDied with exit status 5", err)
	}
}

// A stop (SIGTERM) during a turn lets the turn finish and posts it.
func TestRunStopDuringTurnFinishesTheTurn(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.gw.Prompt("p1", "slow")
	deadline := time.Now().Add(10 * time.Second)
	for len(h.records(t)) == 0 || h.gw.Polls() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the turn did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // inside the 400 ms turn
	h.cancel()
	if o := h.output(t); o.InputID != "p1" || o.Result != "slow done" || o.IsError {
		t.Errorf("output %+v; want the finished turn", o)
	}
	if err := h.result(t, 10*time.Second); err != nil {
		t.Errorf("Run after a stop = %v, want nil", err)
	}
}

func TestRunIdleTimeout(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Idle = 300 * time.Millisecond })
	start := time.Now()
	h.start(t)
	if err := h.result(t, 10*time.Second); err != nil {
		t.Errorf("Run after idle = %v, want nil", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("idle stop after %v, want about 300ms", d)
	}
}

// Claude Code that ignores its closed input and SIGTERM is killed after the
// stop grace: the run is bounded.
func TestRunStopIsBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.StopGrace = 300 * time.Millisecond })
	h.start(t)
	h.gw.Prompt("p1", "ignore-eof")
	h.output(t)
	start := time.Now()
	h.gw.Send(ipc.Input{Kind: ipc.InputClose})
	if err := h.result(t, 15*time.Second); err != nil {
		t.Errorf("Run = %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("stop took %v", d)
	}
	for _, r := range h.records(t) {
		if err := syscall.Kill(r.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("fake claude %d still exists after Run (%v)", r.PID, err)
		}
	}
}

// An input that does not validate is not answered (it has no usable id);
// the agent goes on with the next.
func TestRunIgnoresInvalidInput(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	h.gw.Send(ipc.Input{Kind: ipc.InputPrompt, ID: "bad id!", Text: "x"})
	h.gw.Send(ipc.Input{Kind: "shutdown-everything"})
	h.gw.Prompt("p2", "after")
	if o := h.output(t); o.InputID != "p2" || o.Result != "echo after #1" {
		t.Errorf("output %+v; want p2 answered as the first turn", o)
	}
}

func TestRunFailsWhenClaudeIsMissing(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Claude = "no-such-claude"; c.Path = t.TempDir() })
	err := Run(context.Background(), h.cfg)
	if err == nil || !strings.Contains(err.Error(), "no-such-claude") {
		t.Errorf("Run = %v", err)
	}
}

// The listener is freed when Run ends, so a later run can take the port.
func TestRunReleasesTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for i := range 2 {
		h := newHarness(t, func(c *Config) { c.Listen = addr })
		h.start(t)
		h.gw.Send(ipc.Input{Kind: ipc.InputClose})
		if err := h.result(t, 10*time.Second); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
}
