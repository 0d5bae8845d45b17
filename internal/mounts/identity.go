package mounts

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/mountinfo"
)

// OwnDirs are nanoclaw's own directories, which no extra mount may overlap:
// the data home, the config dir and the directories of both binaries
// (BinaryDirs). Empty arguments are left out.
func OwnDirs(home, configDir, agentBinary string) []string {
	dirs := slices.DeleteFunc([]string{home, configDir}, func(d string) bool { return d == "" })
	return append(dirs, BinaryDirs(agentBinary)...)
}

// BinaryDirs are the directories holding nanoclaw's programs: the running
// host binary's and the agent binary's, which is mounted into every
// container. R7: a read-write mount of either would let one group replace
// the program every later container, main's included, runs. A binary
// reached through a symlink is protected at both ends.
func BinaryDirs(agentBinary string) []string {
	var dirs []string
	add := func(bin string) {
		if bin == "" || !filepath.IsAbs(bin) {
			return
		}
		dirs = append(dirs, filepath.Dir(bin))
		if real, err := filepath.EvalSymlinks(bin); err == nil && filepath.Dir(real) != filepath.Dir(bin) {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	if exe, err := os.Executable(); err == nil {
		add(exe)
	}
	add(agentBinary)
	return dirs
}

// sameTree compares a resolved mount path with a protected directory by
// identity rather than by name, and says how they overlap; "" when they do
// not. R7: a bind mount, a second spelling on a case-insensitive file
// system or a symlinked parent cannot hide an overlap, because
//
//   - by file identity (device and inode, os.SameFile): the mount lies
//     inside the protected directory when that directory is the mount path
//     or one of its ancestors, and contains it when the mount path is the
//     directory or one of its ancestors;
//   - by place in its file system (the mount table, on Linux): where the
//     mount path and the directory really are on their device, so a bind
//     mount of a directory inside the protected one, or a file system
//     mounted inside the mount that shows the protected one, is caught too.
func sameTree(mount, protected string, table []mountEntry) string {
	mountInfo, err := os.Stat(mount)
	if err != nil {
		return "" // Check resolved it a moment ago; a vanished path mounts nothing
	}
	if pInfo, err := os.Stat(protected); err == nil {
		for a := mount; ; a = filepath.Dir(a) {
			if info, err := os.Stat(a); err == nil && os.SameFile(info, pInfo) {
				if a == mount {
					return "the same directory under another name"
				}
				return fmt.Sprintf("its ancestor %s is that directory under another name", a)
			}
			if a == filepath.Dir(a) {
				break
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("cannot compare with it: %v", unwrapPath(err))
	}
	// The protected directory need not exist yet: its ancestors are where it
	// would be created.
	for b := protected; ; b = filepath.Dir(b) {
		if info, err := os.Stat(b); err == nil && os.SameFile(info, mountInfo) {
			return fmt.Sprintf("the mount would contain it (%s is the mounted directory under another name)", b)
		}
		if b == filepath.Dir(b) {
			break
		}
	}
	if table == nil {
		return ""
	}
	mdev, mpath, ok := locate(table, mount)
	pdev, ppath, ok2 := locate(table, protected)
	if !ok || !ok2 {
		return ""
	}
	if mdev == pdev {
		switch {
		case within(mpath, ppath):
			return fmt.Sprintf("on device %s it is %s, inside the protected %s", mdev, mpath, ppath)
		case within(ppath, mpath):
			return fmt.Sprintf("on device %s it is %s, which contains the protected %s", mdev, mpath, ppath)
		}
	}
	// Runtimes bind mounts recursively: what is mounted below the path is
	// seen in the container too.
	for _, e := range table {
		if e.point != mount && within(e.point, mount) && e.dev == pdev && (within(e.root, ppath) || within(ppath, e.root)) {
			return fmt.Sprintf("%s, mounted inside it, shows %s of device %s", e.point, e.root, e.dev)
		}
	}
	return ""
}

// mountEntry is one line of /proc/self/mountinfo: a file system's device,
// the directory of it that is mounted, and where.
type mountEntry struct {
	dev   string // "major:minor"
	root  string // the mounted directory, as a path inside the file system
	point string // the mount point
}

// maxMountTable bounds the mount table read (hosts running many containers
// have long ones).
const maxMountTable = 16 << 20

// readMountTable reads /proc/self/mountinfo; nil where there is none (not
// Linux), which leaves the identity checks of sameTree by inode alone.
func readMountTable() []mountEntry {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMountTable+1))
	if err != nil || len(data) > maxMountTable {
		return nil
	}
	var table []mountEntry
	for line := range strings.Lines(string(data)) {
		// id parent major:minor root mount-point options ...
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		table = append(table, mountEntry{dev: f[2], root: mountinfo.Unescape(f[3]), point: mountinfo.Unescape(f[4])})
	}
	return table
}

// locate finds where path p really is: the device of the file system it is
// on and its path inside that file system, from the mount whose mount point
// is the longest prefix of p (the last listed wins: it is mounted on top).
func locate(table []mountEntry, p string) (dev, fsPath string, ok bool) {
	best := -1
	for i, e := range table {
		if within(p, e.point) && (best < 0 || len(e.point) >= len(table[best].point)) {
			best = i
		}
	}
	if best < 0 {
		return "", "", false
	}
	e := table[best]
	rel, err := filepath.Rel(e.point, p)
	if err != nil {
		return "", "", false
	}
	return e.dev, filepath.Join(e.root, rel), true
}
