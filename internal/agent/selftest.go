package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// The findings the host adds to the probe's report.
const (
	FindingMounts  = "only the expected mounts"
	FindingSources = "no credential in what is mounted"
)

// SelfTest starts a container for g exactly as Start starts its agent —
// the same checks, directories, container user, gateway socket, egress
// policy and hardened spec — but runs the boundary probe
// (`nanoclaw-agent selftest`) in it instead of the agent, and returns the
// probe's report with the host's own findings added: that every mount
// point is one the spec made or the runtime always adds, and that no
// mount's host-side source holds the real credential's bytes (which the
// probe is never given). The container and its socket directory are gone
// when it returns, whatever happened.
//
// g is a throwaway non-main group: nothing is stored for it (its container
// id is selfTestID, not one from the store), so the Runner's directories
// should be a scratch data home too (doctor.Sandbox makes one).
func (r *Runner) SelfTest(ctx context.Context, g store.Group) (selftest.Report, error) {
	if g.IsMain {
		return selftest.Report{}, errors.New("self-test: the probe runs as a non-main group, as an attacker's would")
	}
	s := newContainer(r, g)
	out := &bytes.Buffer{}
	s.probe = []string{"selftest"}
	for _, a := range hostAddrs() {
		s.probe = append(s.probe, "--host-addr", a.String())
	}
	s.probeOut = &cappedWriter{w: out, left: selftest.MaxReportBytes}
	if err := r.launch(ctx, s, StartOptions{Isolated: true}); err != nil {
		return selftest.Report{}, err
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		s.stop(context.WithoutCancel(ctx))
		<-s.Done()
		return selftest.Report{}, fmt.Errorf("self-test: %w", ctx.Err())
	}
	rep, err := selftest.Decode(out.Bytes())
	if err != nil {
		return selftest.Report{}, fmt.Errorf("self-test: the probe's report: %w; its output: %s", err, tail(s.logPath, 1024))
	}
	rep.Findings = append(rep.Findings, checkMounts(s.ran, rep.Mounts),
		scanSources(s.ran.Mounts, [][]byte{[]byte(r.opt.Gateway.APIKey), []byte(r.opt.Gateway.OAuthToken)}))
	return rep, nil
}

// identity is the host id the container runs as: the group's own from the
// store, or for the probe selfTestID, so a self-test stores nothing.
func (s *Container) identity(ctx context.Context) (int, error) {
	if s.probe == nil {
		return s.r.identity(ctx, s.group.Folder)
	}
	if os.Geteuid() != 0 {
		return -1, nil
	}
	used, err := hostIDs("/etc")
	if err != nil {
		return 0, err
	}
	return selfTestID(used)
}

// selfTestID is the last id of the groups' range that no account of the
// host uses: the store hands ids out from the bottom, so this one belongs
// to no group (R2: nor to any account).
func selfTestID(used usedIDs) (int, error) {
	for id := FirstContainerID + containerIDs - 1; id >= FirstContainerID; id-- {
		if !used.taken(id) {
			return id, nil
		}
	}
	return 0, errors.New("self-test: every id of the container range is used by this host's accounts")
}

// maxHostAddrs bounds the addresses handed to the probe.
const maxHostAddrs = 16

// hostAddrs are the host's own addresses the probe must not reach (R4):
// those of its interfaces but loopback (the container's own loopback is a
// different one) and link-local ones (no zone can name them in there).
func hostAddrs() []netip.Addr {
	all, _ := egress.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range all {
		a = a.Unmap().WithZone("")
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || slices.Contains(out, a) {
			continue
		}
		if out = append(out, a); len(out) == maxHostAddrs {
			break
		}
	}
	return out
}

// runtimeMounts are the mount points docker and podman add to every
// container: name resolution, podman's user files for a uid the image
// does not know, its marker file, and each runtime's init.
var runtimeMounts = []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/passwd", "/etc/group",
	"/run/.containerenv", "/run/podman-init", "/dev/init", "/sbin/docker-init", "/usr/sbin/docker-init"}

// pseudoFS are the trees of kernel file systems every container has; what
// is mounted under them is the runtime's masking and cgroups.
var pseudoFS = []string{"/proc", "/sys", "/dev"}

// checkMounts compares what the probe saw mounted with the spec (finding
// 3): each of the spec's mounts is there, read-only where the spec says
// so; the root is read-only; and nothing else is mounted but the tmpfs
// mounts of the spec, the kernel's file systems and the runtime's own
// files, those read-only.
func checkMounts(spec sandbox.Spec, seen []selftest.Mount) selftest.Finding {
	f := selftest.Finding{Name: FindingMounts, OK: true}
	byPoint := make(map[string]selftest.Mount, len(seen))
	for _, m := range seen {
		byPoint[m.Point] = m // a later mount on the same point is the one visible
	}
	var bad []string
	want := map[string]bool{"/": true}
	for _, m := range spec.Mounts {
		want[m.Target] = true
		got, ok := byPoint[m.Target]
		switch {
		case !ok:
			bad = append(bad, m.Target+" is missing")
		case m.ReadOnly && !got.ReadOnly:
			bad = append(bad, m.Target+" is writable, the spec says read-only")
		}
	}
	for _, t := range spec.Tmpfs {
		want[t.Target] = true
		if got, ok := byPoint[t.Target]; !ok || got.FSType != "tmpfs" {
			bad = append(bad, t.Target+" is not the spec's tmpfs")
		}
	}
	if root, ok := byPoint["/"]; !ok || !root.ReadOnly {
		bad = append(bad, "/ is not mounted read-only")
	}
	for _, m := range seen {
		switch {
		case want[m.Point]:
		case slices.ContainsFunc(pseudoFS, func(p string) bool { return m.Point == p || strings.HasPrefix(m.Point, p+"/") }):
		case slices.Contains(runtimeMounts, m.Point) && m.ReadOnly:
		default:
			bad = append(bad, fmt.Sprintf("unexpected mount %s (%s, read-only %v)", m.Point, m.FSType, m.ReadOnly))
		}
	}
	if len(bad) > 0 {
		f.OK, f.Detail = false, strings.Join(bad, "; ")
		return f
	}
	f.Detail = fmt.Sprintf("%d mount points: the spec's %d bind and %d tmpfs mounts, the kernel's and the runtime's", len(seen), len(spec.Mounts), len(spec.Tmpfs))
	return f
}

