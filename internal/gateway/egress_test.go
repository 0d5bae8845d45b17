package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
)

// tunnelEnv is an env under opt whose name a.example resolves to publicA,
// which is routed to an echo server, and the endpoint of group g under
// public egress.
func tunnelEnv(t *testing.T, opt Options) (*env, *Endpoint) {
	t.Helper()
	e := newEnv(t, opt)
	e.resolver.table["a.example"] = []netip.Addr{publicA}
	e.dialer.route["1.1.1.1:443"] = echoServer(t)
	return e, e.open(t, "g", false, mustPolicy(t, "public"))
}

// finding 2: CONNECT to a name that resolves to a public address is
// tunnelled to exactly the address that was checked, and logged once with
// the bytes that went through.
func TestConnectPublicTunnelsToCheckedAddress(t *testing.T) {
	e, ep := tunnelEnv(t, Options{})
	status, body, c, br := connect(t, ep, "A.Example:443")
	if status != http.StatusOK {
		t.Fatalf("CONNECT: %d %s", status, body)
	}
	fmt.Fprintf(c, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: ping\n" {
		t.Fatalf("through the tunnel: %q, %v", line, err)
	}
	c.Close()

	if got := e.dialer.addrs(); !slices.Equal(got, []string{"1.1.1.1:443"}) {
		t.Errorf("dialled %v, want only the checked address 1.1.1.1:443", got)
	}
	if got := e.resolver.looked(); !slices.Equal(got, []string{"a.example"}) {
		t.Errorf("lookups %v, want one of a.example", got)
	}
	lines := e.log.waitLines(t, "egress", 1)
	l := lines[0]
	if l["group"] != "g" || l["host"] != "a.example" || l["port"] != float64(443) || l["addr"] != "1.1.1.1" ||
		l["allowed"] != true || l["bytes_up"] != float64(5) || l["bytes_down"] != float64(11) || l["kind"] != "connect" {
		t.Errorf("log line %v", l)
	}
	st := e.gw.Stats()["g"]
	if st.Allowed != 1 || st.Denied != 0 || st.Active != 0 || st.BytesUp != 5 || st.BytesDown != 11 {
		t.Errorf("stats %+v", st)
	}
}

// A name is resolved once, on the host; the connection goes to that
// address even if the name's next answer would be a private one (DNS
// rebinding), and a name resolving to public and private addresses at
// once is refused.
func TestConnectRebinding(t *testing.T) {
	echo := echoServer(t)
	// testResolver answers each lookup of a name with its next answer.
	res := &testResolver{table: map[string][]netip.Addr{"mixed.example": {publicA, netip.MustParseAddr("10.0.0.1")}},
		seq: map[string][][]netip.Addr{"rebind.example": {{publicB}, {netip.MustParseAddr("127.0.0.1")}}}}
	e := newEnv(t, Options{Resolver: res})
	e.dialer.route["8.8.8.8:443"] = echo
	ep := e.open(t, "g", false, mustPolicy(t, "public"))

	status, _, c, _ := connect(t, ep, "rebind.example:443")
	if status != 200 {
		t.Fatalf("first CONNECT: %d", status)
	}
	c.Close()
	if got := e.dialer.addrs(); !slices.Equal(got, []string{"8.8.8.8:443"}) {
		t.Fatalf("dialled %v, want the checked 8.8.8.8:443 only", got)
	}
	if status, body, _, _ := connect(t, ep, "rebind.example:443"); status != http.StatusForbidden || !strings.Contains(body, "loopback") {
		t.Fatalf("second CONNECT, now resolving to loopback: %d %s", status, body)
	}
	if got := res.looked(); len(got) != 2 {
		t.Errorf("lookups %v, want one per CONNECT", got)
	}
	if status, body, _, _ := connect(t, ep, "mixed.example:443"); status != http.StatusForbidden || !strings.Contains(body, "10.0.0.1: private") {
		t.Fatalf("public+private answer: %d %s", status, body)
	}
	if got := e.dialer.addrs(); len(got) != 1 {
		t.Errorf("dialled %v after denials", got)
	}
}

