package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// What a run before this feature (or an agent racing the owner) left where
// a skills mount point goes — a link out, a file, a FIFO — is moved aside:
// every run still gets all its read-only covers (main's over global/skills
// too), never starts with one missing, and never stops starting.
func TestStageSkillsMovesWhatIsInTheWay(t *testing.T) {
	base := t.TempDir()
	outside := t.TempDir()
	p := groupPaths{group: filepath.Join(base, "groups", "main"), global: filepath.Join(base, "groups", "global"),
		claude: filepath.Join(base, "sessions", "main", ".claude")}
	for _, d := range []string{p.group, p.global, p.claude} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(outside, "evil"), 0o755)
	os.WriteFile(filepath.Join(outside, "evil", "SKILL.md"), []byte("---\nname: evil\ndescription: planted\n---\n"), 0o644)
	if err := os.Symlink(outside, filepath.Join(p.global, "skills")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(p.claude, "skills")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.group, "skills"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	r := &Runner{opt: Options{SkillsDir: filepath.Join(base, "skills")}, log: slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil))}
	st, err := r.stageSkills(store.Group{Folder: "main", IsMain: true}, p)
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, m := range st.mounts {
		if !m.ReadOnly {
			t.Errorf("%s is mounted writable", m.Target)
		}
		targets = append(targets, m.Target)
	}
	for _, want := range []string{ContainerSkillsDir, ipc.ContainerGroupDir + "/skills", ipc.ContainerGlobalDir + "/skills"} {
		if !slices.Contains(targets, want) {
			t.Errorf("no read-only cover at %s: %v", want, targets)
		}
	}
	for _, d := range []string{p.group, p.global, p.claude} {
		if st, err := os.Lstat(filepath.Join(d, "skills")); err != nil || !st.IsDir() {
			t.Errorf("%s/skills is not a real directory: %v", d, err)
		}
	}
	if n := strings.Count(logs.String(), "moved what was in the place of a skills directory aside"); n != 3 {
		t.Errorf("%d moves logged, want 3:\n%s", n, logs.String())
	}
	if _, err := os.Stat(filepath.Join(base, "skills", "main", "merged", "evil")); err == nil {
		t.Error("the linked skill was staged")
	}
}
