package main

// End-to-end: a compaction asked for with /compact in the warm stream-json
// session makes the REAL Claude Code (as uid 1000, against the fake model)
// run the PreCompact hook configured by `nanoclaw-agent run`, which is this
// test's build of nanoclaw-agent, found through Claude Code's PATH; the
// archive must appear in the group folder.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/fakegateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

func TestPreCompactArchiveWithRealClaudeCode(t *testing.T) {
	claude := testenv.ClaudeBinary(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "not root: Claude Code must run as uid 1000 (as in the container) and only root can switch")
	}
	bin := buildAgent(t)
	s := newSandbox(t)

	api := fakeapi.New()
	defer api.Close()
	gw, err := fakegateway.New(s.socket, api)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	api.Script(
		fakeapi.Text("Lovely idea: the garden party is on Saturday marker-answer-1"),
		// The compaction's summary request.
		fakeapi.Text("<summary>The user plans a garden party on Saturday.</summary>"),
		fakeapi.Text("Invitations go out Monday marker-answer-2"),
		fakeapi.Text("<summary>Garden party Saturday, invitations Monday.</summary>"),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// nanoclaw-agent resolves through Claude Code's PATH, as in the image.
	a := startAgent(t, s, claude, "--path", filepath.Dir(bin)+":/usr/bin:/bin")
	gw.Prompt("p1", "Plan the Garden Party for Saturday, marker-prompt-1!")
	o1, err := gw.Output(ctx)
	if err != nil || o1.IsError {
		t.Fatalf("output 1 %+v, %v\nagent stderr:\n%s\nfake:\n%s", o1, err, a.stderr, api.Summary())
	}
	gw.Prompt("p2", "/compact")
	o2, err := gw.Output(ctx)
	if err != nil {
		t.Fatalf("%v\nagent stderr:\n%s\nfake:\n%s", err, a.stderr, api.Summary())
	}
	if o2.IsError {
		t.Errorf("/compact output %+v", o2)
	}
	// A second compaction archives only what came after the first.
	gw.Prompt("p3", "When do the invitations go out?")
	if o3, err := gw.Output(ctx); err != nil || o3.IsError {
		t.Fatalf("output 3 %+v, %v\nagent stderr:\n%s", o3, err, a.stderr)
	}
	gw.Prompt("p4", "/compact")
	if o4, err := gw.Output(ctx); err != nil || o4.IsError {
		t.Fatalf("output 4 %+v, %v\nagent stderr:\n%s", o4, err, a.stderr)
	}
	gw.Send(ipc.Input{Kind: ipc.InputClose})
	a.wait(t, 30*time.Second)

	day := time.Now().Format("2006-01-02")
	files, _ := filepath.Glob(filepath.Join(s.work, "conversations", "*.md"))
	want := []string{filepath.Join(s.work, "conversations", day+"-plan-the-garden-party-for-saturday-marke.md"),
		filepath.Join(s.work, "conversations", day+"-when-do-the-invitations-go-out.md")}
	if !slices.Equal(files, want) {
		t.Fatalf("archives in the group folder: %v; want %v\nagent stderr:\n%s\nfake:\n%s", files, want, a.stderr, api.Summary())
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, w := range []string{"Session: " + o1.SessionID, "Trigger: manual", "**User**:\n\nPlan the Garden Party for Saturday, marker-prompt-1!",
		"**Assistant**:\n\nLovely idea: the garden party is on Saturday marker-answer-1"} {
		if !strings.Contains(md, w) {
			t.Errorf("archive lacks %q:\n%s", w, md)
		}
	}
	if strings.Contains(md, "<summary>") || strings.Contains(md, "/compact") {
		t.Errorf("archive holds the compaction itself:\n%s", md)
	}
	if st, err := os.Stat(filepath.Dir(files[0])); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("conversations dir mode: %v %v; want 0755", st.Mode(), err)
	}
	b2, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	if md2 := string(b2); !strings.Contains(md2, "marker-answer-2") || strings.Contains(md2, "marker-prompt-1") || strings.Contains(md2, "Garden party Saturday") {
		t.Errorf("second archive should hold only the turns after the first compaction:\n%s", md2)
	}
	t.Logf("archive:\n%s", md)
	t.Logf("fake saw:\n%s", api.Summary())
}
