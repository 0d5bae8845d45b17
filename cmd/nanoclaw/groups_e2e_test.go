package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

// groupModel reacts to what it is asked, through the real MCP tools and
// Bash, and answers every tool result with "done: <the result>".
func groupModel() fakeapi.Turn {
	return fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
		if res := r.ToolResults(); len(res) > 0 {
			return fakeapi.Text("done: " + res[0].Content)
		}
		text := r.LastUserText()
		switch {
		case strings.Contains(text, "list chats"):
			return fakeapi.ToolUse("mcp__nanoclaw__list_available_groups", map[string]any{})
		case strings.Contains(text, "register family"):
			return fakeapi.ToolUse("mcp__nanoclaw__register_group", map[string]any{"jid": "local:family", "name": "Family", "folder": "family"})
		case strings.Contains(text, "widen family"):
			return fakeapi.ToolUse("mcp__nanoclaw__configure_group", map[string]any{"folder": "family", "egress_mode": "public", "egress_allow": []string{"127.0.0.1:*"}, "memory_mb": 8192})
		case strings.Contains(text, "narrow family"):
			return fakeapi.ToolUse("mcp__nanoclaw__configure_group", map[string]any{"folder": "family", "egress_mode": "none", "memory_mb": 512})
		case strings.Contains(text, "register evil"):
			return fakeapi.ToolUse("mcp__nanoclaw__register_group", map[string]any{"jid": "local:evil", "name": "Evil", "folder": "evil"})
		case strings.Contains(text, "write global memory as main"):
			return fakeapi.ToolUse("Bash", map[string]any{"command": "echo GLOBAL-BY-main >> /workspace/global/CLAUDE.md && echo WROTE || echo DENIED"})
		case strings.Contains(text, "write global memory as family"):
			return fakeapi.ToolUse("Bash", map[string]any{"command": "echo GLOBAL-BY-family >> /workspace/global/CLAUDE.md && echo WROTE || echo DENIED"})
		}
		return fakeapi.Text("hi from the agent")
	})
}

