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
// shaped like one. The host, which has it, scans the mounts' sources for
// its exact bytes (agent.Runner.SelfTest).
package selftest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// The findings' names, in the order they are reported. The host adds its
// own (agent.FindingMounts, agent.FindingSources).
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
	maxFindings    = 64
	maxMounts      = 512
	maxDetailBytes = 4 << 10
)

// Decode reads a report the probe wrote, strictly and within caps.
func Decode(b []byte) (Report, error) {
	var r Report
	if len(b) > MaxReportBytes {
		return Report{}, fmt.Errorf("report of %d bytes is over the limit of %d", len(b), MaxReportBytes)
	}
	if err := ipc.DecodeStrict(b, &r); err != nil {
		return Report{}, err
	}
	if len(r.Findings) == 0 || len(r.Findings) > maxFindings || len(r.Mounts) > maxMounts {
		return Report{}, fmt.Errorf("report with %d findings and %d mounts: want 1-%d and at most %d", len(r.Findings), len(r.Mounts), maxFindings, maxMounts)
	}
	for _, f := range r.Findings {
		if f.Name == "" || len(f.Name) > 128 || len(f.Detail) > maxDetailBytes {
			return Report{}, fmt.Errorf("finding %.128q: name or detail too long or empty", f.Name)
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

// Route flags of the kernel (include/uapi/linux/route.h).
const (
	rtfUp     = 0x1
	rtfReject = 0x200
)

// routes: no route leads out of loopback, and no interface but lo is up
// (finding 2: --network none).
func routes(cfg Config) Finding {
	f := Finding{Name: FindingRoute, OK: true}
	var bad []string
	for _, file := range []string{"net/route", "net/ipv6_route"} {
		b, err := os.ReadFile(filepath.Join(cfg.Proc, file))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // a kernel without IPv6
				continue
			}
			return Finding{Name: FindingRoute, Detail: "cannot read the routing table: " + err.Error()}
		}
		bad = append(bad, outboundRoutes(string(b), file == "net/ipv6_route")...)
	}
	entries, err := os.ReadDir(cfg.SysNet)
	if err != nil {
		return Finding{Name: FindingRoute, Detail: "cannot list the network interfaces: " + err.Error()}
	}
	var ifaces []string
	for _, e := range entries {
		ifaces = append(ifaces, e.Name())
		if e.Name() == "lo" {
			continue
		}
		state, _ := os.ReadFile(filepath.Join(cfg.SysNet, e.Name(), "operstate"))
		if s := strings.TrimSpace(string(state)); s != "down" {
			bad = append(bad, "interface "+e.Name()+" is "+s)
		}
	}
	if len(bad) > 0 {
		f.OK = false
		f.Detail = clip(strings.Join(bad, "; "))
		return f
	}
	f.Detail = "interfaces: " + strings.Join(ifaces, ", ") + "; no route leads out of loopback"
	return f
}

// outboundRoutes returns the routes of a /proc/net/route (or ipv6_route)
// table that lead somewhere: up, not a reject route, and through an
// interface other than lo — or a default route anywhere.
func outboundRoutes(table string, v6 bool) []string {
	var out []string
	for i, line := range strings.Split(table, "\n") {
		fields := strings.Fields(line)
		var iface, flags, dest string
		var defaultRoute bool
		switch {
		case v6 && len(fields) == 10:
			dest, iface, flags = fields[0]+"/"+fields[1], fields[9], fields[8]
			defaultRoute = fields[1] == "00"
		case !v6 && len(fields) >= 8 && i > 0:
			dest, iface, flags = fields[1]+"/"+fields[7], fields[0], fields[3]
			defaultRoute = fields[1] == "00000000" && fields[7] == "00000000"
		default:
			continue
		}
		fl, err := strconv.ParseUint(flags, 16, 32)
		if err != nil || fl&rtfUp == 0 || fl&rtfReject != 0 {
			continue
		}
		if iface != "lo" || defaultRoute {
			out = append(out, "route "+dest+" via "+iface)
		}
	}
	return out
}

// dials: a direct connection to a public address and to each of the
// host's addresses fails at once for want of a route. A refusal, a
// timeout or a connection all mean packets went somewhere.
func dials(ctx context.Context, cfg Config) Finding {
	f := Finding{Name: FindingDial, OK: true}
	var notes []string
	for _, a := range append([]netip.Addr{PublicAddr}, cfg.HostAddrs...) {
		target := netip.AddrPortFrom(a, 443).String()
		d := net.Dialer{Timeout: cfg.DialTimeout}
		c, err := d.DialContext(ctx, "tcp", target)
		switch {
		case err == nil:
			c.Close()
			f.OK = false
			notes = append(notes, target+" connected")
		case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
			notes = append(notes, target+" unreachable")
		default:
			f.OK = false
			notes = append(notes, target+" reached the network: "+err.Error())
		}
	}
	f.Detail = clip(strings.Join(notes, "; "))
	return f
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

// credentialEnv are the variables Claude Code reads a credential from.
var credentialEnv = []string{"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"}

// environment: no variable holds a credential; the placeholder the agent
// hands Claude Code is fine (finding 1).
func environment(env []string) Finding {
	f := Finding{Name: FindingEnv, OK: true, Detail: fmt.Sprintf("%d variables, none a credential", len(env))}
	var bad []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(credentialEnv, k) && v != "" && v != ipc.PlaceholderAPIKey || credentialShaped([]byte(v)) >= 0 {
			bad = append(bad, k) // never the value: this report is printed
		}
	}
	if len(bad) > 0 {
		f.OK, f.Detail = false, "credential in "+strings.Join(bad, ", ")
	}
	return f
}

// The shapes of a credential: an Anthropic key or token ("sk-ant-" and a
// long run of key characters: api03-…, oat01-…) or an HTTP bearer token.
// Short runs are names in programs (Claude Code's own source mentions the
// prefix), not keys.
var (
	keyPrefix     = []byte("sk-ant-")
	bearerPrefix  = []byte("Bearer ")
	minSecretRun  = 32
	maxPatternLen = len(bearerPrefix) + minSecretRun
)

func keyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func tokenChar(c byte) bool { return keyChar(c) || c == '.' || c == '~' || c == '+' || c == '/' }

// credentialShaped returns the offset of the first credential-shaped run
// in b, or -1.
func credentialShaped(b []byte) int {
	for _, p := range []struct {
		prefix []byte
		ok     func(byte) bool
	}{{keyPrefix, keyChar}, {bearerPrefix, tokenChar}} {
		for off := 0; ; {
			i := bytes.Index(b[off:], p.prefix)
			if i < 0 {
				break
			}
			start := off + i + len(p.prefix)
			n := 0
			for n < minSecretRun && start+n < len(b) && p.ok(b[start+n]) {
				n++
			}
			if n >= minSecretRun {
				return off + i
			}
			off = start
		}
	}
	return -1
}

// walk searches every readable regular file under the walk root, without
// following links and without entering the skipped directories, for
// credential-shaped bytes, within its bounds.
func walk(ctx context.Context, cfg Config) Finding {
	f := Finding{Name: FindingFiles, OK: true}
	deadline := time.Now().Add(cfg.WalkTime)
	var files, unreadable, cut int
	var read int64
	var found []string
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(cfg.WalkRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			unreadable++
			return nil // a directory we may not enter: nothing readable there
		}
		if d.IsDir() && slices.Contains(cfg.SkipDirs, path) {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) || read >= cfg.WalkBytes {
			cut++
			return nil
		}
		n, at, err := scanFile(path, buf, cfg.WalkBytes-read)
		read += n
		switch {
		case err != nil:
			unreadable++
		case at >= 0:
			found = append(found, fmt.Sprintf("%s (at byte %d)", path, at))
		default:
			files++
		}
		return nil
	})
	if err != nil {
		return Finding{Name: FindingFiles, Detail: "walk " + cfg.WalkRoot + ": " + err.Error()}
	}
	f.Detail = fmt.Sprintf("%d files read (%d MiB) under %s, skipping %s; %d unreadable", files, read>>20, cfg.WalkRoot, strings.Join(cfg.SkipDirs, ", "), unreadable)
	if cut > 0 {
		f.Detail += fmt.Sprintf("; %d files not read within the bounds (%d MiB, %v)", cut, cfg.WalkBytes>>20, cfg.WalkTime)
	}
	if len(found) > 0 {
		f.OK = false
		f.Detail = clip("credential-shaped bytes in " + strings.Join(found, ", ") + "; " + f.Detail)
	}
	return f
}