// Bounds of the host's scan of the mounts' sources.
const (
	scanBytes = 1 << 30
	scanTime  = 10 * time.Second
	scanFiles = 100_000
)

// scanSources looks for the exact bytes of each non-empty secret in the
// host-side source of every mount: the trees a container writes are
// hostile, so they are walked through os.Root and no link is followed.
func scanSources(mounts []sandbox.Mount, secrets [][]byte) selftest.Finding {
	f := selftest.Finding{Name: FindingSources, OK: true}
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(b []byte) bool { return len(b) == 0 })
	if len(secrets) == 0 {
		f.Detail = "no credential is configured on the host; nothing to look for"
		return f
	}
	sc := &sourceScan{secrets: secrets, deadline: time.Now().Add(scanTime), left: scanBytes}
	for _, m := range mounts {
		sc.source(m.Source)
	}
	f.Detail = fmt.Sprintf("%d files (%d MiB) in %d mount sources hold no credential", sc.files, sc.read>>20, len(mounts))
	if sc.cut > 0 {
		f.Detail += fmt.Sprintf("; %d files not read within the bounds (%d MiB, %v, %d files)", sc.cut, scanBytes>>20, scanTime, scanFiles)
	}
	if len(sc.errs) > 0 {
		f.Detail += "; unreadable: " + strings.Join(sc.errs, ", ")
	}
	if len(sc.found) > 0 {
		f.OK = false
		f.Detail = "the host's credential is in " + strings.Join(sc.found, ", ") + "; " + f.Detail
	}
	return f
}

// sourceScan is one scan's bounds and what it found.
type sourceScan struct {
	secrets     [][]byte
	deadline    time.Time
	left        int64
	files, cut  int
	read        int64
	found, errs []string
}

// source scans one mount source: a directory through os.Root, or a file.
// The source's own path is the host's (the runtime follows it too); inside
// a directory no link is followed.
func (sc *sourceScan) source(src string) {
	real, err := filepath.EvalSymlinks(src)
	if errors.Is(err, fs.ErrNotExist) {
		return // the run's socket directory goes with the container
	}
	if err != nil {
		sc.errs = append(sc.errs, src)
		return
	}
	src = real
	st, err := os.Lstat(src)
	if err != nil {
		sc.errs = append(sc.errs, src)
		return
	}
	if !st.IsDir() {
		root, err := os.OpenRoot(filepath.Dir(src))
		if err != nil {
			sc.errs = append(sc.errs, src)
			return
		}
		defer root.Close()
		sc.file(root, filepath.Base(src), src)
		return
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		sc.errs = append(sc.errs, src)
		return
	}
	defer root.Close()
	fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // errors are noted per entry
		if err != nil {
			sc.errs = append(sc.errs, path.Join(src, p))
			return nil
		}
		if d.Type().IsRegular() {
			sc.file(root, p, filepath.Join(src, p))
		}
		return nil
	})
}

// file scans one regular file of root, opened without following a link
// and without blocking on a FIFO swapped in after the walk saw a file.
func (sc *sourceScan) file(root *os.Root, name, shown string) {
	if sc.left <= 0 || sc.files+sc.cut >= scanFiles || time.Now().After(sc.deadline) {
		sc.cut++
		return
	}
	file, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		sc.errs = append(sc.errs, shown)
		return
	}
	defer file.Close()
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		return
	}
	longest := 0
	for _, s := range sc.secrets {
		longest = max(longest, len(s))
	}
	buf := make([]byte, max(1<<20, 2*longest))
	keep := 0
	r := io.LimitReader(file, sc.left)
	for {
		n, err := io.ReadFull(r, buf[keep:])
		sc.read += int64(n)
		sc.left -= int64(n)
		data := buf[:keep+n]
		for _, s := range sc.secrets {
			if bytes.Contains(data, s) {
				sc.found = append(sc.found, shown)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				sc.errs = append(sc.errs, shown)
			}
			sc.files++
			return
		}
		// Keep the end of this chunk: a secret may straddle two.
		keep = min(longest-1, len(data))
		copy(buf, data[len(data)-keep:])
	}
}

// tail is the end of the run log at path (the host's own file), for an
// error that must say what the probe printed.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no run log)"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart) //nolint:errcheck // a failed seek reads from the start
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}
