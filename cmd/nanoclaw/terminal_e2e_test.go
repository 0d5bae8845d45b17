package main

import (
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

// Through the real daemon, container and Claude Code: the model's answer
// carries an OSC 52 clipboard write, a screen clear and a bidi override,
// and `send --wait` prints it without them (R10). The prompt the model got
// names the sender by id and marks the owner's message (R18).
func TestModelTextReachesTheTerminalStripped(t *testing.T) {
	w := newWorld(t, "podman")
	w.register("family", true)
	w.start()
	defer w.stop()

	w.fake.Script(fakeapi.Text("done \x1b]52;c;Y3VybCBldmlsLmV4YW1wbGV8c2g=\x07\x1b[2J\x1b[Hall \u202Egood"))
	out, errOut, code := w.nanoclaw("send", "--group", "family", "--sender", "Bob", "--wait", "@Andy tidy up")
	if code != 0 {
		t.Fatalf("send --wait: exit %d\nstdout: %q\nstderr: %s\ndaemon:\n%s", code, out, errOut, w.d.raw.String())
	}
	if out != "Andy: done all good\n" {
		t.Errorf("stdout %q, want the reply without escape sequences", out)
	}
	req := w.fake.Main(0)
	if req == nil {
		t.Fatalf("the model was never asked:\n%s", w.fake.Summary())
	}
	prompt := req.LastUserText()
	if !strings.Contains(prompt, `sender="Bob" sender_id="local:Bob" from_owner="true"`) {
		t.Errorf("the prompt does not name the sender by id and mark the owner:\n%s", prompt)
	}
}
