package egress

import (
	"net/netip"
	"strings"
	"testing"
)

func policy(t *testing.T, mode string, allow ...string) Policy {
	t.Helper()
	p, err := ParsePolicy(mode, allow)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestDecide(t *testing.T) {
	public := policy(t, "public")
	homeLab := policy(t, "public", "192.168.1.10:8080", "10.0.0.0/24", "nas.lan:5000", "printer.lan", "127.0.0.1:11434")
	list := policy(t, "allowlist", "api.example.com", "*.example.org", "nas.lan:5000", "192.168.1.10:8080", "10.0.0.0/24:*", "1.1.1.1:853", "llm.lan:8000")
	none := policy(t, "none")
	zero := Policy{}

	for _, tc := range []struct {
		name   string
		p      Policy
		host   string
		port   int
		addrs  []netip.Addr
		allow  bool
		addr   string // the address to connect to, when allowed
		reason string // part of the reason
	}{
		// public
		{"public name", public, "example.com", 443, addrs("93.184.215.14"), true, "93.184.215.14", "public address"},
		{"public, web port 80", public, "example.com", 80, addrs("93.184.215.14"), true, "93.184.215.14", "public"},
		{"public, SSH refused", public, "example.com", 22, addrs("93.184.215.14"), false, "", `example.com resolves to 93.184.215.14: port 22 is not a web port (only 80 and 443 are open by default); the owner can open it with the egress rule "example.com:22"`},
		{"zero policy is public", zero, "example.com", 443, addrs("93.184.215.14"), true, "93.184.215.14", "public"},
		{"public literal", public, "8.8.8.8", 443, nil, true, "8.8.8.8", "public"},
		{"public literal, DNS port refused", public, "8.8.8.8", 53, nil, false, "", `8.8.8.8: port 53 is not a web port`},
		{"public v6 literal", public, "[2606:4700:4700::1111]", 443, nil, true, "2606:4700:4700::1111", "public"},
		{"literal ignores addrs", public, "8.8.8.8", 443, addrs("127.0.0.1"), true, "8.8.8.8", "public"},
		{"public, first of several", public, "example.com", 443, addrs("2606:4700::1", "1.1.1.1"), true, "2606:4700::1", "public"},
		{"mapped public unmapped", public, "example.com", 443, addrs("::ffff:1.1.1.1"), true, "1.1.1.1", "public"},
		{"loopback name", public, "evil.example", 80, addrs("127.0.0.1"), false, "", "evil.example resolves to 127.0.0.1: loopback"},
		{"loopback literal", public, "127.0.0.1", 8080, nil, false, "", "127.0.0.1: loopback"},
		{"v6 loopback literal", public, "::1", 80, nil, false, "", "loopback"},
		{"private literal", public, "10.1.2.3", 80, nil, false, "", "private (RFC 1918)"},
		{"metadata", public, "169.254.169.254", 80, nil, false, "", "metadata service, never allowed"},
		{"metadata by name", public, "metadata.google.internal", 80, addrs("169.254.169.254"), false, "", "never allowed"},
		{"mapped metadata", public, "x.example", 80, addrs("::ffff:169.254.169.254"), false, "", "metadata"},
		{"NAT64 metadata", public, "x.example", 80, addrs("64:ff9b::a9fe:a9fe"), false, "", "metadata"},
		{"6to4 loopback", public, "x.example", 80, addrs("2002:7f00:1::1"), false, "", "loopback"},
		{"mixed public and private", public, "rebind.example", 443, addrs("93.184.215.14", "10.0.0.1"), false, "", "10.0.0.1: private"},
		{"mixed private first", public, "rebind.example", 443, addrs("192.168.0.1", "93.184.215.14"), false, "", "private"},
		{"no address", public, "example.com", 443, nil, false, "", "no address"},
		{"zero address", public, "example.com", 443, []netip.Addr{{}}, false, "", "unusable"},
		{"zoned address", public, "example.com", 443, addrs("fe80::1%eth0"), false, "", "unusable"},
		{"bad port", public, "example.com", 0, addrs("1.1.1.1"), false, "", "port 0 out of range"},
		{"port too big", public, "example.com", 65536, addrs("1.1.1.1"), false, "", "out of range"},
		{"bad host", public, "exa mple.com", 443, addrs("1.1.1.1"), false, "", "invalid host"},
		{"non-ASCII host", public, "\u212aelvin.example", 443, addrs("1.1.1.1"), false, "", "not ASCII"},
		{"empty host", public, "", 443, addrs("1.1.1.1"), false, "", "empty host"},
		{"zoned literal", public, "fe80::1%eth0", 80, nil, false, "", "zone"},

		// public with deliberate exceptions
		{"named address and port", homeLab, "192.168.1.10", 8080, nil, true, "192.168.1.10", "rule 192.168.1.10:8080"},
		{"named address, other port", homeLab, "192.168.1.10", 22, nil, false, "", "private"},
		{"named network, web port", homeLab, "10.0.0.7", 443, nil, true, "10.0.0.7", "rule 10.0.0.0/24"},
		{"named network, other port", homeLab, "10.0.0.7", 8080, nil, false, "", "private"},
		{"outside named network", homeLab, "10.0.1.7", 443, nil, false, "", "private"},
		{"name into named network", homeLab, "wiki.lan", 80, addrs("10.0.0.9"), true, "10.0.0.9", "rule 10.0.0.0/24"},
		{"exact host:port opens private", homeLab, "nas.lan", 5000, addrs("192.168.1.20"), true, "192.168.1.20", "rule nas.lan:5000"},
		{"exact host:port, other port", homeLab, "nas.lan", 5001, addrs("192.168.1.20"), false, "", "private"},
		{"exact host:port never opens loopback", homeLab, "nas.lan", 5000, addrs("127.0.0.1"), false, "", "loopback"},
		{"exact host:port never opens metadata", homeLab, "nas.lan", 5000, addrs("169.254.169.254"), false, "", "never allowed"},
		{"domain without port does not open private", homeLab, "printer.lan", 80, addrs("192.168.1.30"), false, "", "private"},
		{"named loopback service", homeLab, "127.0.0.1", 11434, nil, true, "127.0.0.1", "rule 127.0.0.1:11434"},
		{"named loopback, other port", homeLab, "127.0.0.1", 11435, nil, false, "", "loopback"},
		{"exceptions keep public open", homeLab, "example.com", 443, addrs("1.1.1.1"), true, "1.1.1.1", "public"},

		// allowlist
		{"listed domain", list, "api.example.com", 443, addrs("1.1.1.1"), true, "1.1.1.1", "rule api.example.com"},
		{"listed domain, uppercase + dot", list, "API.Example.COM.", 80, addrs("1.1.1.1"), true, "1.1.1.1", "rule api.example.com"},
		{"listed domain, other port", list, "api.example.com", 8443, addrs("1.1.1.1"), false, "", "api.example.com:8443 is not in the group's allow list"},
		{"unlisted domain", list, "example.net", 443, addrs("1.1.1.1"), false, "", "not in the group's allow list"},
		{"listed domain is not a suffix", list, "x.api.example.com", 443, addrs("1.1.1.1"), false, "", "not in the"},
		{"suffix covers subdomain", list, "a.b.example.org", 443, addrs("1.1.1.1"), true, "1.1.1.1", "rule *.example.org"},
		{"suffix does not cover apex", list, "example.org", 443, addrs("1.1.1.1"), false, "", "not in the"},
		{"suffix does not cover look-alike", list, "badexample.org", 443, addrs("1.1.1.1"), false, "", "not in the"},
		{"listed domain to private is denied", list, "api.example.com", 443, addrs("10.9.9.9"), false, "", "10.9.9.9: private"},
		{"suffix to loopback is denied", list, "x.example.org", 443, addrs("127.0.0.1"), false, "", "loopback"},
		{"listed domain, mixed answer", list, "api.example.com", 443, addrs("1.1.1.1", "192.168.5.5"), false, "", "private"},
		{"exact host:port to private", list, "nas.lan", 5000, addrs("192.168.1.20"), true, "192.168.1.20", "rule nas.lan:5000"},
		{"exact host:port to public", list, "nas.lan", 5000, addrs("1.1.1.1"), true, "1.1.1.1", "rule nas.lan:5000"},
		{"named address", list, "192.168.1.10", 8080, nil, true, "192.168.1.10", "rule 192.168.1.10:8080"},
		{"named network any port", list, "10.0.0.200", 6379, nil, true, "10.0.0.200", "rule 10.0.0.0/24:*"},
		{"named public address", list, "1.1.1.1", 853, nil, true, "1.1.1.1", "rule 1.1.1.1:853"},
		{"unnamed public address", list, "8.8.8.8", 443, nil, false, "", "8.8.8.8:443 is not in the"},
		{"unnamed private literal", list, "192.168.1.11", 8080, nil, false, "", "not in the"},
		{"name into named network needs a name rule", list, "db.lan", 6379, addrs("10.0.0.5"), false, "", "db.lan:6379 is not in the"},
		{"listed name into named network", list, "llm.lan", 8000, addrs("10.0.0.5"), true, "10.0.0.5", "rule 10.0.0.0/24:*"},
		{"v6 literal not listed", list, "2606:4700::1", 443, nil, false, "", "[2606:4700::1]:443 is not in the"},

		{"unlisted metadata literal says metadata", list, "169.254.169.254", 80, nil, false, "", "metadata service, never allowed"},

		// none
		{"none denies public", none, "example.com", 443, addrs("1.1.1.1"), false, "", "mode none"},
		{"none names metadata", none, "169.254.169.254", 80, nil, false, "", "metadata"},
		{"none denies literal", none, "1.1.1.1", 443, nil, false, "", "mode none"},
		{"unknown mode", Policy{Mode: "open"}, "example.com", 443, addrs("1.1.1.1"), false, "", "unknown egress mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := noHost.Decide(tc.p, tc.host, tc.port, tc.addrs)
			if d.Allowed != tc.allow || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("Decide(%s, %s:%d, %v) = %+v; want allowed=%v, reason containing %q", tc.p.Mode, tc.host, tc.port, tc.addrs, d, tc.allow, tc.reason)
			}
			if tc.allow && d.Addr != netip.MustParseAddr(tc.addr) {
				t.Fatalf("connect to %v, want %s", d.Addr, tc.addr)
			}
			if !tc.allow && d.Addr.IsValid() {
				t.Fatalf("denied decision carries address %v", d.Addr)
			}
		})
	}
}

