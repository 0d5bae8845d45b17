package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

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

// checkCounts: the gateway itself counted at least one refusal for each
// CONNECT the probe made to a private or host address, and for its API
// call outside the allowlist; and nothing went upstream.
func checkCounts(denied, apiRefused, upstream int64, hostAddrs int) selftest.Finding {
	f := selftest.Finding{Name: FindingGateway, OK: true}
	want := int64(len(selftest.PrivateTargets) + hostAddrs)
	f.Detail = fmt.Sprintf("the gateway refused %d CONNECTs (the probe made %d to private and host addresses) and %d API calls outside its allowlist (the probe made 1); %d calls went upstream",
		denied, want, apiRefused, upstream)
	if denied < want || apiRefused < 1 || upstream != 0 {
		f.OK = false
		f.Detail = "the gateway's own counts do not match the probe's refusals: " + f.Detail
	}
	return f
}

// checkInspection: the runtime's own record of the probe's container —
// read from the runtime, not from inside — shows it as the spec asked: no
// network, no capabilities, a read-only root, no-new-privileges, the
// group's user, the probe as its command and exactly the spec's bind
// mounts.
func checkInspection(ctx context.Context, rt *sandbox.Runtime, spec sandbox.Spec) selftest.Finding {
	f := selftest.Finding{Name: FindingRuntime}
	in, err := rt.Inspect(ctx, spec.Name)
	if errors.Is(err, errors.ErrUnsupported) {
		f.Detail = fmt.Sprintf("%s does not report a container's settings in a form nanoclaw reads: the probe's findings stand alone", rt.Kind)
		return f
	}
	if err != nil {
		f.Detail = err.Error()
		return f
	}
	var bad []string
	if in.NetworkMode != "none" {
		bad = append(bad, fmt.Sprintf("network %q", in.NetworkMode))
	}
	if !in.AllCapsDropped {
		bad = append(bad, "capabilities kept or added")
	}
	if !in.ReadOnlyRoot {
		bad = append(bad, "a writable root")
	}
	if !in.NoNewPrivileges {
		bad = append(bad, "no no-new-privileges")
	}
	if in.User != spec.User {
		bad = append(bad, fmt.Sprintf("user %q, not %q", in.User, spec.User))
	}
	if !slices.Equal(in.Command, spec.Cmd) {
		bad = append(bad, fmt.Sprintf("command %q, not %q", in.Command, spec.Cmd))
	}
	if !sameBinds(in.Mounts, spec.Mounts) {
		bad = append(bad, fmt.Sprintf("bind mounts %v, not the spec's %v", in.Mounts, spec.Mounts))
	}
	if len(bad) > 0 {
		f.Detail = "the runtime records " + strings.Join(bad, "; ")
		return f
	}
	f.OK = true
	f.Detail = fmt.Sprintf("network none, no capabilities, read-only root, no-new-privileges, user %s, command %s, the spec's %d bind mounts", spec.User, spec.Cmd[0], len(spec.Mounts))
	return f
}

// sameBinds: the same mounts, in any order.
func sameBinds(a, b []sandbox.Mount) bool {
	byTarget := func(x, y sandbox.Mount) int { return strings.Compare(x.Target, y.Target) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, byTarget)
	slices.SortFunc(b, byTarget)
	return slices.Equal(a, b)
}
