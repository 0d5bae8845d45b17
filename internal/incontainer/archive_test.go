package incontainer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// realPayload is the PreCompact payload Claude Code 2.1.332 wrote to the
// hook's stdin on /compact (recorded in the e2e test, paths moved to the
// container's).
const realPayload = `{"session_id":"3c4c28fe-219c-43cd-bbea-e991baf8f0fa","transcript_path":"/home/agent/.claude/projects/-workspace-group/3c4c28fe-219c-43cd-bbea-e991baf8f0fa.jsonl","cwd":"/workspace/group","prompt_id":"733efa12-b8f4-4e1d-96ba-fb341d50bec2","hook_event_name":"PreCompact","trigger":"manual","custom_instructions":null}`

var archiveNow = time.Date(2026, 11, 29, 5, 31, 0, 0, time.UTC)

// stateDir makes a Claude state dir holding the testdata transcript src as
// projects/-workspace-group/<name>.
func stateDir(t *testing.T, src, name string) (claudeDir, path string) {
	t.Helper()
	claudeDir = t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", src))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(claudeDir, "projects", "-workspace-group")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return claudeDir, path
}

func TestHookSettings(t *testing.T) {
	var s struct {
		Hooks map[string][]struct {
			Matcher string `json:"matcher"`
			Hooks   []struct{ Type, Command string }
		}
	}
	if err := json.Unmarshal([]byte(HookSettings), &s); err != nil {
		t.Fatal(err)
	}
	pc := s.Hooks["PreCompact"]
	if len(s.Hooks) != 1 || len(pc) != 1 || pc[0].Matcher != "" || len(pc[0].Hooks) != 1 ||
		pc[0].Hooks[0].Type != "command" || pc[0].Hooks[0].Command != "nanoclaw-agent hook precompact" {
		t.Errorf("settings %s: want exactly one PreCompact command hook for every trigger", HookSettings)
	}
	args := ClaudeArgs("", "", "/tmp/mcp.json", "")
	if args[len(args)-1] != "--settings="+HookSettings {
		t.Errorf("ClaudeArgs does not pass the hook settings: %q", args)
	}
}