// When the first checked address cannot be reached, the next checked one
// is tried; nothing else is.
func TestConnectTriesCheckedAddressesInOrder(t *testing.T) {
	echo := echoServer(t)
	e := newEnv(t, Options{})
	e.resolver.table["dual.example"] = []netip.Addr{netip.MustParseAddr("2606:4700::1111"), publicA}
	e.resolver.table["dead.example"] = []netip.Addr{publicB}
	e.dialer.route["1.1.1.1:443"] = echo
	ep := e.open(t, "g", false, mustPolicy(t, "public"))
	status, _, c, _ := connect(t, ep, "dual.example:443")
	if status != 200 {
		t.Fatalf("CONNECT: %d", status)
	}
	c.Close()
	if got := e.dialer.addrs(); !slices.Equal(got, []string{"[2606:4700::1111]:443", "1.1.1.1:443"}) {
		t.Fatalf("dialled %v", got)
	}
	if l := e.log.waitLines(t, "egress", 1)[0]; l["addr"] != "1.1.1.1" {
		t.Errorf("log names %v, want the address used", l["addr"])
	}
	if status, body, _, _ := connect(t, ep, "dead.example:443"); status != http.StatusBadGateway || !strings.Contains(body, "connect to 8.8.8.8:443") {
		t.Fatalf("unreachable: %d %s", status, body)
	}
}

// Loopback, private and metadata destinations are denied under public,
// by CONNECT and by plain-HTTP forwarding, with one log line each and
// nothing dialled.
func TestEgressForbiddenDestinations(t *testing.T) {
	var mu sync.Mutex
	var heard []string // what OnDenied heard, for status
	e := newEnv(t, Options{OnDenied: func(folder, target, reason string) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, folder+" "+target+" "+reason)
	}})
	e.resolver.table["localhost"] = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	e.resolver.table["metadata.google.internal"] = []netip.Addr{netip.MustParseAddr("169.254.169.254")}
	e.resolver.table["nas.lan"] = []netip.Addr{netip.MustParseAddr("192.168.1.20")}
	ep := e.open(t, "g", false, mustPolicy(t, "public"))

	for _, tc := range []struct{ target, reason string }{
		{"127.0.0.1:22", "loopback"},
		{"[::1]:22", "loopback"},
		{"localhost:8080", "loopback"},
		{"169.254.169.254:80", "metadata"},
		{"metadata.google.internal:80", "metadata"},
		{"[::ffff:169.254.169.254]:80", "metadata"},
		{"10.1.2.3:443", "private (RFC 1918)"},
		{"nas.lan:5000", "192.168.1.20: private"},
		{"[fd00:ec2::254]:80", "metadata"},
		{"0.0.0.0:80", "unspecified"},
		{"nosuch.example:443", "cannot resolve"},
		{"example.com:0", "out of range"},
		{"example.com", "CONNECT needs host:port"},
	} {
		status, body, _, _ := connect(t, ep, tc.target)
		if (status != http.StatusForbidden && status != http.StatusBadRequest) || !strings.Contains(body, tc.reason) {
			t.Errorf("CONNECT %s: %d %q; want 403 naming %q", tc.target, status, body, tc.reason)
		}
	}
	for _, tc := range []struct{ url, reason string }{
		{"http://169.254.169.254/latest/meta-data/", "metadata"},
		{"http://127.0.0.1:9/", "loopback"},
		{"http://localhost/", "loopback"},
		{"http://192.168.0.1/", "private"},
	} {
		_, _, resp := rawRequest(t, ep, "GET "+tc.url+" HTTP/1.1\r\nHost: x\r\n\r\n")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), tc.reason) {
			t.Errorf("GET %s: %d %q; want 403 naming %q", tc.url, resp.StatusCode, b, tc.reason)
		}
	}
	if got := e.dialer.addrs(); len(got) != 0 {
		t.Fatalf("dialled %v", got)
	}
	lines := e.log.waitLines(t, "egress", 17)
	for _, l := range lines {
		if l["allowed"] != false || l["group"] != "g" || l["reason"] == "" || l["level"] != "WARN" {
			t.Errorf("log line %v", l)
		}
	}
	if st := e.gw.Stats()["g"]; st.Denied != 17 || st.Allowed != 0 {
		t.Errorf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 17 || !strings.HasPrefix(heard[0], "g 127.0.0.1:22 ") || !strings.Contains(heard[0], "loopback") {
		t.Errorf("OnDenied heard %d refusals: %q", len(heard), heard)
	}
}

