package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// noHost is a Decider on a host without interface addresses, so that table
// tests do not depend on the machine they run on.
var noHost = Decider{HostAddrs: func() ([]netip.Addr, error) { return nil, nil }}

func fixedHost(self []netip.Addr) Decider {
	return Decider{HostAddrs: func() ([]netip.Addr, error) { return self, nil }}
}

// encodings returns the ways a container can name a: as a CONNECT target
// (literals) and as a DNS answer for a name (answers).
func encodings(a netip.Addr) (literals []string, answers []netip.Addr) {
	if a.Is6() {
		b := a.As16()
		long := fmt.Sprintf("%X:%X:%X:%X:%X:%X:%X:%X", // every zero written out
			uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3]), uint16(b[4])<<8|uint16(b[5]), uint16(b[6])<<8|uint16(b[7]),
			uint16(b[8])<<8|uint16(b[9]), uint16(b[10])<<8|uint16(b[11]), uint16(b[12])<<8|uint16(b[13]), uint16(b[14])<<8|uint16(b[15]))
		return []string{a.String(), "[" + a.String() + "]", long, "[" + long + "]"}, []netip.Addr{a}
	}
	v := a.As4()
	hex := fmt.Sprintf("%x:%x", uint16(v[0])<<8|uint16(v[1]), uint16(v[2])<<8|uint16(v[3]))
	mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v[0], 13: v[1], 14: v[2], 15: v[3]})
	compat := netip.AddrFrom16([16]byte{12: v[0], 13: v[1], 14: v[2], 15: v[3]})
	nat64 := netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v[0], 13: v[1], 14: v[2], 15: v[3]})
	sixto4 := netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: v[0], 3: v[1], 4: v[2], 5: v[3], 15: 1})
	literals = []string{a.String(), "::ffff:" + a.String(), "[::FFFF:" + a.String() + "]", "::ffff:" + hex,
		compat.String(), nat64.String(), "[" + sixto4.String() + "]"}
	return literals, []netip.Addr{a, mapped, compat, nat64, sixto4}
}

// hostRules are policies that would open a, were it not the host's: a rule
// naming it on every port, a network around it, a name resolving to it.
func hostRules(t *testing.T, a netip.Addr) []Policy {
	t.Helper()
	bits := 16
	if a.Is6() {
		bits = 64
	}
	named, network := Rule{Kind: Address, Prefix: netip.PrefixFrom(a, a.BitLen()), Port: AnyPort}, Rule{Kind: Network, Prefix: netip.PrefixFrom(a, bits).Masked(), Port: AnyPort}
	return []Policy{
		policy(t, "public"),
		policy(t, "public", named.String()),
		policy(t, "public", network.String(), "h.example:8080", "h.example:22"),
		policy(t, "allowlist", named.String(), "h.example:*"),
		policy(t, "allowlist", network.String(), "h.example:8080", "h.example"),
	}
}

var samplePorts = []int{1, 22, 25, 80, 443, 587, 8080, 65535}

// checkNeverReachable asserts that d refuses a under every policy of
// hostRules, on every port of ports, in every encoding, naming the reason.
func checkNeverReachable(t *testing.T, d Decider, a netip.Addr, ports []int) {
	t.Helper()
	literals, answers := encodings(a)
	for _, p := range hostRules(t, a) {
		for _, port := range ports {
			for _, lit := range literals {
				got := d.Decide(p, lit, port, nil)
				if got.Allowed || got.Addr.IsValid() {
					t.Fatalf("%s %v: CONNECT %s port %d allowed: %+v", p.Mode, p.Allow, lit, port, got)
				}
				// Under allowlist a literal no rule names is refused
				// before its address is looked at, for that reason.
				if _, ok := p.Prescreen(lit, port); ok && !strings.Contains(got.Reason, hostReason+", never allowed") {
					t.Fatalf("%s %v: CONNECT %s port %d: reason %q, want it to say %q", p.Mode, p.Allow, lit, port, got.Reason, hostReason)
				}
			}
			for _, ans := range answers {
				for _, set := range [][]netip.Addr{{ans}, {netip.MustParseAddr("93.184.215.14"), ans}} {
					got := d.Decide(p, "h.example", port, set)
					if got.Allowed || got.Addr.IsValid() {
						t.Fatalf("%s %v: h.example:%d resolving to %v allowed: %+v", p.Mode, p.Allow, port, set, got)
					}
					if _, ok := p.Prescreen("h.example", port); ok && !strings.Contains(got.Reason, hostReason+", never allowed") {
						t.Fatalf("%s %v: h.example:%d resolving to %v: reason %q, want it to say %q", p.Mode, p.Allow, port, set, got.Reason, hostReason)
					}
				}
			}
		}
	}
}

