package egress

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The fuzz targets run briefly in CI, one at a time:
//
//	go test -run='^$' -fuzz='^FuzzParseRule$' -fuzztime=5s ./internal/egress
//
// and likewise for FuzzParsePolicy, FuzzCanonicalHost and FuzzDecide.

// FuzzParseRule checks that ParseRule never panics, that whatever it
// accepts is well formed and prints in a canonical form that parses back to
// the same rule, and that it never accepts an address no rule may open.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"example.com", "*.example.org:8443", "[2001:db8::1]:443", "10.0.0.0/24:*",
		"fd00::/64", "1.2.3.4", "::ffff:1.2.3.4", "[", "]:", "*.", "a:b:c", "0.0.0.0/0", "169.254.169.254",
		"[fd00::/64]:8080", "127.0.0.1:11434", "[::1]:*", "smtp.example.com:587", "*.co.uk", "localhost:80",
		"10.0.0.1/24", "example.com:080", "[::ffff:10.0.0.1]:80", "fe80::1%eth0", "2002:7f00::/32:*",
		"64:ff9b::a9fe:a9fe", "::a9fe:a9fe", "xn--bcher-kva.example", "EXAMPLE.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if r != (Rule{}) {
				t.Fatalf("ParseRule(%q) failed but returned %+v", s, r)
			}
			if !strings.HasPrefix(err.Error(), "egress rule ") {
				t.Fatalf("ParseRule(%q): error %q does not name the rule", s, err)
			}
			return
		}
		text := r.String()
		back, err := ParseRule(text)
		if err != nil {
			t.Fatalf("ParseRule(%q) = %q, which does not parse: %v", s, text, err)
		}
		if back != r || back.String() != text {
			t.Fatalf("ParseRule(%q) = %+v, round trip %+v", s, r, back)
		}
		if len(text) > len(s)+2 || strings.ContainsAny(text, " \t\r\n%") {
			t.Fatalf("ParseRule(%q) prints as %q", s, text)
		}
		switch r.Kind {
		case Domain, Suffix:
			if r.Prefix.IsValid() || checkHostname(r.Host) != nil || r.Host == "localhost" || strings.HasSuffix(r.Host, ".localhost") {
				t.Fatalf("ParseRule(%q) = name rule %+v", s, r)
			}
		case Address, Network:
			a := r.Prefix.Addr()
			if r.Host != "" || a.Zone() != "" || a.Is4In6() || r.Prefix.Masked() != r.Prefix {
				t.Fatalf("ParseRule(%q) = address rule %+v", s, r)
			}
			if r.Kind == Address && r.Prefix.Bits() != a.BitLen() {
				t.Fatalf("ParseRule(%q) = address rule of a range %s", s, r.Prefix)
			}
			if min := map[bool]int{false: MinPrefixBits4, true: MinPrefixBits6}[a.Is6()]; r.Prefix.Bits() < min {
				t.Fatalf("ParseRule(%q) accepted the broad range %s", s, r.Prefix)
			}
			// A range around the metadata address is allowed (Decide
			// keeps it closed); naming the address itself is not.
			if r.Kind == Address && (slices.Contains(neverOpened, a) || a.IsMulticast()) {
				t.Fatalf("ParseRule(%q) names %s, which no rule may open", s, a)
			}
		default:
			t.Fatalf("ParseRule(%q) = rule of kind %d", s, r.Kind)
		}
		if r.Port != WebPorts && r.Port != AnyPort && (r.Port < 1 || r.Port > 65535) {
			t.Fatalf("ParseRule(%q) port %d", s, r.Port)
		}
	})
}

