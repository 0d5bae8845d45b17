package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// The host-side ids that containers run as when the daemon runs as root
// (R2): one uid per group, with a gid of the same number, from a range that
// systemd documents as unused (above its container ranges, below
// 2^31), skipping any id the host's account, group or subordinate-id files
// use. No account of the host, and no other group, shares a group's id, so
// another local user can neither connect to its gateway socket nor reach
// its processes through /proc/<pid>/root.
const (
	FirstContainerID = 0x70010000 // 1879113728
	containerIDs     = 1 << 16
)

// identity returns the host id the group's containers run as, their uid
// and gid alike, or -1: the daemon's own user, and nothing is chowned. An
// ordinary user's daemon runs them as that user (rootless podman maps it;
// docker runs them as that uid); a root daemon as the group's own id from
// the store.
func (r *Runner) identity(ctx context.Context, folder string) (int, error) {
	if os.Geteuid() != 0 {
		return -1, nil
	}
	used, err := hostIDs("/etc")
	if err != nil {
		return 0, err
	}
	id, err := r.opt.Store.ContainerID(ctx, folder, FirstContainerID, FirstContainerID+containerIDs, used.taken)
	if err != nil {
		return 0, err
	}
	// Checked at every run: an account made after the id was handed out
	// would otherwise share it.
	if used.taken(id) {
		return 0, fmt.Errorf("group %s's container id %d is now used by an account, group or subordinate id range of this host (see /etc/passwd, group, subuid, subgid): free that id, then start again", folder, id)
	}
	return id, nil
}

// containerUser is the "uid:gid" a container of identity id runs as.
func containerUser(id int) string {
	if id < 0 {
		return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	return fmt.Sprintf("%d:%d", id, id)
}

// usedIDs are the ids the host's account files name, as ranges
// [first, first+count); an account's id is a range of one.
type usedIDs [][2]int

func (u usedIDs) taken(id int) bool {
	return slices.ContainsFunc(u, func(r [2]int) bool { return id >= r[0] && id < r[1] })
}

// maxAccountFile bounds what is read of one account file.
const maxAccountFile = 16 << 20

// hostIDs reads the uids and gids of etc/passwd and etc/group and the
// ranges of etc/subuid and etc/subgid (a missing file names none). Accounts
// served only by NSS modules (LDAP and the like) are not seen: see
// SECURITY.md.
func hostIDs(etc string) (usedIDs, error) {
	var u usedIDs
	for _, f := range []struct {
		name  string
		field int // the id's field, counting from 0
		isSub bool
	}{{"passwd", 2, false}, {"passwd", 3, false}, {"group", 2, false}, {"subuid", 1, true}, {"subgid", 1, true}} {
		file, err := os.Open(filepath.Join(etc, f.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return usedIDs{}, fmt.Errorf("read the host's accounts: %w", err)
		}
		sc := bufio.NewScanner(io.LimitReader(file, maxAccountFile))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) <= f.field || f.isSub && len(fields) < 3 {
				continue
			}
			n, err := strconv.Atoi(fields[f.field])
			if err != nil || n < 0 {
				continue
			}
			count := 1
			if f.isSub {
				if count, err = strconv.Atoi(fields[2]); err != nil || count <= 0 {
					continue
				}
			}
			u = append(u, [2]int{n, n + count})
		}
		file.Close()
		if err := sc.Err(); err != nil {
			return usedIDs{}, fmt.Errorf("read %s: %w", filepath.Join(etc, f.name), err)
		}
	}
	return u, nil
}

// maxSocketPath is the longest path a unix socket can be bound at on
// Linux (sun_path is 108 bytes, one for the terminating NUL).
const maxSocketPath = 107

// groupPaths are a group's host directories for one run.
type groupPaths struct {
	group, global, claude string // container-writable: reached only through os.Root
	run                   string // ipc/<folder>/<container>: this run's gateway socket
	logs                  string // logs/<folder>: the host's own, never mounted
}

