package main

import (
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// A hostile non-main agent calls every main-only and owner-only tool
// straight on its gateway socket (not through the MCP server, which would
// not offer them), with arguments that name main: each is refused by the
// real host, and nothing changes.
func TestNonMainAgentCannotCallMainTools(t *testing.T) {
	w := newWorld(t, "podman")
	w.register("family", false)
	calls := map[string]string{
		"register_group":        `{"jid":"local:evil","name":"Evil","folder":"evil"}`,
		"unregister_group":      `{"folder":"main"}`,
		"configure_group":       `{"folder":"family","egress_mode":"public","egress_allow":["127.0.0.1:*"],"memory_mb":65536}`,
		"list_available_groups": `{}`,
		"refresh_groups":        `{}`,
		"list_groups":           `{}`,
		"get_group":             `{"folder":"main"}`,
		"reset_session":         `{"folder":"main"}`,
	}
	var script strings.Builder
	for name, args := range calls {
		script.WriteString("echo " + name + ": $(curl -s --unix-socket " + ipc.ContainerSocket + " -H 'Content-Type: application/json' -d '" +
			args + "' http://gateway" + ipc.PathToolPrefix + name + "); ")
	}
	script.WriteString("echo END-OF-PROBE")
	w.fake.Script(fakeapi.ToolUse("Bash", map[string]any{"command": script.String()}), fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
		return fakeapi.Text("probe: " + r.ToolResults()[0].Content)
	}))
	w.start()
	defer w.stop()
	before, _, _ := w.nanoclaw("groups", "list")
	out, errOut, code := w.nanoclaw("send", "--group", "family", "--wait=2m", "probe the host")
	if code != 0 || !strings.Contains(out, "END-OF-PROBE") {
		t.Fatalf("send: exit %d: %s%s", code, out, errOut)
	}
	for name := range calls {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, name+": {") {
				line = l
			}
		}
		if !strings.Contains(line, `"error":"not permitted: only the main group manages groups"`) &&
			!(name == "reset_session" && strings.Contains(line, `"error":"unknown tool`)) { // no model may call it
			t.Errorf("%s from a non-main group: %q\n%s", name, line, out)
		}
	}
	after, _, _ := w.nanoclaw("groups", "list")
	if before != after {
		t.Errorf("groups changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	if show, _, _ := w.nanoclaw("groups", "show", "family"); strings.Contains(show, "65536") || strings.Contains(show, "127.0.0.1") {
		t.Errorf("family's sandbox was widened:\n%s", show)
	}
}