func TestParseHookPayload(t *testing.T) {
	p, err := ParseHookPayload([]byte(realPayload))
	if err != nil {
		t.Fatalf("recorded payload: %v", err)
	}
	if p.SessionID != "3c4c28fe-219c-43cd-bbea-e991baf8f0fa" || p.Trigger != "manual" || p.Cwd != "/workspace/group" ||
		!strings.HasSuffix(p.TranscriptPath, p.SessionID+".jsonl") {
		t.Errorf("parsed %+v", p)
	}
	for name, body := range map[string]string{
		"not json":       `{"hook_event_name":`,
		"other event":    strings.Replace(realPayload, `"PreCompact"`, `"Stop"`, 1),
		"bad trigger":    strings.Replace(realPayload, `"manual"`, `"sometimes"`, 1),
		"bad session":    strings.Replace(realPayload, `"session_id":"3c4c`, `"session_id":"-3c4c`, 1),
		"no session":     strings.Replace(realPayload, `"session_id":"3c4c28fe-219c-43cd-bbea-e991baf8f0fa"`, `"session_id":""`, 1),
		"relative path":  strings.Replace(realPayload, `"/home/agent/.claude/projects`, `"projects`, 1),
		"not a jsonl":    strings.Replace(realPayload, `.jsonl"`, `.md"`, 1),
		"over the limit": `{"x":"` + strings.Repeat("a", MaxHookPayloadBytes) + `"}`,
	} {
		if _, err := ParseHookPayload([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRenderRecordedTranscript(t *testing.T) {
	// Recorded from Claude Code 2.1.332 in the e2e test: a turn, /compact,
	// a turn, /compact again (API request records left out for size).
	claudeDir, path := stateDir(t, "claude-2.1.332-compacted.jsonl", "s.jsonl")
	entries, cut, err := ReadTranscript(path, claudeDir)
	if err != nil || cut {
		t.Fatalf("read: %v, cut %v", err, cut)
	}
	p := HookPayload{SessionID: "e74ceeca-87cf-4e7a-8ca9-491fcc9217de", Trigger: "auto"}

	// As the first compaction saw it: everything before its boundary.
	var bounds []int
	for i, e := range entries {
		if e.Type == "system" && e.Subtype == "compact_boundary" {
			bounds = append(bounds, i)
		}
	}
	if len(bounds) != 2 {
		t.Fatalf("recorded transcript has %d compact_boundary lines; want 2", len(bounds))
	}
	first, second := bounds[0], bounds[1]
	md := RenderMarkdown(p, entries[:first], false, archiveNow)
	want := "# Conversation archived 2026-11-29 05:31 UTC\n\n- Session: e74ceeca-87cf-4e7a-8ca9-491fcc9217de\n- Trigger: auto compaction\n- Turns: 2\n" +
		"\n**User**:\n\nPlan the Garden Party for Saturday, marker-prompt-1!\n" +
		"\n**Assistant**:\n\nLovely idea: the garden party is on Saturday marker-answer-1\n"
	if md != want {
		t.Errorf("first archive:\n%s\nwant:\n%s", md, want)
	}
	if s := Slug(FirstUserText(entries[:first])); s != "plan-the-garden-party-for-saturday-marke" {
		t.Errorf("first slug %q", s)
	}

	// As the second compaction saw it: only what followed the first (not
	// its summary, not the /compact command records).
	md = RenderMarkdown(p, entries[:second], false, archiveNow)
	if !strings.Contains(md, "- Turns: 2\n\n**User**:\n\nWhen do the invitations go out?\n\n**Assistant**:\n\nInvitations go out Monday marker-answer-2\n") {
		t.Errorf("second archive:\n%s", md)
	}
	for _, bad := range []string{"marker-prompt-1", "summary", "/compact", "Compacted", "system-reminder", "caveat"} {
		if strings.Contains(strings.ToLower(md), strings.ToLower(bad)) {
			t.Errorf("second archive holds %q:\n%s", bad, md)
		}
	}
	if s := Slug(FirstUserText(entries[:second])); s != "when-do-the-invitations-go-out" {
		t.Errorf("second slug %q", s)
	}
}

func TestRenderToolsAndNoise(t *testing.T) {
	claudeDir, path := stateDir(t, "handmade-tools.jsonl", "h.jsonl")
	entries, _, err := ReadTranscript(path, claudeDir)
	if err != nil {
		t.Fatal(err)
	}
	md := RenderMarkdown(HookPayload{SessionID: "s", Trigger: "manual"}, entries, true, archiveNow)
	want := "- Turns: 4\n- Note: the transcript was cut at 67108864 bytes\n" +
		"\n**User**:\n\nÜnïcode & What's in notes.txt?\n" +
		"\n**Assistant**:\n\nLet me look.\n\n_Tool: Read {\"file\\_path\":\"/workspace/group/notes.txt\"}_\n" +
		"\n**Assistant**:\n\n_Tool: Bash {\"command\":\"ls\\n -la \\*\\_x\"}_\n" +
		"\n**Assistant**:\n\nIt says **hello**.\n"
	if !strings.HasSuffix(md, want) {
		t.Errorf("archive:\n%s\nwant it to end with:\n%s", md, want)
	}
	for _, bad := range []string{"SECRET-THOUGHT", "TOOL-OUTPUT-BODY", "SIDECHAIN-TEXT", "SYSTEM-NOISE", "REMINDER-NOISE", "Caveat"} {
		if strings.Contains(md, bad) {
			t.Errorf("archive holds %s", bad)
		}
	}
	if s := Slug(FirstUserText(entries)); s != "n-code-what-s-in-notes-txt" {
		t.Errorf("slug %q", s)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "conversation",
		"¿¡ 🎉 !?":                        "conversation",
		"Hello, World":                   "hello-world",
		"  --Trim--these--  ":            "trim-these",
		"../../etc/passwd":               "etc-passwd",
		strings.Repeat("abcdefghij", 10): "abcdefghijabcdefghijabcdefghijabcdefghij",
		strings.Repeat("a ", 30):         "a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a-a",
		"UPPER lower 123":                "upper-lower-123",
	} {
		got := Slug(in)
		if got != want {
			t.Errorf("Slug(%q) = %q; want %q", in, got, want)
		}
		if len(got) > 40 || strings.HasPrefix(got, "-") || strings.HasSuffix(got, "-") {
			t.Errorf("Slug(%q) = %q: malformed", in, got)
		}
	}
}

func FuzzSlug(f *testing.F) {
	f.Add("Hello, World")
	f.Add("a-b--c ä 😀 " + strings.Repeat("x", 50))
	f.Fuzz(func(t *testing.T, s string) {
		got := Slug(s)
		if got == "" || len(got) > 40 || got[0] == '-' || got[len(got)-1] == '-' || strings.Contains(got, "--") {
			t.Fatalf("Slug(%q) = %q", s, got)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Fatalf("Slug(%q) = %q: character %q", s, got, r)
			}
		}
	})
}

func TestReadTranscriptRefusesOutside(t *testing.T) {
	claudeDir, path := stateDir(t, "handmade-tools.jsonl", "h.jsonl")
	outside := filepath.Join(t.TempDir(), "secret.jsonl")
	if err := os.WriteFile(outside, []byte(`{"type":"user","message":{"role":"user","content":"SECRET"}}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(filepath.Dir(path), "link.jsonl")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{
		"outside":             outside,
		"symlink out":         link,
		"dot-dot":             filepath.Join(claudeDir, "..", filepath.Base(claudeDir)+"x", "a.jsonl"),
		"dot-dot escape":      filepath.Join(claudeDir, "projects", "..", "..", filepath.Base(filepath.Dir(outside)), "secret.jsonl"),
		"the claude dir":      claudeDir,
		"nonexistent":         filepath.Join(claudeDir, "projects", "none.jsonl"),
		"directory, not file": filepath.Dir(path),
	} {
		if _, _, err := ReadTranscript(p, claudeDir); err == nil {
			t.Errorf("%s (%s): read", name, p)
		}
	}
	if _, _, err := ReadTranscript(path, claudeDir); err != nil {
		t.Errorf("inside: %v", err)
	}
}

func TestWriteArchiveNeverOverwrites(t *testing.T) {
	group := t.TempDir()
	dir := filepath.Join(group, ArchiveDirName)
	var paths []string
	for i := 0; i < 3; i++ {
		p, err := WriteArchive(dir, "2026-11-29", "slug", "text "+string(rune('A'+i)))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(p))
	}
	if strings.Join(paths, " ") != "2026-11-29-slug.md 2026-11-29-slug-2.md 2026-11-29-slug-3.md" {
		t.Errorf("names %v", paths)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "2026-11-29-slug.md")); string(b) != "text A" {
		t.Errorf("first archive overwritten: %q", b)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("dir mode %v, %v; want 0755", st.Mode(), err)
	}
	// A symlink at the next name (even dangling) is skipped, never followed.
	target := filepath.Join(t.TempDir(), "target")
	if err := os.Symlink(target, filepath.Join(dir, "2026-11-29-slug-4.md")); err != nil {
		t.Fatal(err)
	}
	p, err := WriteArchive(dir, "2026-11-29", "slug", "x")
	if err != nil || filepath.Base(p) != "2026-11-29-slug-5.md" {
		t.Errorf("after a symlink: %s, %v", p, err)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("write followed the symlink to %s", target)
	}
}

func TestArchive(t *testing.T) {
	claudeDir, path := stateDir(t, "handmade-tools.jsonl", "h.jsonl")
	p, err := ParseHookPayload([]byte(strings.Replace(realPayload, "/home/agent/.claude/projects/-workspace-group/3c4c28fe-219c-43cd-bbea-e991baf8f0fa.jsonl", path, 1)))
	if err != nil {
		t.Fatal(err)
	}
	group := t.TempDir()
	out, err := Archive(p, claudeDir, group, archiveNow)
	if err != nil {
		t.Fatal(err)
	}
	if out != filepath.Join(group, "conversations", "2026-11-29-n-code-what-s-in-notes-txt.md") {
		t.Errorf("archive at %s", out)
	}
	// conversations as a symlink elsewhere: refused.
	group2 := t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(group2, "conversations")); err != nil {
		t.Fatal(err)
	}
	if _, err := Archive(p, claudeDir, group2, archiveNow); err == nil {
		t.Error("archive written through a symlinked conversations dir")
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("files written elsewhere: %v", ents)
	}
	if _, err := Archive(p, claudeDir, "relative/group", archiveNow); err == nil {
		t.Error("relative group dir accepted")
	}
}
