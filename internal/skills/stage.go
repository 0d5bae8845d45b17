package skills

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The three trees of a staging directory.
const (
	// StagedMerged is what the group gets, global and group together
	// (the group's winning by name): mounted as $CLAUDE_CONFIG_DIR/skills.
	StagedMerged = "merged"
	// StagedGlobal is the snapshot of groups/global/skills (mounted over
	// /workspace/global/skills for main).
	StagedGlobal = "global"
	// StagedGroup is the snapshot of the group's own skills (mounted over
	// /workspace/group/skills).
	StagedGroup = "group"
)

// stageMu serializes Stage: the build and leftover names beside dst are
// fixed, so that a crash's leftovers can be found and removed.
var stageMu sync.Mutex

// Stage copies what List reports as used into dst (a host-only directory,
// made if missing, its parent must exist): dst/merged/<name>/… (global and
// group together, the group's winning by name: the $CLAUDE_CONFIG_DIR/skills
// mount), dst/global/<name>/… and dst/group/<name>/… (the snapshots mounted
// over /workspace/global/skills for main and /workspace/group/skills;
// dst/global holds a global skill the group replaced too). It replaces dst's
// previous content whole: it builds dst.new beside it, then swaps the two
// by rename (an atomic exchange on Linux), so a crash leaves the old or the
// new, never a mix; leftovers of a crashed swap are removed next time.
// Directories are 0755, files 0644, or 0755 when the source had any
// execute bit (skills may ship scripts the agent runs): the container's
// user is not the host's. Returns List's result.
//
// A running container that mounted dst keeps the tree it mounted, which
// the swap removes: stage only when no container of the group runs.
func Stage(globalDir, groupDir, dst string) ([]Skill, error) {
	stageMu.Lock()
	defer stageMu.Unlock()
	dst = filepath.Clean(dst)
	if st, err := os.Stat(filepath.Dir(dst)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("stage skills: %s must be an existing directory", filepath.Dir(dst))
	}
	exists := true
	switch st, err := os.Lstat(dst); {
	case errors.Is(err, fs.ErrNotExist):
		exists = false
	case err != nil:
		return nil, fmt.Errorf("stage skills: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("stage skills: %s is %s, not a directory: move it away", dst, kind(st.Mode()))
	}
	building, old := dst+".new", dst+".old"
	// dst's parent is the host's own: removing these by path is safe.
	for _, p := range []string{building, old} {
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("stage skills: remove the leftover %s: %w", p, err)
		}
	}
	all, err := list(globalDir, groupDir, true)
	if err != nil {
		return nil, err
	}
	if err := build(building, all); err != nil {
		os.RemoveAll(building)
		return nil, fmt.Errorf("stage skills: %w", err)
	}
	if !exists {
		if err := os.Rename(building, dst); err != nil {
			os.RemoveAll(building)
			return nil, fmt.Errorf("stage skills: %w", err)
		}
		return public(all), nil
	}
	switch err := swap(building, dst); {
	case err == nil:
		old = building // it holds the old tree now
	case errors.Is(err, errNoExchange):
		// Two renames: a crash between them leaves no dst, never a mix,
		// and the next Stage removes both leftovers and builds it again.
		if err := os.Rename(dst, old); err != nil {
			os.RemoveAll(building)
			return nil, fmt.Errorf("stage skills: %w", err)
		}
		if err := os.Rename(building, dst); err != nil {
			return nil, fmt.Errorf("stage skills: %w", err)
		}
	default:
		os.RemoveAll(building)
		return nil, fmt.Errorf("stage skills: swap %s: %w", dst, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return nil, fmt.Errorf("stage skills: remove the previous %s: %w", old, err)
	}
	return public(all), nil
}

// swap is exchange; tests replace it to take the two-rename way.
var swap = exchange

// errNoExchange is exchange's answer where the system or file system has
// no atomic exchange of two names.
var errNoExchange = errors.New("no atomic exchange here")

// build writes the used skills into the new directory dir.
func build(dir string, all []skill) error {
	if err := mkdir(dir); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, sub := range []string{StagedMerged, StagedGlobal, StagedGroup} {
		if err := mkdirIn(root, sub); err != nil {
			return err
		}
	}
	for _, s := range all {
		if !s.ok {
			continue
		}
		into := []string{s.From} // StagedGlobal and StagedGroup are the From values
		if s.Problem == "" {
			into = append(into, StagedMerged)
		}
		for _, top := range into {
			if err := writeSkill(root, path.Join(top, s.Name), s); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeSkill writes s below at, a new directory of root.
func writeSkill(root *os.Root, at string, s skill) error {
	if err := mkdirIn(root, at); err != nil {
		return err
	}
	for _, d := range s.dirs {
		if err := mkdirIn(root, path.Join(at, d)); err != nil {
			return err
		}
	}
	for _, f := range s.files {
		mode := fs.FileMode(0o644)
		if f.exec {
			mode = 0o755
		}
		out, err := root.OpenFile(path.Join(at, f.rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
		if err != nil {
			return err
		}
		_, err = out.Write(f.data)
		if err == nil {
			err = out.Chmod(mode) // the daemon's umask (077) took bits the container user needs
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// mkdir makes the host-only directory dir 0755 whatever the umask: the
// container's user reads it.
func mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

func mkdirIn(root *os.Root, name string) error {
	if err := root.Mkdir(name, 0o755); err != nil {
		return err
	}
	return root.Chmod(name, 0o755)
}

// Prepare makes dir/skills exist as a real directory (0755) through os.Root,
// so a snapshot can be mounted over it. A symlink, a file or anything else
// there is renamed aside (to skills.moved-TIME, returned as moved) rather
// than refused: a mount point that cannot be made would leave the skills
// writable, and an error would stop every run of the group. dir is a host
// path the host made (a group's folder, groups/global, a Claude state
// directory); what is in it may be the container's.
func Prepare(dir string) (moved string, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("prepare skills: %w", err)
	}
	defer root.Close()
	at := filepath.Join(dir, "skills")
	st, err := root.Lstat("skills")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("prepare skills: %w", err)
	case st.IsDir():
		return "", nil
	default:
		moved = "skills.moved-" + time.Now().UTC().Format("20060102T150405.000000000Z")
		if err := root.Rename("skills", moved); err != nil {
			return "", fmt.Errorf("prepare skills: %s is %s, not a directory, and cannot be moved aside: %w", at, kind(st.Mode()), err)
		}
		moved = filepath.Join(dir, moved)
	}
	if err := root.Mkdir("skills", 0o755); err != nil {
		return moved, fmt.Errorf("prepare skills: %w", err)
	}
	// Fix the mode through a descriptor of the directory just made: a link
	// the agent swapped in since is refused, not followed.
	d, err := root.OpenFile("skills", os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
	if err != nil {
		return moved, fmt.Errorf("prepare skills: %s changed while it was made: %w", at, err)
	}
	defer d.Close()
	if err := d.Chmod(0o755); err != nil {
		return moved, fmt.Errorf("prepare skills: %w", err)
	}
	return moved, nil
}
