package daemon

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// R13: a run asked for while the runtime is still being prepared (its
// leftovers not yet confirmed gone) waits; when the preparation fails, the
// run fails with its reason, not with a generic one.
func TestAgentGateHoldsRunsUntilTheRuntimeIsPrepared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := &agentGate{ready: make(chan struct{})}
		returned := make(chan error, 1)
		go func() {
			_, err := gate.Start(t.Context(), store.Group{Folder: "family"}, agent.StartOptions{})
			returned <- err
		}()
		synctest.Wait()
		select {
		case err := <-returned:
			t.Fatalf("Start returned before the runtime was prepared: %v", err)
		default:
		}

		cleanup := errors.New("stale containers still there after removal: nanoclaw-family-1")
		gate.err = cleanup
		close(gate.ready)
		if err := <-returned; !errors.Is(err, cleanup) {
			t.Errorf("Start after a failed preparation: %v, want the preparation's error", err)
		}
	})
}

// A run that stops waiting (its context ends: the daemon stops) returns at
// once, with the context's error.
func TestAgentGateWaitEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := &agentGate{ready: make(chan struct{})}
		ctx, cancel := context.WithCancel(t.Context())
		returned := make(chan error, 1)
		go func() {
			_, err := gate.Start(ctx, store.Group{Folder: "family"}, agent.StartOptions{})
			returned <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-returned; !errors.Is(err, context.Canceled) {
			t.Errorf("Start with its context cancelled: %v, want context.Canceled", err)
		}
	})
}