// scanFile reads at most limit bytes of the regular file at path (never
// through a link, never blocking on a FIFO put there after the walk saw
// it) and returns how many it read and the offset of the first
// credential-shaped run, or -1.
func scanFile(path string, buf []byte, limit int64) (int64, int64, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, -1, err
	}
	defer file.Close()
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		return 0, -1, fmt.Errorf("%s: not a regular file", path)
	}
	r := io.LimitReader(file, limit)
	var total int64
	keep := 0 // bytes of the previous chunk kept, so a match across chunks is seen
	for {
		n, err := io.ReadFull(r, buf[keep:])
		if n > 0 {
			data := buf[:keep+n]
			if i := credentialShaped(data); i >= 0 {
				return total + int64(n), total - int64(keep) + int64(i), nil
			}
			total += int64(n)
			keep = min(maxPatternLen, len(data))
			copy(buf, data[len(data)-keep:])
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return total, -1, nil
		}
		if err != nil {
			return total, -1, err
		}
	}
}

// egressRefusals: through the forwarder, the gateway answers CONNECT to
// each private destination and each of the host's addresses with its own
// 403 (R4).
func egressRefusals(ctx context.Context, cfg Config) Finding {
	f := Finding{Name: FindingEgress, OK: true}
	targets := slices.Clone(PrivateTargets)
	for _, a := range cfg.HostAddrs {
		targets = append(targets, netip.AddrPortFrom(a, 443).String())
	}
	var notes []string
	for _, t := range targets {
		status, body, err := connect(ctx, cfg.Proxy, t)
		switch {
		case err != nil:
			f.OK = false
			notes = append(notes, t+": "+err.Error())
		case status == http.StatusForbidden && strings.HasPrefix(body, "nanoclaw egress:"):
			notes = append(notes, t+" refused")
		default:
			f.OK = false
			notes = append(notes, fmt.Sprintf("%s answered %d %q", t, status, clipN(body, 120)))
		}
	}
	f.Detail = clip(strings.Join(notes, "; "))
	return f
}