// R4: under public only the web ports of public addresses are open; SMTP
// and every other port need a rule naming the host or the address.
func TestDecidePublicOpensOnlyWebPorts(t *testing.T) {
	public := policy(t, "public")
	rules := policy(t, "public", "smtp.example.com:587", "*.mail.example:*", "93.184.215.14:25", "81.2.0.0/16:8443", "[2a00:1450::/32]:22")
	list := policy(t, "allowlist", "api.example.com:8443", "*.example.org")
	pub, pub2, pub6 := addrs("93.184.215.14"), addrs("81.2.69.160"), addrs("2a00:1450:4001:80b::200e")

	for _, tc := range []struct {
		name  string
		p     Policy
		host  string
		port  int
		addrs []netip.Addr
		want  string // "" = allowed; otherwise part of the reason
	}{
		{"SMTP by name", public, "smtp.example.com", 25, pub, `port 25 is not a web port (only 80 and 443 are open by default); the owner can open it with the egress rule "smtp.example.com:25"`},
		{"SMTP by address", public, "93.184.215.14", 25, nil, `93.184.215.14: port 25 is not a web port`},
		{"SMTP by IPv6 address", public, "2a00:1450:4001:80b::200e", 25, nil, `rule "[2a00:1450:4001:80b::200e]:25"`},
		{"submission port", public, "smtp.example.com", 587, pub, "port 587 is not a web port"},
		{"SSH", public, "git.example.com", 22, pub, "port 22 is not a web port"},
		{"port 8080", public, "example.com", 8080, pub, "port 8080 is not a web port"},
		{"highest port", public, "example.com", 65535, pub, "port 65535 is not a web port"},
		{"HTTPS by name", public, "example.com", 443, pub, ""},
		{"HTTP by name", public, "example.com", 80, pub, ""},
		{"HTTPS by address", public, "93.184.215.14", 443, nil, ""},
		{"HTTP by IPv6 address", public, "2a00:1450:4001:80b::200e", 80, nil, ""},

		{"domain rule opens its port", rules, "smtp.example.com", 587, pub, ""},
		{"domain rule, other port", rules, "smtp.example.com", 25, pub2, "port 25 is not a web port"},
		{"domain rule, other host", rules, "smtp.example.net", 587, pub, "port 587 is not a web port"},
		{"suffix rule any port", rules, "in.mail.example", 2525, pub, ""},
		{"suffix rule, apex", rules, "mail.example", 2525, pub, "port 2525 is not a web port"},
		{"address rule by literal", rules, "93.184.215.14", 25, nil, ""},
		{"address rule by name", rules, "mx.example.net", 25, pub, ""},
		{"address rule, other address", rules, "mx.example.net", 25, pub2, "port 25 is not a web port"},
		{"network rule", rules, "81.2.69.160", 8443, nil, ""},
		{"network rule, other port", rules, "81.2.69.160", 8444, nil, "port 8444 is not a web port"},
		{"IPv6 network rule", rules, "code.example", 22, pub6, ""},
		{"mixed answer, one closed", rules, "mx.example.net", 25, addrs("93.184.215.14", "81.2.69.160"), "81.2.69.160: port 25 is not a web port"},
		{"rules keep web ports open", rules, "example.com", 443, pub2, ""},

		{"allowlist port rule", list, "api.example.com", 8443, pub, ""},
		{"allowlist web ports", list, "www.example.org", 443, pub, ""},
		{"allowlist unlisted port", list, "www.example.org", 25, pub, "not in the group's allow list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := noHost.Decide(tc.p, tc.host, tc.port, tc.addrs)
			if d.Allowed != (tc.want == "") || !strings.Contains(d.Reason, tc.want) {
				t.Fatalf("Decide(%s:%d, %v) = %+v; want allowed=%v, reason containing %q", tc.host, tc.port, tc.addrs, d, tc.want == "", tc.want)
			}
		})
	}
}