// prepareDirs creates the group's directories for one run and hands the
// container-writable ones to the container's user.
//
// R1: everything the host writes for itself (run logs, the socket) lives
// outside every tree a container can write, and the host reaches into such
// a tree only through os.Root from a parent only the host can write, so a
// symlink the agent planted is never followed out of it; ownership and mode
// changes never follow a link.
func (r *Runner) prepareDirs(g store.Group, id int) (groupPaths, error) {
	o := r.opt
	p := groupPaths{
		group:  filepath.Join(o.GroupsDir, g.Folder),
		global: filepath.Join(o.GroupsDir, "global"),
		claude: filepath.Join(o.SessionsDir, g.Folder, ".claude"),

		logs: filepath.Join(o.LogsDir, g.Folder),
	}
	// The host's own directories: the parents of everything below.
	for _, d := range []string{o.GroupsDir, filepath.Join(o.SessionsDir, g.Folder), o.IPCDir, p.logs} {
		if err := hostDir(d); err != nil {
			return p, err
		}
	}
	// The group's folder and Claude state: the group's own, private.
	if err := sandboxDir(o.GroupsDir, g.Folder, id, 0o700); err != nil {
		return p, err
	}
	if err := sandboxDir(filepath.Dir(p.claude), ".claude", id, 0o700); err != nil {
		return p, err
	}
	// Global memory: main's to write, every group's to read.
	globalOwner := -1
	if g.IsMain {
		globalOwner = id
	}
	if err := sandboxDir(o.GroupsDir, "global", globalOwner, 0o755); err != nil {
		return p, err
	}
	// This run's socket directory: new, never one another run holds.
	for {
		p.run = filepath.Join(o.IPCDir, newID()[:8])
		if len(p.run)+1+len(ipc.SocketName) > maxSocketPath {
			return p, fmt.Errorf("the gateway socket path %s is longer than a unix socket allows (%d bytes): choose a shorter data home (NANOCLAW_HOME)", filepath.Join(p.run, ipc.SocketName), maxSocketPath)
		}
		err := os.Mkdir(p.run, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return p, err
		}
	}
	return p, nil
}

// hostDir makes a directory only the daemon's user may enter, refusing a
// symlink in its place.
func hostDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory (%s)", dir, st.Mode().Type())
	}
	return os.Chmod(dir, 0o700)
}

// sandboxDir makes parent/name, a directory a container writes, owned by
// id as uid and gid (unless id < 0) with mode. parent is the host's own. If name is
// owned by someone else — a tree written before each group had its own id,
// or by another group — the whole tree is handed over, without following
// any link. The group's container is not running while this happens (one
// container per group), so nothing inside can change under the walk.
func sandboxDir(parent, name string, id int, mode os.FileMode) error {
	root, err := os.OpenRoot(parent)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Mkdir(name, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, err := root.Lstat(name)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory (%s); move it away", filepath.Join(parent, name), st.Mode().Type())
	}
	if id >= 0 {
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || int(sys.Uid) != id || int(sys.Gid) != id {
			if err := chownTree(root, name, id); err != nil {
				return fmt.Errorf("hand %s to uid %d: %w", filepath.Join(parent, name), id, err)
			}
		} else if err := root.Lchown(name+"/CLAUDE.md", id, id); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// The host writes CLAUDE.md from a template; the agent edits it.
			return err
		}
	}
	// Lstat said directory, and only the host can replace an entry of parent.
	return root.Chmod(name, mode)
}

// chownTree hands every entry under root/name to id, links themselves
// rather than what they point at. os.Root keeps the walk inside the tree.
func chownTree(root *os.Root, name string, id int) error {
	sub, err := root.OpenRoot(name)
	if err != nil {
		return err
	}
	defer sub.Close()
	return fs.WalkDir(sub.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return sub.Lchown(p, id, id)
	})
}
