package agent

import (
	"cmp"
	"path/filepath"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

// spec is the container for this run: the hardened flags come from the
// runtime; the mounts are exactly these, nothing else (finding 3: no project
// root, no data home, no store, no config dir).
func (s *Container) spec(p groupPaths, id int, sessionID string) sandbox.Spec {
	o := s.r.opt
	c := s.group.Config
	mounts := []sandbox.Mount{
		{Source: p.group, Target: ipc.ContainerGroupDir},
		{Source: p.global, Target: ipc.ContainerGlobalDir, ReadOnly: !s.group.IsMain},
		{Source: p.claude, Target: ipc.ContainerClaudeDir},
		{Source: p.run, Target: ipc.ContainerIPCDir, ReadOnly: true},
		{Source: o.AgentBinary, Target: ipc.ContainerAgentBinary, ReadOnly: true},
	}
	mounts = append(mounts, s.skills.mounts...)
	mounts = append(mounts, s.extraMounts()...)
	cmd := []string{ipc.ContainerAgentBinary, "run", "--idle", (o.IdleTimeout + time.Minute).String()}
	if sessionID != "" {
		cmd = append(cmd, "--session", sessionID)
	}
	if model := cmp.Or(c.Model, o.Model); model != "" {
		cmd = append(cmd, "--model", model)
	}
	if s.group.IsMain {
		cmd = append(cmd, "--main")
	}
	shm := 0 // the runtime's default /dev/shm
	if c.Browser {
		// Chromium and agent-browser are in this image only; the agent
		// points agent-browser at the system Chromium and the forwarder.
		cmd = append(cmd, "--browser")
		shm = browserShmMB
	}
	if s.probe != nil {
		cmd = append([]string{ipc.ContainerAgentBinary}, s.probe...)
	}
	return sandbox.Spec{
		Name:    s.name,
		Image:   s.r.image(s.group),
		User:    containerUser(id),
		Workdir: ipc.ContainerGroupDir,
		Mounts:  mounts,
		Tmpfs: []sandbox.Tmpfs{
			{Target: "/tmp", SizeMB: 512},
			{Target: ipc.ContainerHome, SizeMB: 256, Private: true},
		},
		ShmMB:     min(shm, positiveOr(c.MemoryMB, o.MemoryMB)/2),
		MemoryMB:  positiveOr(c.MemoryMB, o.MemoryMB),
		CPUs:      positiveOr(c.CPUs, o.CPUs),
		PidsLimit: positiveOr(c.PidsLimit, o.PidsLimit),
		Cmd:       cmd,
	}
}

// browserShmMB is /dev/shm for Chromium (which agent-browser also tells to
// use /tmp instead, --disable-dev-shm-usage): the runtimes' 64 MB is what
// makes headless Chromium crash on large pages. Its pages count against
// the container's memory limit, so it is capped at half of that.
const browserShmMB = 256

// extraMounts are the group's additional mounts that the allowlist grants.
// The allowlist is read at every run so edits apply without a restart; a
// rejected mount is skipped with a warning saying why (finding 3: nothing is
// mounted that the allowlist, which no container sees, does not allow, and
// never nanoclaw's own data home or config dir).
func (s *Container) extraMounts() []sandbox.Mount {
	o := s.r.opt
	g := s.group
	if len(g.Config.AdditionalMounts) == 0 {
		return nil
	}
	al, err := mounts.LoadAllowlist(o.AllowlistPath)
	if err != nil {
		s.r.log.Error("mount allowlist unreadable; no extra mounts for this run", "group", g.Folder, "err", err)
		return nil
	}
	protected := []string{o.GroupsDir, o.SessionsDir, o.IPCDir,
		filepath.Dir(o.GroupsDir), filepath.Dir(o.SessionsDir), filepath.Dir(o.IPCDir)}
	if o.AllowlistPath != "" {
		protected = append(protected, o.AllowlistPath, filepath.Dir(o.AllowlistPath))
	}
	protected = append(protected, mounts.BinaryDirs(o.AgentBinary)...) // R7: nor the programs every container runs
	var out []sandbox.Mount
	for _, m := range g.Config.AdditionalMounts {
		v := al.Check(m, g.IsMain, protected...)
		if !v.Allowed {
			s.r.log.Warn("extra mount skipped", "group", g.Folder, "host_path", m.HostPath, "container_path", m.ContainerPath, "reason", v.Reason)
			continue
		}
		if v.Reason != "" {
			s.r.log.Warn("extra mount made read-only", "group", g.Folder, "host_path", m.HostPath, "container_path", m.ContainerPath, "reason", v.Reason)
		}
		out = append(out, sandbox.Mount{Source: v.HostPath, Target: v.ContainerPath, ReadOnly: v.ReadOnly})
	}
	return out
}

// positiveOr is v when it is set (positive), else def: a group's own
// limit, or the runner's.
func positiveOr[T int | float64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
