package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// The findings the host adds to the probe's report: what it sees itself,
// never the container's word alone.
const (
	FindingMounts  = "only the expected mounts"
	FindingSources = "no credential in what is mounted"
	FindingRuntime = "the runtime's record of the container"
	FindingGateway = "refusals counted by the gateway"
)

// HostFindings are the host's findings, in the order SelfTester.Run adds
// them after the probe's (selftest.Findings).
var HostFindings = []string{FindingMounts, FindingSources, FindingRuntime, FindingGateway}

// SelfTester runs the boundary probe (`nanoclaw-agent selftest`) in a
// container started exactly as Start starts a non-main group's agent — the
// same checks, directories, container user, gateway socket, egress policy
// and hardened spec — and checks on the host what the probe cannot vouch
// for itself.
type SelfTester struct {
	r *Runner
}

// NewSelfTester makes the self-test's Runner from opt, the daemon's
// options. Two things differ, each for the host's checks: its gateway
// holds no credential (the probe's calls must not spend the owner's key;
// the host looks for the key's bytes itself), its runtime keeps the
// probe's container after it exits until the host has inspected it.
//
// opt's directories should be a scratch data home (doctor.Sandbox makes
// one): nothing is stored for the throwaway group.
func NewSelfTester(opt Options) *SelfTester {
	opt.Gateway.APIKey, opt.Gateway.OAuthToken = "", ""
	if opt.Runtime != nil {
		rt := *opt.Runtime
		rt.Keep = true
		opt.Runtime = &rt
	}
	return &SelfTester{r: NewRunner(opt)}
}

// Close stops what is still running.
func (t *SelfTester) Close(ctx context.Context) { t.r.Close(ctx) }

// SelfTestScan is what the host brings to a self-test besides the group.
type SelfTestScan struct {
	// Secrets are the credential's bytes, looked for in every mount's
	// source and in Trees.
	Secrets [][]byte
	// Trees are the owner's own trees containers mount (the data home's
	// groups and sessions, the allowlist's roots): the probe's scratch
	// folders hold nearly nothing, these hold what agents see.
	Trees []string
}

// Run starts the probe's container for g and returns the probe's report
// with the host's findings added (HostFindings): every mount point is one
// the spec made or the runtime always adds; no mount's source nor any of
// scan.Trees holds the credential's bytes; the runtime's own record of the
// container shows its hardening, user, command and mounts; and the
// gateway counted the refusals the probe says it was given. The container
// and its socket directory are gone when it returns, whatever happened.
func (t *SelfTester) Run(ctx context.Context, g store.Group, scan SelfTestScan) (selftest.Report, error) {
	r := t.r
	if g.IsMain {
		return selftest.Report{}, errors.New("self-test: the probe runs as a non-main group, as an attacker's would")
	}
	s := newContainer(r, g)
	out := &bytes.Buffer{}
	addrs := hostAddrs()
	s.probe = []string{"selftest"}
	for _, a := range addrs {
		s.probe = append(s.probe, "--host-addr", a.String())
	}
	s.probeOut = &cappedWriter{w: out, left: selftest.MaxReportBytes}
	before := r.gw.Stats()[g.Folder]
	if err := r.launch(ctx, s, StartOptions{Isolated: true}); err != nil {
		return selftest.Report{}, err
	}
	// The runtime keeps the container (Keep): removed here on every path.
	defer func() {
		if err := r.opt.Runtime.Stop(context.WithoutCancel(ctx), s.name, 0); err != nil {
			r.log.Error("remove the self-test's container", "container", s.name, "err", err)
		}
	}()
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
	after := r.gw.Stats()[g.Folder]
	rep.Findings = append(rep.Findings,
		checkMounts(s.ran, rep.Mounts),
		scanSources(s.ran.Mounts, scan.Trees, scan.Secrets),
		checkInspection(ctx, r.opt.Runtime, s.ran),
		checkCounts(after.Denied-before.Denied, after.APIRefused-before.APIRefused, after.APIRequests-before.APIRequests, len(addrs)))
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
