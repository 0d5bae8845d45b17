package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// unitContainer is a Container with no container, for the host-side protocol.
func unitContainer(t *testing.T) (*Container, *store.Store) {
	t.Helper()
	st := testenv.OpenStore(t, filepath.Join(t.TempDir(), "t.db"), store.Options{})
	if err := st.PutGroup(context.Background(), store.Group{Folder: "g", Name: "g", Trigger: "@Andy", AddedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(Options{Store: st, SessionsDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	s := newContainer(r, store.Group{Folder: "g"})
	s.save = true
	return s, st
}

// R15: a container that posts many answers to one prompt gets the first
// accepted and every other refused at once: no deliver blocks, nothing is
// held after the prompt is answered.
func TestDeliverFirstAnswerWins(t *testing.T) {
	s, _ := unitContainer(t)
	ch := make(chan ipc.Output, 1)
	s.waiting["p1"] = ch
	big := strings.Repeat("x", 1<<20)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.deliver(ipc.Output{InputID: "p1", Result: big}) == nil {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deliver blocked: goroutines pinned by a container's extra answers")
	}
	if accepted != 1 || len(ch) != 1 || len(s.waiting) != 0 {
		t.Errorf("accepted %d answers, %d queued, %d prompts still waiting; want 1, 1, 0", accepted, len(ch), len(s.waiting))
	}
}

// R17: a session id is kept only with an accepted answer to a waiting
// prompt; one posted without a prompt (or to another prompt) is not.
func TestDeliverKeepsOnlyAnAnsweredSession(t *testing.T) {
	s, st := unitContainer(t)
	const forged, real = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	if err := s.deliver(ipc.Output{InputID: "nobody-asked", SessionID: forged}); err == nil {
		t.Error("an answer to no prompt was accepted")
	}
	if id, _ := st.Session(context.Background(), "g"); id != "" {
		t.Errorf("an unasked answer's session id was kept: store %q", id)
	}
	s.waiting["p"] = make(chan ipc.Output, 1)
	if err := s.deliver(ipc.Output{InputID: "p", SessionID: real}); err != nil {
		t.Fatal(err)
	}
	if id, _ := st.Session(context.Background(), "g"); id != real {
		t.Errorf("stored session %q, want %q", id, real)
	}
}

// R17: a stored session whose transcript is missing, or whose id is not
// one, is cleared and the start goes fresh rather than failing for good.
func TestResumableClearsABogusSession(t *testing.T) {
	s, st := unitContainer(t)
	r := s.r
	ctx := context.Background()
	const id = "33333333-3333-4333-8333-333333333333"
	st.SetSession(ctx, "g", id)
	if got := r.resumable(ctx, "g", id); got != "" {
		t.Errorf("resumable(no transcript) = %q", got)
	}
	if got, _ := st.Session(ctx, "g"); got != "" {
		t.Errorf("the bogus session is still stored: %q", got)
	}
	dir := filepath.Join(r.opt.SessionsDir, "g", ".claude", claudeProjectDir)
	writeFile(t, filepath.Join(dir, id+".jsonl"), "{}\n", 0o600)
	if got := r.resumable(ctx, "g", id); got != id {
		t.Errorf("resumable(with transcript) = %q, want %q", got, id)
	}
	if got := r.resumable(ctx, "g", "../../etc/passwd"); got != "" {
		t.Errorf("resumable(invalid id) = %q", got)
	}
}

// R17: an error answer's session id is not kept (the agent's error output
// for a failed resume carries the old id).
func TestDeliverKeepsNoErrorSession(t *testing.T) {
	s, st := unitContainer(t)
	const id = "44444444-4444-4444-8444-444444444444"
	s.waiting["p"] = make(chan ipc.Output, 1)
	if err := s.deliver(ipc.Output{InputID: "p", SessionID: id, IsError: true, Error: "No conversation found"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Session(context.Background(), "g"); got != "" || s.answered {
		t.Errorf("an error answer counted: stored %q, answered %v", got, s.answered)
	}
}

// R17: resumed runs that end without a good answer clear the stored
// session the second time in a row, at once when Claude Code says the
// session does not exist, and never when the host stopped the run itself.
func TestSettleResume(t *testing.T) {
	ctx := context.Background()
	const id = "55555555-5555-4555-8555-555555555555"
	run := func(s *Container, answered, hostStopped bool, code int) {
		s.resumed, s.answered, s.hostStopped = true, answered, hostStopped
		s.settleResume(code)
	}
	s, st := unitContainer(t)
	st.SetSession(ctx, "g", id)
	stored := func() string { got, _ := st.Session(ctx, "g"); return got }

	run(s, false, false, 1)
	if stored() != id {
		t.Fatal("one failed resume cleared the session")
	}
	run(s, true, false, 0) // a good answer starts the count again
	run(s, false, true, 137)
	run(s, false, false, 1)
	if stored() != id {
		t.Fatal("a good answer, a host stop and one failure cleared the session")
	}
	run(s, false, false, 0)
	if stored() != "" {
		t.Error("two failed resumes in a row left the session stored")
	}
	st.SetSession(ctx, "g", id)
	run(s, false, false, exitSessionNotFound)
	if stored() != "" {
		t.Error("a session Claude Code does not know is still stored")
	}
}

// A group's run logs stay within their bounds, the newest kept.
func TestPruneRunLogs(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < maxRunLogs+10; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("20260101T0000%02d.000Z-run.log", i)), "x", 0o600)
	}
	current := filepath.Join(dir, "20260101T000100.000Z-run.log")
	writeFile(t, current, "", 0o600)
	pruneRunLogs(dir, current, slog.New(slog.DiscardHandler))
	left, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(left) != maxRunLogs || left[len(left)-1] != current || !strings.HasSuffix(left[0], fmt.Sprintf("%02d.000Z-run.log", 11)) {
		t.Errorf("%d logs left, first %s", len(left), filepath.Base(left[0]))
	}
	big := strings.Repeat("x", maxRunLogBytes/2+1)
	writeFile(t, filepath.Join(dir, "20260101T000200.000Z-big.log"), big, 0o600)
	writeFile(t, filepath.Join(dir, "20260101T000300.000Z-big.log"), big, 0o600)
	pruneRunLogs(dir, current, slog.New(slog.DiscardHandler))
	if left, _ := filepath.Glob(filepath.Join(dir, "*.log")); len(left) != 2 {
		t.Errorf("%d logs left after two large ones; want the newest large one and the current one", len(left))
	}
}

// Every container runs nanoclaw-agent: one that another user could replace
// is refused.
func TestCheckAgentBinary(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, dir, bin string) string // returns the path to check
		want   string                                     // "": accepted; else part of the refusal
	}{
		{"private binary", func(_ *testing.T, _, bin string) string { return bin }, ""},
		{"world-writable binary", func(_ *testing.T, _, bin string) string {
			os.Chmod(bin, 0o777)
			return bin
		}, "another user"},
		{"world-writable directory", func(_ *testing.T, dir, bin string) string {
			os.Chmod(dir, 0o777)
			return bin
		}, "another user"},
		{"link to a private binary", func(t *testing.T, _, bin string) string {
			link := filepath.Join(t.TempDir(), "link")
			os.Symlink(bin, link)
			return link
		}, ""},
		{"missing binary", func(_ *testing.T, dir, _ string) string { return filepath.Join(dir, "missing") }, "make build"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Chmod(dir, 0o755)
			bin := filepath.Join(dir, "nanoclaw-agent")
			writeFile(t, bin, "#!", 0o755)
			err := checkAgentBinary(tc.change(t, dir, bin))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}