func TestMainRegistersGroupsAndOwnsGlobalMemory(t *testing.T) {
	w := newWorld(t, "podman", "IDLE_TIMEOUT=2s")
	turns := make([]fakeapi.Turn, 100)
	for i := range turns {
		turns[i] = groupModel()
	}
	w.fake.Script(turns...)
	w.start()
	defer w.stop()
	ask := func(group, text string) string {
		t.Helper()
		out, errOut, code := w.nanoclaw("send", "--group", group, "--wait=2m", text)
		if code != 0 {
			t.Fatalf("send to %s: exit %d: %s", group, code, errOut)
		}
		return out
	}

	if out := ask("main", "list chats please"); !strings.Contains(out, `"jid":"local:main"`) || !strings.Contains(out, `"registered":true`) {
		t.Errorf("list_available_groups: %q", out)
	}
	// R6: main's model binds only chats a channel reported; local:family
	// is not one, so the owner registers it.
	if out := ask("main", "register family please"); !strings.Contains(out, "not permitted") || !strings.Contains(out, "nanoclaw groups add family --jid local:family") {
		t.Fatalf("register_group of an unreported chat: %q", out)
	}
	if out, errOut, code := w.nanoclaw("groups", "list"); code != 0 || strings.Contains(out, "family") {
		t.Fatalf("groups after the refused registration: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := w.nanoclaw("groups", "add", "family", "--name", "Family"); code != 0 || !strings.Contains(out, `as group "family"`) {
		t.Fatalf("groups add family: exit %d, %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(w.home, ".nanoclaw", "groups", "family", "CLAUDE.md")); err != nil {
		t.Errorf("the new group has no CLAUDE.md: %v", err)
	}
	if out := ask("family", "@Andy hello"); !strings.Contains(out, "Andy: hi from the agent") {
		t.Errorf("the new group's triggered message: %q", out)
	}
	// The group's own CLAUDE.md reached the model.
	last := w.fake.MainRequests()[len(w.fake.MainRequests())-1]
	if !strings.Contains(last.AllText(), "answering in this chat when a message starts") {
		t.Error("the family group's CLAUDE.md did not reach the model")
	}

	// A non-main group may not register groups; nothing changes.
	if out := ask("family", "@Andy register evil now"); !strings.Contains(out, "not permitted") {
		t.Errorf("non-main register_group: %q", out)
	}
	if out, _, _ := w.nanoclaw("groups", "list"); strings.Contains(out, "evil") || !strings.Contains(out, "family") {
		t.Errorf("groups after the refused registration:\n%s", out)
	}

	// Global memory: main may write it, the others may not.
	global := filepath.Join(w.home, ".nanoclaw", "groups", "global", "CLAUDE.md")
	if out := ask("family", "@Andy write global memory as family"); !strings.Contains(out, "DENIED") {
		t.Errorf("a non-main group wrote global memory: %q", out)
	}
	if out := ask("main", "write global memory as main"); !strings.Contains(out, "WROTE") {
		t.Errorf("main could not write global memory: %q", out)
	}
	data, _ := os.ReadFile(global)
	if !strings.Contains(string(data), "GLOBAL-BY-main") || strings.Contains(string(data), "GLOBAL-BY-family") {
		t.Errorf("global CLAUDE.md after the writes:\n%s", data)
	}

	// R6, through the real tool: main's model may narrow a sandbox but not
	// widen it; the refusal names the owner's command; the owner may.
	if out := ask("main", "widen family now"); !strings.Contains(out, "not permitted") || !strings.Contains(out, "nanoclaw groups set family") {
		t.Errorf("main's model widening family: %q", out)
	}
	if out, _, _ := w.nanoclaw("groups", "show", "family"); !strings.Contains(out, "memory:    default") || strings.Contains(out, "127.0.0.1") {
		t.Errorf("the refused widening was stored:\n%s", out)
	}
	if out := ask("main", "narrow family now"); strings.Contains(out, "not permitted") || !strings.Contains(out, `"egress_mode":"none"`) {
		t.Errorf("main's model narrowing family: %q", out)
	}
	if out, errOut, code := w.nanoclaw("groups", "set", "family", "memory_mb=8192", "egress=public", "allow=192.168.1.10:8080"); code != 0 || !strings.Contains(out, "memory:    8192 MiB") {
		t.Errorf("the owner widening family: exit %d, %s%s", code, out, errOut)
	}

	// Settings from the CLI, validated when made (R14): a refused mount
	// stores nothing, and says why.
	if _, errOut, code := w.nanoclaw("groups", "set", "family", "memory_mb=1", "cpus=1"); code != 1 || !strings.Contains(errOut, "memory") {
		t.Errorf("an invalid setting: exit %d, %s", code, errOut)
	}
	if out, errOut, code := w.nanoclaw("groups", "set", "family", `mounts=[{"host_path":"/root/.ssh","container_path":"keys"}]`, "cpus=1"); code != 1 || !strings.Contains(errOut, "blocked pattern") {
		t.Errorf("groups set of a blocked mount: exit %d, %s%s", code, out, errOut)
	}
	if out, _, code := w.nanoclaw("groups", "show", "family"); code != 0 || strings.Contains(out, "mount:") || !strings.Contains(out, "cpus:      default") {
		t.Errorf("the refused setting was stored, in part or whole:\n%s", out)
	}

	// R17: the owner resets a group's session through the running daemon.
	if st := w.openStore(); st != nil {
		id, _ := st.Session(context.Background(), "family")
		st.Close()
		if id == "" {
			t.Error("family has no session to reset after its run")
		}
	}
	if out, errOut, code := w.nanoclaw("groups", "reset-session", "family"); code != 0 || !strings.Contains(out, "session cleared") {
		t.Errorf("groups reset-session: exit %d, %s%s", code, out, errOut)
	}
	if st := w.openStore(); st != nil {
		id, err := st.Session(context.Background(), "family")
		st.Close()
		if err != nil || id != "" {
			t.Errorf("family's session after the reset: %q, %v", id, err)
		}
	}

	// The CLI: remove keeps the folder.
	out, errOut, code := w.nanoclaw("groups", "remove", "family")
	if code != 0 || !strings.Contains(out, "kept") {
		t.Errorf("groups remove: exit %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(w.home, ".nanoclaw", "groups", "family")); err != nil {
		t.Errorf("the removed group's folder is gone: %v", err)
	}
	if _, errOut, code := w.nanoclaw("groups", "add", "../escape"); code != 1 || !strings.Contains(errOut, "folder") {
		t.Errorf("groups add ../escape: exit %d, %s", code, errOut)
	}
}
