package selftest

import (
	"bufio"
	"bytes"
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
)

// The network findings: routes, direct dials, and the gateway's refusals.

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