// FuzzParsePolicy checks that ParsePolicy never panics, refuses whole (a
// zero Policy), and that an accepted policy is its entries parsed one by
// one, without repeats, and comes back the same from its printed rules.
func FuzzParsePolicy(f *testing.F) {
	for _, tc := range [][2]string{
		{"", ""}, {"public", "192.168.1.10:8080\n10.0.0.0/24"}, {"allowlist", "example.com\n*.example.org:*"},
		{"none", "example.com"}, {"allowlist", ""}, {"open", ""}, {"public", "example.com:443\nEXAMPLE.com:443"},
		{"public", "[2001:db8::1]:80\n[2001:DB8::1]:80"}, {"allowlist", "a.example\n\nb.example"}, {"PUBLIC", ""},
		{"public", "smtp.example.com:25\n93.184.215.14:*\n[2a00:1450::/32]:22"},
	} {
		f.Add(tc[0], tc[1])
	}
	f.Fuzz(func(t *testing.T, mode, list string) {
		var allow []string
		if list != "" {
			allow = strings.Split(list, "\n")
		}
		p, err := ParsePolicy(mode, allow)
		if err != nil {
			if p.Mode != "" || p.Allow != nil {
				t.Fatalf("ParsePolicy(%q, %q) failed (%v) but returned %+v", mode, allow, err, p)
			}
			return
		}
		switch {
		case p.Mode != None && p.Mode != Allowlist && p.Mode != Public && p.Mode != Ask,
			mode != "" && Mode(mode) != p.Mode,
			mode == "" && p.Mode != DefaultMode,
			p.Mode == None && len(p.Allow) > 0,
			p.Mode == Allowlist && len(p.Allow) == 0,
			len(p.Allow) != len(allow), len(p.Allow) > MaxRules:
			t.Fatalf("ParsePolicy(%q, %q) = %+v", mode, allow, p)
		}
		var printed []string
		for i, r := range p.Allow {
			want, err := ParseRule(allow[i])
			if err != nil || want != r {
				t.Fatalf("ParsePolicy(%q, %q): allow[%d] = %+v, ParseRule gives %+v, %v", mode, allow, i, r, want, err)
			}
			if slices.Contains(printed, r.String()) {
				t.Fatalf("ParsePolicy(%q, %q): %q accepted twice", mode, allow, r)
			}
			printed = append(printed, r.String())
		}
		back, err := ParsePolicy(string(p.Mode), printed)
		if err != nil || back.Mode != p.Mode || !slices.Equal(back.Allow, p.Allow) {
			t.Fatalf("ParsePolicy(%q, %q) = %+v; printed again %+v, %v", mode, allow, p, back, err)
		}
	})
}

// FuzzCanonicalHost checks that CanonicalHost never panics and that an
// accepted host is canonical (lowercase ASCII without a trailing dot, or an
// unmapped address without zone) and idempotent; and that Prescreen, under
// every mode, passes only valid hosts and ports, judges a host as it judges
// its canonical form, and under allowlist passes only what a rule names.
func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{"Example.COM.", "[2001:DB8::1]", "::ffff:10.0.0.1", "1.1.1.1", "", ".", "[", "[]", "a..b",
		"fe80::1%eth0", "[::1]", "\u212aelvin.example", "exa mple.com", "localhost", "1.2.3", "example.123", "0x7f.1",
		"169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::127.0.0.1", "API.example.com", "x.example.org."} {
		f.Add(s, 443)
	}
	f.Add("smtp.example.com", 25)
	f.Add("10.0.0.3", 5432)
	f.Add("example.com", 0)
	f.Add("example.com", 65536)
	policies := []Policy{
		{},
		{Mode: None},
		{Mode: Public, Allow: []Rule{mustRule("192.168.1.10:8080"), mustRule("nas.lan:5000")}},
		{Mode: Allowlist, Allow: []Rule{mustRule("api.example.com"), mustRule("*.example.org:*"), mustRule("10.0.0.0/24:*"), mustRule("[2001:db8::/32]:443")}},
	}
	f.Fuzz(func(t *testing.T, host string, port int) {
		h, a, err := CanonicalHost(host)
		if err == nil {
			if h == "" || strings.HasSuffix(h, ".") || strings.ContainsAny(h, "[]%") || strings.ToLower(h) != h {
				t.Fatalf("CanonicalHost(%q) = %q", host, h)
			}
			for i := range len(h) {
				if h[i] >= 0x80 || h[i] <= ' ' {
					t.Fatalf("CanonicalHost(%q) = %q, not printable ASCII", host, h)
				}
			}
			if a.IsValid() && (a.String() != h || a.Is4In6() || a.Zone() != "") {
				t.Fatalf("CanonicalHost(%q) = %q, address %v", host, h, a)
			}
			if _, perr := netip.ParseAddr(h); !a.IsValid() && (perr == nil || len(h) > 253) {
				t.Fatalf("CanonicalHost(%q) = name %q", host, h)
			}
			h2, a2, err2 := CanonicalHost(h)
			if h2 != h || a2 != a || err2 != nil {
				t.Fatalf("CanonicalHost(%q) = %q, %v; again: %q, %v, %v", host, h, a, h2, a2, err2)
			}
		} else if h != "" || a.IsValid() {
			t.Fatalf("CanonicalHost(%q) failed (%v) but returned %q, %v", host, err, h, a)
		}
		for _, p := range policies {
			reason, ok := p.Prescreen(host, port)
			if ok != (reason == "") {
				t.Fatalf("%s: Prescreen(%q, %d) = %q, %v", p.Mode, host, port, reason, ok)
			}
			if !ok {
				continue
			}
			if err != nil || port < 1 || port > 65535 || p.Mode == None {
				t.Fatalf("%s: Prescreen(%q, %d) passed (host error %v)", p.Mode, host, port, err)
			}
			if r2, ok2 := p.Prescreen(h, port); ok2 != ok || r2 != reason {
				t.Fatalf("%s: Prescreen(%q) = %v, Prescreen(%q) = %v %q", p.Mode, host, ok, h, ok2, r2)
			}
			if p.Mode == Allowlist && !named(p, h, a, port) {
				t.Fatalf("allowlist: Prescreen(%q, %d) passed though no rule names it", host, port)
			}
		}
	})
}

