package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// R4, end to end: a non-main group's agent, the real Claude Code in a real
// container, curls through the gateway's proxy (CONNECT and plain HTTP) to
// every address of this host's interfaces (each named by the group's own
// rule), to 127.0.0.1, to a private address and to port 25 of a public one.
// Each is refused with its exact reason, logged by the gateway, and never
// dialled; a public web port still works. The gateway's resolver and dialer
// are fakes, so nothing leaves this machine whatever the policy said.
func TestEgressHostileDestinationsRefused(t *testing.T) {
	var self []netip.Addr
	as, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, _ := netip.AddrFromSlice(n.IP); !ip.Unmap().IsLoopback() {
				self = append(self, ip.Unmap())
			}
		}
	}
	if len(self) == 0 {
		t.Skip("this machine has no interface address besides loopback to try")
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "WEB-REACHED") }))
	defer web.Close()

	runtimes(t, func(t *testing.T, rtName string) {
		logs := &testenv.Buffer{}
		dials := &fakeEdge{route: map[string]string{"93.184.215.14:80": strings.TrimPrefix(web.URL, "http://")},
			table: map[string][]netip.Addr{"mail.example": {netip.MustParseAddr("93.184.215.14")}, "web.example": {netip.MustParseAddr("93.184.215.14")}}}
		h := newHarness(t, rtName, func(o *Options) {
			o.Logger = slog.New(slog.NewJSONHandler(io.MultiWriter(logs, t.Output()), nil))
			o.Gateway.Resolver, o.Gateway.Dial = dials, dials.dial
		})

		type target struct{ hostPort, reason string }
		var targets []target
		var rules []string
		for _, a := range self {
			hp := netip.AddrPortFrom(a, 22).String()
			rules = append(rules, hp) // the group's own rule names it: still refused
			targets = append(targets, target{hp, a.String() + ": an address of this host, never allowed"})
			if a.Is4() {
				targets = append(targets, target{"[::ffff:" + a.String() + "]:22", a.String() + ": an address of this host, never allowed"})
			}
		}
		targets = append(targets,
			target{"127.0.0.1:22", "127.0.0.1: loopback; only a rule naming this address or 127.0.0.1:22 opens it"},
			target{"10.1.2.3:80", "10.1.2.3: private (RFC 1918); only a rule naming this address or 10.1.2.3:80 opens it"},
			target{"mail.example:25", `mail.example resolves to 93.184.215.14: port 25 is not a web port (only 80 and 443 are open by default); the owner can open it with the egress rule "mail.example:25"`},
			target{"93.184.215.14:25", `93.184.215.14: port 25 is not a web port (only 80 and 443 are open by default); the owner can open it with the egress rule "93.184.215.14:25"`},
		)

		g := h.group("hostile", false, store.ContainerConfig{Egress: store.Egress{Mode: store.EgressPublic, Allow: rules}})
		s := h.start(g, StartOptions{})
		defer s.Close(context.Background())
		proxy := fmt.Sprintf("--noproxy '' -x http://127.0.0.1:%d", ipc.ProxyPort)
		var script []string
		for _, tc := range targets {
			script = append(script,
				fmt.Sprintf("curl -s -m 5 -p %s -o /dev/null -w 'CONNECT %s -> %%{http_connect}\\n' http://%s/", proxy, tc.hostPort, tc.hostPort),
				fmt.Sprintf("curl -s -m 5 %s http://%s/", proxy, tc.hostPort))
		}
		script = append(script, fmt.Sprintf("curl -s -m 5 %s http://web.example/; echo", proxy))
		out := h.bash(s, strings.Join(script, "; "))

		// The gateway names a destination in canonical form.
		canonical := func(hostPort string) string {
			host, port, _ := net.SplitHostPort(hostPort)
			if a, err := netip.ParseAddr(host); err == nil {
				host = a.Unmap().String()
			}
			return net.JoinHostPort(host, port)
		}
		for _, tc := range targets {
			if want := "CONNECT " + tc.hostPort + " -> 403"; !strings.Contains(out, want) {
				t.Errorf("inside the container: want %q in:\n%s", want, out)
			}
			if want := "nanoclaw egress: " + canonical(tc.hostPort) + " denied: " + tc.reason; !strings.Contains(out, want) {
				t.Errorf("inside the container: want %q in:\n%s", want, out)
			}
		}
		if !strings.Contains(out, "WEB-REACHED") {
			t.Errorf("the public web port was not reached:\n%s", out)
		}

		// The gateway logged every decision, with the reason the container saw.
		byTarget := map[string][]map[string]any{}
		for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
			var l map[string]any
			if json.Unmarshal(line, &l) != nil || l["msg"] != "egress" || l["group"] != "hostile" {
				continue
			}
			host, _ := l["host"].(string)
			port, _ := l["port"].(float64)
			hp := net.JoinHostPort(host, fmt.Sprint(port))
			byTarget[hp] = append(byTarget[hp], l)
		}
		wantLines := map[string]int{}
		for _, tc := range targets {
			wantLines[canonical(tc.hostPort)] += 2 // CONNECT and HTTP
		}
		for _, tc := range targets {
			lines := byTarget[canonical(tc.hostPort)]
			if len(lines) != wantLines[canonical(tc.hostPort)] {
				t.Errorf("%s: %d egress log lines, want %d: %v", tc.hostPort, len(lines), wantLines[canonical(tc.hostPort)], lines)
			}
			for _, l := range lines {
				if l["allowed"] != false || l["reason"] != tc.reason || l["status"] != float64(403) {
					t.Errorf("%s: log line %v, want refused with %q", tc.hostPort, l, tc.reason)
				}
			}
		}
		if got := dials.dialled(); !slices.Equal(got, []string{"93.184.215.14:80"}) {
			t.Errorf("the gateway dialled %v; want only the public web destination", got)
		}
	})
}

// fakeEdge is the gateway's resolver and dialer: names resolve from table
// only, and a dial goes only to a loopback server route names. Every dial
// is recorded, so a refused destination shows if it was ever tried.
type fakeEdge struct {
	table map[string][]netip.Addr
	route map[string]string

	mu     sync.Mutex
	dialed []string
}

func (f *fakeEdge) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f.table[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeEdge) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.dialed = append(f.dialed, addr)
	f.mu.Unlock()
	to, ok := f.route[addr]
	if !ok {
		return nil, fmt.Errorf("test edge: %s is not reachable from this test", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

func (f *fakeEdge) dialled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dialed)
}
