package main

import (
	"context"
	"fmt"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
)

const mountsHelp = `Check the mount allowlist (` + "`" + `mount-allowlist.json` + "`" + ` in the config dir).

  nanoclaw mounts check [--group FOLDER]

It validates the file (a malformed file is an error), prints its roots and
blocked patterns, and with --group prints each of that group's additional
mounts with its verdict, as the next run of the group would decide it.`

func (m *Main) runMounts(ctx context.Context, args []string) error {
	fs := m.flagSet("mounts", "check [--group FOLDER]", mountsHelp)
	group := fs.String("group", "", "also judge this group's additional mounts")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] != "check" {
		return usagef("which mounts command? check")
	}
	if err := m.parse(fs, rest[1:]); err != nil {
		return err
	}
	if len(fs.Args()) > 0 {
		return usagef("check takes no arguments, got %q", fs.Args()[0])
	}
	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}
	al, err := mounts.LoadAllowlist(cfg.AllowlistPath())
	if err != nil {
		return err
	}
	w := m.Stdout
	if !al.Exists {
		fmt.Fprintf(w, "no mount allowlist at %s: no extra mounts are allowed\n", al.File)
	} else {
		fmt.Fprintf(w, "allowlist %s\nallowed roots:\n", al.File)
		if len(al.Roots) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		for _, r := range al.Roots {
			mode := "read-only "
			if r.AllowReadWrite {
				mode = "read-write"
			}
			line := fmt.Sprintf("  %s %s", mode, r.Path)
			if r.Resolved != "" && r.Resolved != r.Path {
				line += " (= " + r.Resolved + ")"
			}
			if r.Problem != "" {
				line += " UNUSABLE: " + r.Problem
			}
			if r.Description != "" {
				line += "  # " + r.Description
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintf(w, "non-main groups forced read-only: %v\n", al.NonMainReadOnly)
	}
	fmt.Fprintf(w, "blocked patterns: %v\n", al.Blocked())
	if *group == "" {
		return nil
	}
	st, err := daemon.OpenStore(ctx, cfg, m.Logger)
	if err != nil {
		return err
	}
	defer st.Close()
	g, found, err := st.GetGroup(ctx, *group)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("no group %q", *group)
	}
	fmt.Fprintf(w, "group %s (main: %v):\n", g.Folder, g.IsMain)
	if len(g.Config.AdditionalMounts) == 0 {
		fmt.Fprintln(w, "  no additional mounts")
	}
	for _, mt := range g.Config.AdditionalMounts {
		fmt.Fprintln(w, "  "+mounts.Describe(al.Check(mt, g.IsMain, protectedPaths(cfg)...)))
	}
	return nil
}

// protectedPaths are what no extra mount may overlap: the data home, the
// config dir and the binaries' directories (R7; the runner protects the
// same, from its own options).
func protectedPaths(cfg *config.Config) []string {
	return mounts.OwnDirs(cfg.Home, cfg.ConfigDir, cfg.AgentBinary)
}