func TestPrescreen(t *testing.T) {
	list := policy(t, "allowlist", "api.example.com", "10.0.0.0/24:*")
	for _, tc := range []struct {
		p    Policy
		host string
		port int
		ok   bool
	}{
		{list, "api.example.com", 443, true},
		{list, "exfil-c2VjcmV0.attacker.example", 443, false}, // never looked up
		{list, "10.0.0.3", 5432, true},
		{list, "10.0.1.3", 5432, false},
		{policy(t, "public"), "anything.example", 1234, true},
		{policy(t, "public"), "bad_name.example", 443, false},
		{policy(t, "none"), "api.example.com", 443, false},
	} {
		if _, ok := tc.p.Prescreen(tc.host, tc.port); ok != tc.ok {
			t.Errorf("%s: Prescreen(%s:%d) = %v, want %v", tc.p.Mode, tc.host, tc.port, ok, tc.ok)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, tc := range []struct{ in, want, addr string }{
		{"Example.COM.", "example.com", ""},
		{"[2001:DB8::1]", "2001:db8::1", "2001:db8::1"},
		{"::ffff:10.0.0.1", "10.0.0.1", "10.0.0.1"},
		{"1.1.1.1", "1.1.1.1", "1.1.1.1"},
	} {
		h, a, err := CanonicalHost(tc.in)
		want := netip.Addr{}
		if tc.addr != "" {
			want = netip.MustParseAddr(tc.addr)
		}
		if err != nil || h != tc.want || a != want {
			t.Errorf("CanonicalHost(%q) = %q, %v, %v; want %q, %v", tc.in, h, a, err, tc.want, want)
		}
	}
}

// The browser's policy (PublicOnly): what a rule opens for the group on a
// private address, or on a port but 80 and 443, stays closed to the
// browser, since any page it loads could send requests there (a home
// server's public IPv6 address is public); public web destinations pass as
// for the agent.
func TestDecidePublicOnly(t *testing.T) {
	for _, p := range []Policy{
		policy(t, "public", "192.168.1.10:80", "10.0.0.0/24:*", "nas.lan:5000", "nas.lan:443", "127.0.0.1:443", "api.example.com", "93.184.215.14:8443"),
		policy(t, "allowlist", "192.168.1.10:80", "10.0.0.0/24:*", "nas.lan:5000", "nas.lan:443", "127.0.0.1:443", "api.example.com", "93.184.215.14:8443"),
	} {
		for _, tc := range []struct {
			host  string
			port  int
			addrs []netip.Addr
			want  string // "" = allowed; otherwise part of the reason
		}{
			{"192.168.1.10", 80, nil, "192.168.1.10: private (RFC 1918); the browser never reaches a non-public address, even one a rule opens"},
			{"10.0.0.7", 443, nil, "the browser never reaches"},
			{"nas.lan", 443, addrs("192.168.1.20"), "nas.lan resolves to 192.168.1.20: private (RFC 1918); the browser never reaches"},
			{"127.0.0.1", 443, nil, "loopback"},
			{"::ffff:127.0.0.1", 443, nil, "loopback"},
			{"api.example.com", 443, addrs("93.184.215.14", "10.0.0.9"), "the browser never reaches"},
			// Ports: a home server on its public IPv6 address, a public
			// address at another port.
			{"nas.lan", 5000, addrs("2a02:8070:1:2::20"), "port 5000: the browser reaches ports 80 and 443 only"},
			{"nas.lan", 5000, addrs("1.1.1.1"), "port 5000: the browser reaches ports 80 and 443 only"},
			{"93.184.215.14", 8443, nil, "port 8443: the browser reaches ports 80 and 443 only"},
			{"10.0.0.7", 6379, nil, "port 6379: the browser reaches"},
			{"nas.lan", 443, addrs("1.1.1.1"), ""},
			{"api.example.com", 443, addrs("93.184.215.14"), ""},
			{"169.254.169.254", 80, nil, "never allowed"},
		} {
			open := noHost.Decide(p, tc.host, tc.port, tc.addrs)
			browser := p
			browser.PublicOnly = true
			d := noHost.Decide(browser, tc.host, tc.port, tc.addrs)
			_, screened := browser.Prescreen(tc.host, tc.port)
			if tc.want == "" {
				if !d.Allowed || !open.Allowed || !screened {
					t.Errorf("%s %s:%d: browser %+v, agent %+v; want both allowed", p.Mode, tc.host, tc.port, d, open)
				}
				continue
			}
			if d.Allowed || !strings.Contains(d.Reason, tc.want) {
				t.Errorf("%s %s:%d: browser %+v; want refused with %q", p.Mode, tc.host, tc.port, d, tc.want)
			}
			if strings.Contains(tc.want, "port") && screened {
				t.Errorf("%s %s:%d: Prescreen lets the browser look it up (or ask the owner)", p.Mode, tc.host, tc.port)
			}
			if strings.Contains(tc.want, "browser") && !open.Allowed {
				t.Errorf("%s %s:%d: the agent's own policy refuses it too (%s), so the case proves nothing", p.Mode, tc.host, tc.port, open.Reason)
			}
		}
	}
}
