package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/incontainer"
)

// runHookWith runs `nanoclaw-agent hook args…` as Claude Code does: the
// payload on stdin, the run's environment.
func runHookWith(t *testing.T, payload string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(payload)
	defer func() { stdin = old }()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code = m.Run(context.Background(), append([]string{"hook"}, args...))
	return code, out.String(), errb.String()
}

func TestHookPrecompact(t *testing.T) {
	claudeDir := t.TempDir()
	group := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "internal", "incontainer", "testdata", "handmade-tools.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(claudeDir, "projects", "-workspace-group")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		t.Fatal(err)
	}
	transcript := filepath.Join(tdir, "3c4c28fe-219c-43cd-bbea-e991baf8f0fa.jsonl")
	if err := os.WriteFile(transcript, src, 0o600); err != nil {
		t.Fatal(err)
	}
	// The payload as Claude Code 2.1.332 sends it (recorded), pointing at
	// this test's state dir.
	payload := `{"session_id":"3c4c28fe-219c-43cd-bbea-e991baf8f0fa","transcript_path":"` + transcript +
		`","cwd":"/elsewhere","prompt_id":"733efa12-b8f4-4e1d-96ba-fb341d50bec2","hook_event_name":"PreCompact","trigger":"auto","custom_instructions":null}`
	env := map[string]string{"CLAUDE_CONFIG_DIR": claudeDir, incontainer.EnvGroupDir: group}

	code, out, errOut := runHookWith(t, payload, env, "precompact")
	want := filepath.Join(group, "conversations", time.Now().Format("2006-01-02")+"-n-code-what-s-in-notes-txt.md")
	if code != cli.ExitOK || out != "transcript archived to "+want+"\n" || errOut != "" {
		t.Fatalf("hook: exit %d, stdout %q, stderr %q; want 0 and the archive %s", code, out, errOut, want)
	}
	b, err := os.ReadFile(want)
	if err != nil || !strings.Contains(string(b), "- Trigger: auto compaction") || !strings.Contains(string(b), "It says **hello**.") {
		t.Errorf("archive %q, %v", b, err)
	}
	// Again: a second file, the first untouched.
	if code, _, _ := runHookWith(t, payload, env, "precompact"); code != cli.ExitOK {
		t.Errorf("second run: exit %d", code)
	}
	if _, err := os.Stat(strings.TrimSuffix(want, ".md") + "-2.md"); err != nil {
		t.Errorf("second archive: %v", err)
	}

	// Every failure exits 1, never 2: exit 2 would block the compaction.
	outside := filepath.Join(t.TempDir(), "x.jsonl")
	os.WriteFile(outside, src, 0o600)
	for name, c := range map[string]struct {
		payload string
		env     map[string]string
		args    []string
		inErr   string
	}{
		"not json":           {"{", env, []string{"precompact"}, "hook payload"},
		"other event":        {strings.Replace(payload, "PreCompact", "Stop", 1), env, []string{"precompact"}, "hook_event_name"},
		"transcript outside": {strings.Replace(payload, transcript, outside, 1), env, []string{"precompact"}, "not inside the claude dir"},
		"default claude dir": {payload, map[string]string{incontainer.EnvGroupDir: group}, []string{"precompact"}, "/home/agent/.claude"},
		"no hook name":       {payload, env, nil, "precompact"},
		"unknown hook":       {payload, env, []string{"stop"}, "precompact"},
		"bad flag":           {payload, env, []string{"precompact", "--bogus"}, "bogus"},
		"stray argument":     {payload, env, []string{"precompact", "x"}, "unexpected argument"},
		"payload too big":    {`{"x":"` + strings.Repeat("a", incontainer.MaxHookPayloadBytes) + `"}`, env, []string{"precompact"}, "limit"},
	} {
		code, _, errOut := runHookWith(t, c.payload, c.env, c.args...)
		if code != cli.ExitFailure || !strings.Contains(errOut, c.inErr) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 with %q", name, code, errOut, c.inErr)
		}
	}
	if code, out, _ := runHookWith(t, "", env, "--help"); code != cli.ExitOK || !strings.Contains(out, "never exits 2") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
	ents, _ := os.ReadDir(filepath.Join(group, "conversations"))
	if len(ents) != 2 {
		t.Errorf("%d archives after the failures; want the 2 from before", len(ents))
	}
}