// R4: every address of the host's interfaces, of every scope, is refused on
// every port in every encoding, whatever rule names it; a loopback address
// stays as closed as loopback is (a rule naming it exactly is the owner's
// way to one service of the host). Other addresses stay open.
func TestHostAddressesNeverReachable(t *testing.T) {
	self := addrs("81.2.69.160", "2a01:4f8:1:2::3", "10.88.0.1", "192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1", "100.64.7.7", "127.0.0.1", "::1")
	d := fixedHost(self)
	for _, a := range self {
		if a.IsLoopback() {
			continue
		}
		t.Run(a.String(), func(t *testing.T) { checkNeverReachable(t, d, a, samplePorts) })
	}

	for _, tc := range []struct {
		p     Policy
		host  string
		port  int
		addrs []netip.Addr
		want  string // "" = allowed
	}{
		{policy(t, "public"), "127.0.0.1", 443, nil, "127.0.0.1: loopback"},
		{policy(t, "public", "127.0.0.1:11434"), "127.0.0.1", 11434, nil, ""},
		{policy(t, "public", "[::1]:11434"), "::1", 11434, nil, ""},
		// Neighbours of the host's addresses are not the host.
		{policy(t, "public"), "81.2.69.161", 443, nil, ""},
		{policy(t, "public"), "x.example", 443, addrs("2a01:4f8:1:2::4"), ""},
		{policy(t, "public", "10.88.0.0/16:*"), "10.88.0.2", 5432, nil, ""},
		{policy(t, "public", "10.88.0.0/16:*"), "10.88.0.1", 5432, nil, "10.88.0.1: an address of this host, never allowed"},
		{policy(t, "public", "db.lan:5432"), "db.lan", 5432, addrs("10.88.0.1"), "db.lan resolves to 10.88.0.1: an address of this host"},
		{policy(t, "public", "db.lan:5432"), "db.lan", 5432, addrs("10.88.0.3"), ""},
	} {
		got := d.Decide(tc.p, tc.host, tc.port, tc.addrs)
		if got.Allowed != (tc.want == "") || !strings.Contains(got.Reason, tc.want) {
			t.Errorf("%v: %s:%d %v = %+v; want allowed=%v, reason containing %q", tc.p.Allow, tc.host, tc.port, tc.addrs, got, tc.want == "", tc.want)
		}
	}
}

// R4: the host's addresses are read at every decision, so an address the
// host gains is refused at once; when they cannot be read nothing passes.
func TestHostAddressesReadAtEachDecision(t *testing.T) {
	var reads int
	var self []netip.Addr
	d := Decider{HostAddrs: func() ([]netip.Addr, error) { reads++; return self, nil }}
	p := policy(t, "public")
	if got := d.Decide(p, "81.2.69.160", 443, nil); !got.Allowed {
		t.Fatalf("before the host has the address: %+v", got)
	}
	self = addrs("81.2.69.160")
	if got := d.Decide(p, "81.2.69.160", 443, nil); got.Allowed || !strings.Contains(got.Reason, hostReason) {
		t.Fatalf("after the host gained the address: %+v", got)
	}
	if reads != 2 {
		t.Errorf("read the host's addresses %d times for 2 decisions", reads)
	}

	broken := Decider{HostAddrs: func() ([]netip.Addr, error) { return nil, errors.New("netlink: no buffer space") }}
	got := broken.Decide(p, "example.com", 443, addrs("93.184.215.14"))
	if got.Allowed || got.Reason != "cannot tell whether example.com is this host (netlink: no buffer space); nothing is allowed until it can" {
		t.Fatalf("host addresses unreadable: %+v", got)
	}
}

// R4, on this machine: every address of its real interfaces, enumerated
// here independently of InterfaceAddrs, is refused by the default Decide
// (which reads them itself) on sample ports, and by a Decider holding them
// on every port.
func TestRealHostAddressesNeverReachable(t *testing.T) {
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var self []netip.Addr
	for _, ifi := range ifaces {
		as, err := ifi.Addrs()
		if err != nil {
			t.Fatalf("addresses of %s: %v", ifi.Name, err)
		}
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok {
				t.Fatalf("%s: address %v of type %T", ifi.Name, a, a)
			}
			ip, _ := netip.AddrFromSlice(n.IP)
			t.Logf("%s: %s", ifi.Name, ip.Unmap())
			if !ip.Unmap().IsLoopback() {
				self = append(self, ip.Unmap())
			}
		}
	}
	if len(self) == 0 {
		t.Skip("this machine has no interface address besides loopback")
	}
	for _, a := range self {
		t.Run(a.String(), func(t *testing.T) {
			checkNeverReachable(t, Decider{}, a, samplePorts)
			rule := policy(t, "public", Rule{Kind: Address, Prefix: netip.PrefixFrom(a, a.BitLen()), Port: AnyPort}.String())
			if got := Decide(rule, a.String(), 443, nil); got.Allowed || !strings.Contains(got.Reason, hostReason) {
				t.Fatalf("Decide: %+v", got)
			}
			d := fixedHost(self)
			for port := 1; port <= 65535; port++ {
				if got := d.Decide(rule, a.String(), port, nil); got.Allowed {
					t.Fatalf("port %d: %+v", port, got)
				}
			}
		})
	}
}
