package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Issue 15, end to end: the owner's skills — one in groups/global/skills,
// one in the group's own skills/ — reach the real Claude Code, which lists
// them in what it sends the model; from inside the container neither can
// be changed: not where Claude Code reads them, not in the group's folder,
// and (main) not through the global folder main may otherwise write.
func TestSkillsReachClaudeCodeAndStayTheOwners(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		skill := func(dir, name, description string) string {
			d := filepath.Join(dir, "skills", name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(d, "SKILL.md")
			body := "---\nname: " + name + "\ndescription: " + description + "\n---\n\nSay SKILL-BODY-" + name + ".\n"
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		groups := h.runner.opt.GroupsDir
		global := skill(filepath.Join(groups, "global"), "table-booking", "Book a restaurant table GLOBALSKILL-7Q")
		own := skill(filepath.Join(groups, "main"), "house-rules", "The house rules of this chat OWNSKILL-3K")
		before := map[string][]byte{}
		for _, p := range []string{global, own} {
			before[p], _ = os.ReadFile(p)
		}

		g := h.group("main", true, store.ContainerConfig{})
		s := h.start(g, StartOptions{})
		defer s.Close(context.Background())
		h.fake.Script(fakeapi.Text("hello"))
		h.prompt(s, "hi")
		// Claude Code lists the skills it found for its Skill tool in the
		// first request of the session.
		req := h.fake.MainRequests()[0]
		for _, want := range []string{"table-booking", "GLOBALSKILL-7Q", "house-rules", "OWNSKILL-3K"} {
			if !strings.Contains(req.AllText(), want) {
				t.Errorf("Claude Code's request does not list the skill's %q", want)
			}
		}

		out := h.bash(s, strings.Join([]string{
			"echo x >> ~/.claude/skills/table-booking/SKILL.md",
			"echo x >> /workspace/global/skills/table-booking/SKILL.md",
			"echo x >> /workspace/group/skills/house-rules/SKILL.md",
			"mkdir ~/.claude/skills/mine",
			"mkdir /workspace/group/skills/mine",
			"rm -rf /workspace/group/skills/house-rules",
			"mv /workspace/group/skills /workspace/group/gone",
			"mv /workspace/global/skills /workspace/global/gone",
			"cat ~/.claude/skills/house-rules/SKILL.md",
		}, "; ")+" 2>&1")
		n := 0
		for _, refusal := range []string{"Read-only file system", "Device or resource busy", "Permission denied"} {
			n += strings.Count(out, refusal)
		}
		if n < 8 {
			t.Errorf("%d of 8 changes refused, want all:\n%s", n, out)
		}
		if !strings.Contains(out, "SKILL-BODY-house-rules") {
			t.Errorf("the group's skill is not readable where Claude Code finds it:\n%s", out)
		}
		for p, b := range before {
			if got, err := os.ReadFile(p); err != nil || string(got) != string(b) {
				t.Errorf("%s changed from inside the container: %q, %v", p, got, err)
			}
		}
		for _, p := range []string{filepath.Join(groups, "main", "gone"), filepath.Join(groups, "global", "gone"), filepath.Join(groups, "main", "skills", "mine")} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s exists: the agent changed its skills", p)
			}
		}
	})
}
