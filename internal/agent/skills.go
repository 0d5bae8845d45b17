package agent

import (
	"fmt"
	"path/filepath"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/skills"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// ContainerSkillsDir is where Claude Code finds the skills it lists in its
// system prompt: the user skills of its state directory.
const ContainerSkillsDir = ipc.ContainerClaudeDir + "/skills"

// stagedSkills are one run's skill mounts.
type stagedSkills struct {
	mounts []sandbox.Mount
}

// stageSkills copies the owner's skills for group g (groups/global/skills
// and the group's own skills/) into the host's skills/<folder>/ and
// returns the read-only mounts of that copy: where Claude Code looks
// ($CLAUDE_CONFIG_DIR/skills), and over the originals' places, so the
// agent sees its skills but can change none of them — not through its
// own folder, nor (main) through the global one it may otherwise write.
// The originals are container-writable trees, so they are never mounted
// themselves: a link the agent planted there cannot make the runtime
// mount something else of the host's (the copy is read through os.Root).
func (r *Runner) stageSkills(g store.Group, p groupPaths) (stagedSkills, error) {
	var st stagedSkills
	if r.opt.SkillsDir == "" {
		return st, nil
	}
	// The mount points: real directories, made by the host, so nothing the
	// agent left in their place decides where a mount goes, and none is
	// left uncovered (writable) because something else was there.
	dirs := []string{p.claude, p.group}
	if g.IsMain {
		dirs = append(dirs, p.global)
	}
	for _, dir := range dirs {
		moved, err := skills.Prepare(dir)
		if moved != "" {
			r.log.Warn("skills: moved what was in the place of a skills directory aside", "group", g.Folder, "to", moved)
		}
		if err != nil {
			return st, fmt.Errorf("skills: %w", err)
		}
	}
	if err := hostDir(r.opt.SkillsDir); err != nil {
		return st, fmt.Errorf("skills: %w", err)
	}
	dst := filepath.Join(r.opt.SkillsDir, g.Folder)
	got, err := skills.Stage(p.global, p.group, dst)
	if err != nil {
		return st, fmt.Errorf("skills: %w", err)
	}
	for _, s := range got {
		if s.Problem != "" {
			r.log.Warn("skill left out", "group", g.Folder, "skill", s.Name, "from", s.From, "why", s.Problem)
		}
	}
	st.mounts = append(st.mounts,
		sandbox.Mount{Source: filepath.Join(dst, "merged"), Target: ContainerSkillsDir, ReadOnly: true},
		sandbox.Mount{Source: filepath.Join(dst, "group"), Target: ipc.ContainerGroupDir + "/skills", ReadOnly: true})
	if g.IsMain {
		st.mounts = append(st.mounts, sandbox.Mount{Source: filepath.Join(dst, "global"), Target: ipc.ContainerGlobalDir + "/skills", ReadOnly: true})
	}
	return st, nil
}
