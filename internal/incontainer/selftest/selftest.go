// Package selftest is the boundary probe: `nanoclaw-agent selftest`, run
// by `nanoclaw doctor --sandbox` in a container started exactly as a
// non-main group's, looks from inside at what SECURITY.md promises — no
// network route, not root, no capabilities, a read-only root, no
// credential anywhere readable, and a gateway that refuses private
// destinations and API calls outside its allowlist — and reports each as a
// Finding. It also lists every mount point it sees; the host, which knows
// what it mounted, judges that list.
//
// The probe is never given the real credential: it looks for anything
// shaped like one. The host, which has it, scans the mounts' sources and
// the owner's trees for its exact bytes, and checks what it can see
// itself — the runtime's record of the container, the gateway's counts —
// rather than take this report's word (agent.SelfTester).
package selftest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/mountinfo"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// The findings' names, in the order they are reported. The host adds its
// own (agent.HostFindings).
const (
	FindingRoute        = "no network route"
	FindingDial         = "no direct connection"
	FindingUser         = "not root"
	FindingCaps         = "no capabilities"
	FindingReadOnly     = "read-only root"
	FindingEnv          = "no credential in the environment"
	FindingFiles        = "no credential in readable files"
	FindingEgress       = "gateway refuses private destinations"
	FindingAPI          = "gateway refuses API calls outside its allowlist"
	FindingMountsListed = "mounts listed"
)

// Findings are the names of the probe's findings, in the order Run
// reports them. A report must hold each exactly once: one with fewer,
// more or others is not the probe's (an image that prints a report of its
// own in the probe's place), and is refused whole.
var Findings = []string{FindingRoute, FindingDial, FindingUser, FindingCaps, FindingReadOnly,
	FindingEnv, FindingFiles, FindingEgress, FindingAPI, FindingMountsListed}

// Finding is one thing the probe looked at.
type Finding struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Mount is one mount point as /proc/self/mountinfo shows it.
type Mount struct {
	Point    string `json:"point"`
	ReadOnly bool   `json:"read_only"`
	FSType   string `json:"fs_type"`
}

// Report is the probe's one JSON object on stdout.
type Report struct {
	Findings []Finding `json:"findings"`
	Mounts   []Mount   `json:"mounts"`
}

// OK reports whether every finding passed.
func (r Report) OK() bool {
	return len(r.Findings) > 0 && !slices.ContainsFunc(r.Findings, func(f Finding) bool { return !f.OK })
}

// Caps of a report as the host reads it: it comes out of a container.
const (
	MaxReportBytes = 1 << 20
	maxMounts      = 512
	maxDetailBytes = 4 << 10
)

// Decode reads a report the probe wrote, strictly and within caps: every
// one of Findings exactly once, and nothing else.
func Decode(b []byte) (Report, error) {
	var r Report
	if len(b) > MaxReportBytes {
		return Report{}, fmt.Errorf("report of %d bytes is over the limit of %d", len(b), MaxReportBytes)
	}
	if err := ipc.DecodeStrict(b, &r); err != nil {
		return Report{}, err
	}
	if len(r.Mounts) > maxMounts {
		return Report{}, fmt.Errorf("report with %d mounts: want at most %d", len(r.Mounts), maxMounts)
	}
	seen := make(map[string]bool, len(Findings))
	for _, f := range r.Findings {
		switch {
		case !slices.Contains(Findings, f.Name):
			return Report{}, fmt.Errorf("finding %.128q is not one the probe reports: this is not the probe's report", f.Name)
		case seen[f.Name]:
			return Report{}, fmt.Errorf("finding %q reported twice: this is not the probe's report", f.Name)
		case len(f.Detail) > maxDetailBytes:
			return Report{}, fmt.Errorf("finding %q: detail over %d bytes", f.Name, maxDetailBytes)
		}
		seen[f.Name] = true
	}
	for _, name := range Findings {
		if !seen[name] {
			return Report{}, fmt.Errorf("finding %q is missing: this is not the probe's report", name)
		}
	}
	return r, nil
}

// Config says where the probe looks. DefaultConfig is the container's; the
// fields exist so a test can run the probe on a host and aim it at
// directories of its own.
type Config struct {
	// Proxy is the in-container forwarder's loopback address (host:port):
	// the one way to the gateway the agent uses.
	Proxy string
	// HostAddrs are the host's own addresses, as the host sees them; the
	// container must neither reach them nor have the gateway let it.
	HostAddrs []netip.Addr
	// ReadOnlyDirs must refuse a new file with EROFS.
	ReadOnlyDirs []string
	// WalkRoot is where the search for credential-shaped bytes starts;
	// SkipDirs (absolute) are not entered.
	WalkRoot string
	SkipDirs []string
	// WalkBytes and WalkTime bound that search; what they cut is reported.
	WalkBytes int64
	WalkTime  time.Duration
	// Proc is where /proc is (its self/status, self/mountinfo, net/route);
	// SysNet is /sys/class/net.
	Proc, SysNet string
	// DialTimeout bounds each direct connection attempt.
	DialTimeout time.Duration
}

// PublicAddr is the public address the probe tries to reach directly.
var PublicAddr = netip.MustParseAddr("1.1.1.1")

