package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/status"
)

// status --group answers "why didn't it reply?" from the trace: a message
// without the trigger, and one whose run failed, each say so; from the
// running daemon and, after it stopped, from the database.
func TestStatusTraceSaysWhyThereWasNoReply(t *testing.T) {
	w := newWorld(t, "podman")
	w.register("family", true)
	w.start()

	if _, errOut, code := w.nanoclaw("send", "--group", "family", "--sender", "Carol", "--wait", "what a lovely day"); code != 0 {
		t.Fatalf("untriggered send: exit %d: %s", code, errOut)
	}
	out, errOut, code := w.nanoclaw("status", "--group", "family")
	if code != 0 || !strings.Contains(out, "ignored") || !strings.Contains(out, "only a message that starts with @Andy, mentions the assistant or replies to it asks for an answer") {
		t.Fatalf("status --group after an untriggered message: exit %d\n%s\n%s", code, out, errOut)
	}

	w.fake.Script(fakeapi.Error(400, "invalid_request_error", "prompt is too long for this model"))
	w.nanoclaw("send", "--group", "family", "--sender", "Bob", "--wait", "@Andy help")
	out, _, _ = w.nanoclaw("status", "--group", "family")
	for _, want := range []string{"stored", "queued", "started", "prompted", "failed", "the run failed", "RECENT ERRORS"} {
		if !strings.Contains(out, want) {
			t.Errorf("status --group after a failed run lacks %q:\n%s", want, out)
		}
	}

	out, _, code = w.nanoclaw("status", "--json")
	var rep status.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v:\n%s", code, err, out)
	}
	if !rep.Running || rep.Queue == nil || rep.Queue.Limit < 1 || len(rep.Groups) != 2 || len(rep.Errors) != 1 {
		t.Errorf("status --json of the running daemon: %+v", rep)
	}
	if len(rep.Channels) == 0 || rep.Channels[0].Name != "local" || !rep.Channels[0].Connected || rep.Channels[0].LastEvent.IsZero() {
		t.Errorf("channels: %+v", rep.Channels)
	}

	w.stop()
	out, _, code = w.nanoclaw("status", "--group", "family")
	if code != 0 || !strings.Contains(out, "not running") || !strings.Contains(out, "the run failed") {
		t.Errorf("status --group with the daemon down: exit %d\n%s", code, out)
	}
	if _, errOut, code := w.nanoclaw("status", "--group", "nosuch"); code == 0 || !strings.Contains(errOut, "no group \"nosuch\"") {
		t.Errorf("status of an unknown group: exit %d, %s", code, errOut)
	}
}
