package service

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// CheckReplaceable refuses a unit whose program another user could
// replace: the service manager runs the binary, and whatever the runtime
// CLIs the daemon starts are found first in PATH, as euid — root for the
// system unit — at every boot. The binary, each PATH entry and every
// directory above them must belong to euid or root and be writable by no
// one else; a sticky directory (like /tmp) is allowed above a path's own
// directory, not as it. This is the rule agent.checkAgentBinary applies to
// nanoclaw-agent.
func (u Unit) CheckReplaceable(euid int) error {
	owners := []uint32{0, uint32(euid)}
	if err := checkReplaceable(u.Exe, owners, false); err != nil {
		return fmt.Errorf("the nanoclaw binary %s: %w", u.Exe, err)
	}
	for _, dir := range filepath.SplitList(u.Path) {
		if err := checkReplaceable(dir, owners, true); err != nil {
			return fmt.Errorf("PATH entry %s: %w", dir, err)
		}
	}
	return nil
}

// checkReplaceable checks path as it is written (a link in it is judged
// by its own directory) and as it resolves. A missing PATH entry is
// judged by the directory it would be made in.
func checkReplaceable(path string, owners []uint32, mayBeMissing bool) error {
	if err := checkChain(path, owners, mayBeMissing); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && mayBeMissing:
		return nil // checkChain judged where it would be made
	case err != nil:
		return fmt.Errorf("%w: install nanoclaw where it stays (e.g. make build, then run bin/nanoclaw service install)", err)
	case real != path:
		return checkChain(real, owners, false)
	}
	return nil
}

// checkChain walks from path up to the root with Lstat. The first two
// names that exist (the path, or where a missing one would be made, and
// its directory) must not be writable by anyone but their owner; above
// them a sticky directory is fine, since no one else may rename or remove
// what is in it.
func checkChain(path string, owners []uint32, mayBeMissing bool) error {
	strict := 2
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) && mayBeMissing:
		case err != nil:
			return err
		default:
			if err := checkOne(p, st, owners, strict > 0); err != nil {
				return err
			}
			strict--
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// checkOne judges one name: its owner, and its mode (a symbolic link's
// own mode means nothing: its directory decides who may change it).
func checkOne(p string, st fs.FileInfo, owners []uint32, strict bool) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	link := st.Mode()&fs.ModeSymlink != 0
	sticky := st.Mode()&fs.ModeSticky != 0
	if !slices.Contains(owners, sys.Uid) || !link && st.Mode().Perm()&0o022 != 0 && (strict || !sticky) {
		return fmt.Errorf("%s can be changed by another user (owner uid %d, mode %v), and the service runs what is there: make it and its directories owned and writable only by you or root (chmod go-w %s)",
			p, sys.Uid, st.Mode().Perm(), p)
	}
	return nil
}
