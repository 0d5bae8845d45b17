package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
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

// R13: the daemon is killed (-9) while a group's container keeps calling
// the API through its socket; the next daemon starts, and a new run of the
// group opens a new socket. None of the leftover's calls reaches the
// upstream after the kill: its socket directory is gone for good, and the
// leftover itself is removed before any socket opens.
func TestKilledDaemonsContainerCannotReachTheNext(t *testing.T) {
	w := newWorld(t, "podman")
	w.register("family", false)
	const marker = "LEFTOVER-PROBE"
	probe := `nohup sh -c 'for i in $(seq 1 300); do curl -s -o /dev/null --max-time 2 --unix-socket ` + ipc.ContainerSocket +
		` -H "Content-Type: application/json" -d "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"` + marker + `\"}]}"` +
		` http://gateway/v1/messages; sleep 0.2; done' >/dev/null 2>&1 & echo STARTED`
	w.fake.Script(fakeapi.ToolUse("Bash", map[string]any{"command": probe}), fakeapi.Text("probing"), fakeapi.Text("fresh run"))
	probes := func() int {
		n := 0
		for _, r := range w.fake.Requests() {
			// The probe's own calls, not a later turn whose history quotes it.
			if !fakeapi.IsMain(r) && strings.Contains(string(r.Body), marker) {
				n++
			}
		}
		return n
	}
	w.start()
	if out, errOut, code := w.nanoclaw("send", "--group", "family", "--wait=2m", "start probing"); code != 0 || !strings.Contains(out, "probing") {
		t.Fatalf("send: exit %d: %s%s", code, out, errOut)
	}
	for deadline := time.Now().Add(30 * time.Second); probes() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the probe never reached the upstream through the first daemon")
		}
	}

	w.d.mu.Lock()
	oldName := ""
	for _, rec := range w.d.lines {
		if rec["msg"] == "agent started" {
			oldName, _ = rec["container"].(string)
		}
	}
	w.d.mu.Unlock()
	if oldName == "" {
		t.Fatal("no container name in the first daemon's log")
	}
	w.d.cmd.Process.Kill() // the container stays: conmon keeps it
	w.d.wait(t)
	w.start() // removes the leftover before any socket opens
	after := probes()
	if out, errOut, code := w.nanoclaw("send", "--group", "family", "--wait=2m", "hello again"); code != 0 || !strings.Contains(out, "fresh run") {
		t.Fatalf("send after the restart: exit %d: %s%s", code, out, errOut)
	}
	time.Sleep(2 * time.Second) // ten probe periods with the new run's socket open
	if n := probes(); n != after {
		t.Errorf("%d of the leftover's calls reached the upstream after the restart", n-after)
	}
	// The leftover is gone: removed by the new daemon, or ended by itself
	// when its host went away.
	if out, _ := exec.Command(testenv.Runtime(t, "podman"), "ps", "--all", "--format", "{{.Names}}", "--filter", "name="+oldName).Output(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("the leftover container %s is still there", out)
	}
	w.stop()
}