// connect asks the proxy for a tunnel to target and returns its answer.
func connect(ctx context.Context, proxy, target string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return 0, "", fmt.Errorf("the proxy %s: %w", proxy, err)
	}
	defer c.Close()
	context.AfterFunc(ctx, func() { c.Close() })
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		return 0, "", err
	}
	req := &http.Request{Method: http.MethodConnect}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return 0, "", fmt.Errorf("no answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, "", nil // a tunnel: there is no body to read
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(body), nil
}

// apiRefusal: the gateway's API side answers a call outside its
// allowlist itself (R5): 403 with the gateway's own message, not the
// upstream's answer.
func apiRefusal(ctx context.Context, cfg Config) Finding {
	f := Finding{Name: FindingAPI}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := url.URL{Scheme: "http", Host: cfg.Proxy, Path: "/v1/models"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		f.Detail = err.Error()
		return f
	}
	req.Header.Set("x-api-key", ipc.PlaceholderAPIKey)
	client := http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		f.Detail = "GET /v1/models: " + err.Error()
		return f
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	f.OK = resp.StatusCode == http.StatusForbidden && bytes.Contains(body, []byte(`"gateway: `))
	f.Detail = "GET /v1/models: refused with 403 by the gateway itself"
	if !f.OK {
		f.Detail = fmt.Sprintf("GET /v1/models answered %d %q", resp.StatusCode, clipN(string(body), 160))
	}
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
		out = append(out, Mount{Point: unescapeOctal(fields[4]), ReadOnly: slices.Contains(opts, "ro"), FSType: tail[0]})
	}
	return out, nil
}

// unescapeOctal undoes mountinfo's \ooo escapes (space, tab, newline, backslash).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// clip keeps a detail within what the host accepts.
func clip(s string) string { return clipN(s, maxDetailBytes-64) }

func clipN(s string, n int) string { return sanitize.Clip(s, n, "…") }
