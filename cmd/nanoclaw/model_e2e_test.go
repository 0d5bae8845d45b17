package main

import (
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

// The model set with groups set reaches the upstream: Claude Code (the
// real one, in the container) asks for it on every turn of the group.
// (Not an older name such as claude-opus-4-1: Claude Code itself asks for
// its newest opus instead.)
func TestGroupModelReachesTheUpstream(t *testing.T) {
	w := newWorld(t, "podman")
	w.register("family", true)
	w.start()
	defer w.stop()
	// The fake API serves no model list: the name is accepted by its form,
	// and the owner is told it was not checked.
	if out, errOut, code := w.nanoclaw("groups", "set", "family", "model=claude-haiku-4-5"); code != 0 || !strings.Contains(errOut, "not checked") || !strings.Contains(out, "model:     claude-haiku-4-5") {
		t.Fatalf("groups set model: exit %d: %s%s", code, out, errOut)
	}

	w.fake.Script(fakeapi.Text("answered on haiku"))
	out, errOut, code := w.nanoclaw("send", "--group", "family", "--sender", "Bob", "--wait", "@Andy hi")
	if code != 0 || !strings.Contains(out, "answered on haiku") {
		t.Fatalf("send --wait: exit %d\nstdout: %s\nstderr: %s\ndaemon:\n%s", code, out, errOut, w.d.raw.String())
	}
	mains := w.fake.MainRequests()
	if len(mains) == 0 {
		t.Fatalf("no model turn:\n%s", w.fake.Summary())
	}
	for _, r := range mains {
		if got := r.Model(); got != "claude-haiku-4-5" {
			t.Errorf("a turn asked for model %q, want claude-haiku-4-5", got)
		}
	}
}
