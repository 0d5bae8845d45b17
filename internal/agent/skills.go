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
	// agent left in their place decides where a mount goes.
	groupCover := r.prepareSkillsDir(g, p.group)
	globalCover := g.IsMain && r.prepareSkillsDir(g, p.global)
	if err := skills.Prepare(p.claude); err != nil {
		return st, fmt.Errorf("skills: %w", err)
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
	st.mounts = append(st.mounts, sandbox.Mount{Source: filepath.Join(dst, "merged"), Target: ContainerSkillsDir, ReadOnly: true})
	if groupCover {
		st.mounts = append(st.mounts, sandbox.Mount{Source: filepath.Join(dst, "group"), Target: ipc.ContainerGroupDir + "/skills", ReadOnly: true})
	}
	if globalCover {
		st.mounts = append(st.mounts, sandbox.Mount{Source: filepath.Join(dst, "global"), Target: ipc.ContainerGlobalDir + "/skills", ReadOnly: true})
	}
	return st, nil
}

// prepareSkillsDir makes dir/skills a mount point; when something else is
// in its place it says so and the caller mounts nothing over it.
func (r *Runner) prepareSkillsDir(g store.Group, dir string) bool {
	if err := skills.Prepare(dir); err != nil {
		r.log.Warn("skills: not covered read-only", "group", g.Folder, "err", err)
		return false
	}
	return true
}