// named reports whether a rule of p covers host h (or its address a) at
// port, by the rules' documented meaning.
func named(p Policy, h string, a netip.Addr, port int) bool {
	for _, r := range p.Allow {
		if !r.AllowsPort(port) {
			continue
		}
		switch r.Kind {
		case Domain:
			if !a.IsValid() && h == r.Host {
				return true
			}
		case Suffix:
			if !a.IsValid() && strings.HasSuffix(h, "."+r.Host) {
				return true
			}
		case Address, Network:
			if a.IsValid() && r.Prefix.Contains(a) {
				return true
			}
		}
	}
	return false
}

func mustRule(s string) Rule {
	r, err := ParseRule(s)
	if err != nil {
		panic(err)
	}
	return r
}

// fuzzSelf are the interface addresses of the host FuzzDecide pretends to
// run on: public, private, link-local and loopback ones.
var fuzzSelf = []netip.Addr{netip.MustParseAddr("81.2.69.160"), netip.MustParseAddr("2a01:4f8:1:2::3"),
	netip.MustParseAddr("10.88.0.1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}

// neverOpened are single addresses no policy may ever reach.
var neverOpened = []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("100.100.100.200"), netip.MustParseAddr("192.0.0.192"), netip.MustParseAddr("168.63.129.16"),
	netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("::")}

// decodings returns a and every IPv4 address it carries (IPv4-mapped,
// IPv4-compatible, NAT64, 6to4), worked out here from the RFCs rather than
// with the package's table.
func decodings(a netip.Addr) []netip.Addr {
	a = a.WithZone("")
	out := []netip.Addr{a, a.Unmap()}
	if !a.Is6() {
		return out
	}
	b := a.As16()
	for _, c := range []struct {
		prefix string
		at     int
	}{{"::/96", 12}, {"::ffff:0:0/96", 12}, {"64:ff9b::/96", 12}, {"2002::/16", 2}} {
		if netip.MustParsePrefix(c.prefix).Contains(a) {
			out = append(out, netip.AddrFrom4([4]byte(b[c.at:c.at+4])))
		}
	}
	return out
}

// FuzzDecide checks, for any policy that parses, any host, port and DNS
// answer, on a host with the addresses fuzzSelf, that Decide never panics
// and never lets through: a host address (but loopback) or an address no
// rule may open, in any encoding; loopback or a private address that no
// rule names; a public address on a port other than 80 and 443 that no rule
// opens (under public), or anything no rule names (under allowlist). An
// allowed decision connects to the first address checked. Under
// PublicOnly (the browser's) it allows no more, and only public addresses
// at ports 80 and 443.
func FuzzDecide(f *testing.F) {
	v4 := func(s string) []byte { a := netip.MustParseAddr(s).As4(); return append([]byte{0}, a[:]...) }
	v6 := func(s string) []byte { a := netip.MustParseAddr(s).As16(); return append([]byte{1}, a[:]...) }
	cat := func(bs ...[]byte) []byte { return slices.Concat(bs...) }
	for _, tc := range []struct {
		mode, rules, host string
		port              int
		answer            []byte
	}{
		{"public", "", "example.com", 443, v4("93.184.215.14")},
		{"public", "", "example.com", 25, v4("93.184.215.14")},
		{"public", "smtp.example.com:25", "smtp.example.com", 25, v4("93.184.215.14")},
		{"public", "", "81.2.69.160", 443, nil},
		{"public", "81.2.69.160:*", "81.2.69.160", 22, nil},
		{"public", "81.2.0.0/16:*", "x.example", 8080, v6("::ffff:81.2.69.160")},
		{"public", "10.88.0.0/16:*", "10.88.0.1", 5432, nil},
		{"public", "db.lan:5432", "db.lan", 5432, v4("10.88.0.1")},
		{"public", "[2a01:4f8::/32]:*", "x.example", 443, v6("2a01:4f8:1:2::3")},
		{"public", "[fe80::/64]:*", "fe80::1", 22, nil},
		{"public", "", "x.example", 443, v6("64:ff9b::5102:45a0")},
		{"public", "", "x.example", 443, v6("2002:5102:45a0::1")},
		{"public", "", "x.example", 443, v6("::5102:45a0")},
		{"public", "127.0.0.1:11434", "127.0.0.1", 11434, nil},
		{"public", "nas.lan:5000", "nas.lan", 5000, v4("127.0.0.1")},
		{"public", "", "x.example", 80, v4("169.254.169.254")},
		{"public", "", "x.example", 443, cat(v4("93.184.215.14"), v4("10.0.0.1"))},
		{"allowlist", "api.example.com\n10.0.0.0/24:*", "api.example.com", 443, v4("10.0.0.9")},
		{"allowlist", "*.example.org:*", "a.example.org", 22, v4("93.184.215.14")},
		{"none", "", "example.com", 443, v4("93.184.215.14")},
		{"", "", "[::ffff:81.2.69.160]", 443, nil},
	} {
		f.Add(tc.mode, tc.rules, tc.host, tc.port, tc.answer)
	}
	d := fixedHost(fuzzSelf)
	f.Fuzz(func(t *testing.T, mode, rules, host string, port int, answer []byte) {
		var allow []string
		if rules != "" {
			allow = strings.Split(rules, "\n")
		}
		p, err := ParsePolicy(mode, allow)
		if err != nil {
			return
		}
		var addrs []netip.Addr
		for len(answer) > 0 && len(addrs) < 8 {
			n := 4
			if answer[0]&1 == 1 {
				n = 16
			}
			if len(answer) < 1+n {
				break
			}
			a, _ := netip.AddrFromSlice(answer[1 : 1+n])
			addrs, answer = append(addrs, a), answer[1+n:]
		}
		got := d.Decide(p, host, port, addrs)
		// The browser's policy never allows more than the agent's, and only
		// public addresses at ports 80 and 443.
		browser := p
		browser.PublicOnly = true
		if b := d.Decide(browser, host, port, addrs); b.Allowed {
			if !got.Allowed || b.Addr != got.Addr || !webPort(port) {
				t.Fatalf("PublicOnly %s %v: %q:%d allowed (%+v) beyond the agent's %+v", p.Mode, p.Allow, host, port, b, got)
			}
			seen := addrs
			if _, lit, _ := CanonicalHost(host); lit.IsValid() {
				seen = []netip.Addr{lit}
			}
			for _, a := range seen {
				if _, c := classifyOn(a.Unmap(), fuzzSelf); c != public {
					t.Fatalf("PublicOnly %s %v: %q:%d allowed to %v, not public: %+v", p.Mode, p.Allow, host, port, a, b)
				}
			}
		}
		if !got.Allowed {
			if got.Addr.IsValid() || got.Reason == "" {
				t.Fatalf("refusal %+v", got)
			}
			return
		}
		h, lit, err := CanonicalHost(host)
		checked := addrs
		if lit.IsValid() {
			checked = []netip.Addr{lit}
		}
		if err != nil || p.Mode == None || port < 1 || port > 65535 || len(checked) == 0 || got.Addr != checked[0].Unmap() {
			t.Fatalf("Decide(%s %v, %q, %d, %v) = %+v", p.Mode, p.Allow, host, port, addrs, got)
		}
		if p.Mode == Allowlist && !named(p, h, lit, port) {
			t.Fatalf("allowlist %v: %q:%d allowed though no rule names it: %+v", p.Allow, host, port, got)
		}
		for _, a := range checked {
			if a.Zone() != "" {
				t.Fatalf("%q:%d allowed to zoned %v", host, port, a)
			}
			loopback := false
			for _, e := range decodings(a) {
				if e.IsLoopback() {
					loopback = true
				} else if slices.Contains(fuzzSelf, e) {
					t.Fatalf("%s %v: %q:%d allowed to %v, the host's own %v: %+v", p.Mode, p.Allow, host, port, a, e, got)
				}
				if slices.Contains(neverOpened, e) || e.IsMulticast() {
					t.Fatalf("%s %v: %q:%d allowed to %v, which carries %v: %+v", p.Mode, p.Allow, host, port, a, e, got)
				}
			}
			byAddr := slices.ContainsFunc(p.Allow, func(r Rule) bool {
				return (r.Kind == Address || r.Kind == Network) && r.AllowsPort(port) && r.Prefix.Contains(a.Unmap())
			})
			byService := !lit.IsValid() && slices.ContainsFunc(p.Allow, func(r Rule) bool { return r.Kind == Domain && r.Port == port && r.Host == h })
			if _, c := classify(a); c != public && !byAddr && (loopback || !byService) {
				t.Fatalf("%s %v: %q:%d allowed to %v, which no rule names: %+v", p.Mode, p.Allow, host, port, a, got)
			}
			if !webPort(port) && !byAddr && !named(p, h, lit, port) {
				t.Fatalf("%s %v: %q:%d allowed on a port no rule opens: %+v", p.Mode, p.Allow, host, port, got)
			}
		}
	})
}