// PrivateTargets are destinations the gateway must refuse under every
// egress policy a non-main group has by default (besides the host's own
// addresses): a private network, the cloud metadata service, and the
// container's own loopback's SSH port as the host would see it.
var PrivateTargets = []string{"10.0.0.1:80", "169.254.169.254:80", "127.0.0.1:22"}

// DefaultConfig is the probe inside a container.
func DefaultConfig() Config {
	return Config{
		ReadOnlyDirs: []string{"/", "/usr"},
		WalkRoot:     "/",
		SkipDirs:     []string{"/proc", "/sys", "/dev"},
		WalkBytes:    2 << 30,
		WalkTime:     6 * time.Second,
		Proc:         "/proc",
		SysNet:       "/sys/class/net",
		DialTimeout:  2 * time.Second,
	}
}

// Run looks at everything and returns the report; it fails only when ctx
// ends first.
func Run(ctx context.Context, cfg Config) (Report, error) {
	var r Report
	r.Findings = append(r.Findings, routes(cfg))
	r.Findings = append(r.Findings, dials(ctx, cfg))
	r.Findings = append(r.Findings, identity(cfg)...)
	r.Findings = append(r.Findings, readOnly(cfg))
	r.Findings = append(r.Findings, environment(os.Environ()))
	r.Findings = append(r.Findings, walk(ctx, cfg))
	r.Findings = append(r.Findings, egressRefusals(ctx, cfg), apiRefusal(ctx, cfg))
	mounts, err := readMountinfo(filepath.Join(cfg.Proc, "self/mountinfo"))
	f := Finding{Name: FindingMountsListed, OK: err == nil, Detail: fmt.Sprintf("%d mount points, for the host to judge", len(mounts))}
	if err != nil {
		f.Detail = err.Error()
	}
	r.Findings, r.Mounts = append(r.Findings, f), mounts
	return r, ctx.Err()
}

// identity: not root, no capabilities in any set, no-new-privileges.
func identity(cfg Config) []Finding {
	user := Finding{Name: FindingUser, OK: true}
	groups, _ := os.Getgroups()
	ids := fmt.Sprintf("uid %d, euid %d, gid %d, egid %d, groups %v", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid(), groups)
	if os.Getuid() == 0 || os.Geteuid() == 0 || os.Getgid() == 0 || os.Getegid() == 0 || slices.Contains(groups, 0) {
		user.OK = false
	}
	user.Detail = ids

	caps := Finding{Name: FindingCaps, OK: true}
	status, err := parseStatus(filepath.Join(cfg.Proc, "self/status"))
	if err != nil {
		caps.OK, caps.Detail = false, err.Error()
		return []Finding{user, caps}
	}
	var notes []string
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		v, ok := status[k]
		n, err := strconv.ParseUint(v, 16, 64)
		if !ok || err != nil || n != 0 {
			caps.OK = false
			notes = append(notes, k+" "+cmp.Or(v, "missing"))
		}
	}
	if status["NoNewPrivs"] != "1" {
		caps.OK = false
		notes = append(notes, "NoNewPrivs "+cmp.Or(status["NoNewPrivs"], "missing"))
	}
	caps.Detail = "every capability set empty, NoNewPrivs 1"
	if !caps.OK {
		caps.Detail = strings.Join(notes, ", ")
	}
	return []Finding{user, caps}
}

// parseStatus reads the "Key:\tvalue" lines of /proc/<pid>/status.
func parseStatus(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	m := make(map[string]string)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, nil
}

// readOnly: a new file cannot be made in any of the root's directories.
func readOnly(cfg Config) Finding {
	f := Finding{Name: FindingReadOnly, OK: true}
	var notes []string
	for _, dir := range cfg.ReadOnlyDirs {
		path := filepath.Join(dir, ".nanoclaw-selftest-"+strconv.Itoa(os.Getpid()))
		file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
		switch {
		case err == nil:
			file.Close()
			os.Remove(path)
			f.OK = false
			notes = append(notes, dir+" is writable")
		case errors.Is(err, syscall.EROFS):
			notes = append(notes, dir+" read-only")
		default:
			// Refused for another reason (permissions): a remount or a
			// different user could write there.
			f.OK = false
			notes = append(notes, dir+": not a read-only file system ("+err.Error()+")")
		}
	}
	f.Detail = clip(strings.Join(notes, "; "))
	return f
}

// readMountinfo lists the mount points of a mountinfo file.
func readMountinfo(path string) ([]Mount, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parseMountinfo(string(b))
}

// parseMountinfo parses proc(5)'s mountinfo lines: "id parent major:minor
// root point options [optional...] - fstype source superoptions".
func parseMountinfo(s string) ([]Mount, error) {
	var out []Mount
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 6 || len(tail) < 1 {
			return nil, fmt.Errorf("mountinfo line %q: not in proc(5)'s format", clipN(line, 120))
		}
		opts := strings.Split(fields[5], ",")
		out = append(out, Mount{Point: mountinfo.Unescape(fields[4]), ReadOnly: slices.Contains(opts, "ro"), FSType: tail[0]})
	}
	return out, nil
}

// clip keeps a detail within what the host accepts.
func clip(s string) string { return clipN(s, maxDetailBytes-64) }

func clipN(s string, n int) string { return sanitize.Clip(s, n, "…") }