// A local service is reachable only when the group's policy names it
// exactly: under public with an exception, under an allowlist naming it;
// not under public without it, an allowlist naming something else, or none.
func TestEgressLocalServiceOnlyWhenNamed(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "SERVICE-REACHED host=%s proxy-auth=%q", r.Host, r.Header.Get("Proxy-Authorization"))
	}))
	defer svc.Close()
	hostPort := strings.TrimPrefix(svc.URL, "http://")
	_, port, _ := net.SplitHostPort(hostPort)
	e := newEnv(t, Options{})
	e.resolver.table["svc.lan"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

	for _, tc := range []struct {
		folder  string
		policy  egress.Policy
		reach   bool // by address
		viaName bool // by a name resolving to it
	}{
		{"public-named", mustPolicy(t, "public", hostPort), true, true},
		{"public-other-port", mustPolicy(t, "public", "127.0.0.1:1"), false, false},
		{"public", mustPolicy(t, "public"), false, false},
		// A name rule with an exact port opens private addresses, never
		// loopback: whoever controls the name's DNS picks the address.
		{"public-name-rule", mustPolicy(t, "public", "svc.lan:"+port), false, false},
		{"allowlist-named", mustPolicy(t, "allowlist", hostPort), true, false},
		{"allowlist-network", mustPolicy(t, "allowlist", "127.0.0.0/8:"+port), true, false},
		{"allowlist-name-and-address", mustPolicy(t, "allowlist", "svc.lan:"+port, hostPort), true, true},
		{"allowlist-other", mustPolicy(t, "allowlist", "example.com"), false, false},
		{"allowlist-web-ports", mustPolicy(t, "allowlist", "127.0.0.1"), false, false},
		{"none", mustPolicy(t, "none"), false, false},
	} {
		t.Run(tc.folder, func(t *testing.T) {
			ep := e.open(t, tc.folder, false, tc.policy)
			_, _, resp := rawRequest(t, ep, "GET http://"+hostPort+"/x HTTP/1.1\r\nHost: "+hostPort+"\r\nProxy-Authorization: Basic eDp5\r\n\r\n")
			b, _ := io.ReadAll(resp.Body)
			reached := strings.Contains(string(b), "SERVICE-REACHED")
			if reached != tc.reach {
				t.Fatalf("forward: reached=%v (%d %q), want %v", reached, resp.StatusCode, b, tc.reach)
			}
			if reached && !strings.Contains(string(b), `proxy-auth=""`) {
				t.Errorf("Proxy-Authorization was passed on: %s", b)
			}
			if !reached && resp.StatusCode != http.StatusForbidden {
				t.Errorf("denied with %d, want 403", resp.StatusCode)
			}
			status, _, c, _ := connect(t, ep, hostPort)
			if (status == 200) != tc.reach {
				t.Fatalf("CONNECT %s: %d, want reached=%v", hostPort, status, tc.reach)
			}
			if c != nil {
				c.Close()
			}
			status, _, c, _ = connect(t, ep, "svc.lan:"+port)
			if (status == 200) != tc.viaName {
				t.Errorf("CONNECT svc.lan:%s (resolves to 127.0.0.1): %d, want reached=%v", port, status, tc.viaName)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

// Under an allowlist a name no rule covers is refused without a DNS
// lookup, so a group cannot leak data through DNS queries.
func TestAllowlistNoLookupForUnlistedNames(t *testing.T) {
	e := newEnv(t, Options{})
	e.resolver.table["api.example.com"] = []netip.Addr{publicA}
	ep := e.open(t, "g", false, mustPolicy(t, "allowlist", "api.example.com"))
	for _, target := range []string{"c2VjcmV0.exfil.example:443", "api.example.com:8443", "1.1.1.1:443"} {
		if status, body, _, _ := connect(t, ep, target); status != http.StatusForbidden || !strings.Contains(body, "not in the group's allow list") {
			t.Errorf("CONNECT %s: %d %s", target, status, body)
		}
	}
	if got := e.resolver.looked(); len(got) != 0 {
		t.Fatalf("looked up %v", got)
	}
	none := e.open(t, "n", false, mustPolicy(t, "none"))
	if status, body, _, _ := connect(t, none, "api.example.com:443"); status != http.StatusForbidden || !strings.Contains(body, "mode none") {
		t.Fatalf("none: %d %s", status, body)
	}
	if got := e.resolver.looked(); len(got) != 0 {
		t.Fatalf("looked up %v under none", got)
	}
}

// Plain-HTTP forwarding goes to the checked address with the request's
// own Host header.
func TestForwardPublicName(t *testing.T) {
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello host=%s path=%s", r.Host, r.URL.RequestURI())
	}))
	defer svc.Close()
	e := newEnv(t, Options{})
	e.resolver.table["www.example.org"] = []netip.Addr{publicA}
	e.dialer.route["1.1.1.1:80"] = strings.TrimPrefix(svc.URL, "http://")
	ep := e.open(t, "g", false, mustPolicy(t, "allowlist", "*.example.org"))
	_, _, resp := rawRequest(t, ep, "GET http://www.example.org/a?b=c HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "hello host=www.example.org path=/a?b=c" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	if got := e.dialer.addrs(); !slices.Equal(got, []string{"1.1.1.1:80"}) {
		t.Errorf("dialled %v", got)
	}
	l := e.log.waitLines(t, "egress", 1)[0]
	if l["kind"] != "http" || l["allowed"] != true || l["reason"] != "allowed by rule *.example.org" || l["bytes_down"].(float64) < float64(len(b)) {
		t.Errorf("log line %v", l)
	}
	_, _, resp = rawRequest(t, ep, "GET https://www.example.org/ HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("https:// forward: %d, want 400", resp.StatusCode)
	}
}

// Each group has a bounded number of open connections.
func TestTunnelLimit(t *testing.T) {
	e, ep := tunnelEnv(t, Options{MaxTunnels: 1})
	other := e.open(t, "h", false, mustPolicy(t, "public"))

	status, _, c, _ := connect(t, ep, "a.example:443")
	if status != 200 {
		t.Fatalf("first: %d", status)
	}
	if status, body, _, _ := connect(t, ep, "a.example:443"); status != http.StatusTooManyRequests || !strings.Contains(body, "max 1") {
		t.Fatalf("second while the first is open: %d %s", status, body)
	}
	if status, _, c2, _ := connect(t, other, "a.example:443"); status != 200 {
		t.Fatalf("another group's limit is its own: %d", status)
	} else {
		c2.Close()
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for e.gw.Stats()["g"].Active != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if status, _, c, _ := connect(t, ep, "a.example:443"); status != 200 {
		t.Fatalf("after the first closed: %d", status)
	} else {
		c.Close()
	}
}

// A tunnel nobody uses is closed after the idle time; one in use is not.
func TestTunnelIdle(t *testing.T) {
	// The idle time is ten times the gap between round trips, so a busy
	// machine (the race detector, parallel packages) cannot pass for idle.
	e, ep := tunnelEnv(t, Options{TunnelIdle: time.Second})
	_, _, c, br := connect(t, ep, "a.example:443")
	// Busy for longer than the idle time: stays open.
	for i := range 15 {
		fmt.Fprintf(c, "ping %d\n", i)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("busy tunnel closed after %d round trips: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("read data from an idle tunnel")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle tunnel closed after %v", d)
	}
	l := e.log.waitLines(t, "egress", 1)[0]
	if !strings.Contains(fmt.Sprint(l["err"]), "idle") {
		t.Errorf("log line %v, want an idle error", l)
	}
}

// Closing the endpoint ends its tunnels and removes the socket.
func TestCloseEndsTunnels(t *testing.T) {
	e, ep := tunnelEnv(t, Options{})
	_, _, c, br := connect(t, ep, "a.example:443")
	fmt.Fprintf(c, "hi\n")
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ep.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return while a tunnel was open")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadString('\n'); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("tunnel still open after Close: %v", err)
	}
	if _, err := net.Dial("unix", ep.path); err == nil {
		t.Fatal("socket still accepts after Close")
	}
	if st := e.gw.Stats()["g"]; st.Active != 0 {
		t.Errorf("stats after close %+v", st)
	}
}
