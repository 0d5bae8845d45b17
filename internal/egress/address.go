package egress

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// class is how an address may be reached.
type class uint8

const (
	public  class = iota // the public internet
	private              // not public; a rule that names it explicitly opens it
	never                // no rule opens it (metadata, unspecified, multicast, ...)
)

// special is one range of addresses that is not the public internet.
type special struct {
	prefix netip.Prefix
	reason string
	class  class
	// embed is where an IPv6 range carries an IPv4 address (as a bit offset)
	// to be classified instead; 0 means none.
	embed int
}

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// specials lists every non-public range, most specific first: the first
// range containing an address decides (so the metadata address is "cloud
// metadata", not merely "link-local").
var specials = []special{
	// Cloud instance metadata and platform endpoints: credentials of the
	// machine the host runs on. No rule can open them.
	{prefix: p("169.254.169.254/32"), reason: "the cloud metadata service", class: never},
	{prefix: p("169.254.170.2/32"), reason: "the cloud (ECS) credentials service", class: never},
	{prefix: p("100.100.100.200/32"), reason: "the cloud (Alibaba) metadata service", class: never},
	{prefix: p("192.0.0.192/32"), reason: "the cloud (Oracle) metadata service", class: never},
	{prefix: p("168.63.129.16/32"), reason: "the cloud (Azure) platform endpoint", class: never},
	{prefix: p("fd00:ec2::254/128"), reason: "the cloud (AWS IPv6) metadata service", class: never},

	// IPv4.
	{prefix: p("0.0.0.0/32"), reason: "unspecified", class: never},
	{prefix: p("0.0.0.0/8"), reason: `"this network" (0.0.0.0/8)`, class: never},
	{prefix: p("255.255.255.255/32"), reason: "broadcast", class: never},
	{prefix: p("127.0.0.0/8"), reason: "loopback", class: private},
	{prefix: p("10.0.0.0/8"), reason: "private (RFC 1918)", class: private},
	{prefix: p("172.16.0.0/12"), reason: "private (RFC 1918)", class: private},
	{prefix: p("192.168.0.0/16"), reason: "private (RFC 1918)", class: private},
	{prefix: p("100.64.0.0/10"), reason: "shared address space (CGNAT, RFC 6598)", class: private},
	{prefix: p("169.254.0.0/16"), reason: "link-local", class: private},
	{prefix: p("192.0.0.0/24"), reason: "IETF protocol assignments (192.0.0.0/24)", class: private},
	{prefix: p("192.0.2.0/24"), reason: "documentation (TEST-NET-1)", class: private},
	{prefix: p("198.51.100.0/24"), reason: "documentation (TEST-NET-2)", class: private},
	{prefix: p("203.0.113.0/24"), reason: "documentation (TEST-NET-3)", class: private},
	{prefix: p("192.88.99.0/24"), reason: "6to4 relay anycast (deprecated)", class: private},
	{prefix: p("198.18.0.0/15"), reason: "benchmarking (198.18.0.0/15)", class: private},
	{prefix: p("224.0.0.0/4"), reason: "multicast", class: never},
	{prefix: p("240.0.0.0/4"), reason: "reserved (240.0.0.0/4)", class: never},

	// IPv6.
	{prefix: p("::/128"), reason: "unspecified", class: never},
	{prefix: p("::1/128"), reason: "loopback", class: private},
	// Addresses that carry an IPv4 address: the IPv4 address decides, so
	// ::ffff:127.0.0.1 or 64:ff9b::a9fe:a9fe cannot sneak past the checks.
	{prefix: p("::ffff:0:0/96"), reason: "IPv4-mapped", embed: 96},
	{prefix: p("::/96"), reason: "IPv4-compatible", embed: 96},
	{prefix: p("64:ff9b::/96"), reason: "NAT64", embed: 96},
	{prefix: p("2002::/16"), reason: "6to4", embed: 16},
	{prefix: p("64:ff9b:1::/48"), reason: "local-use NAT64 (64:ff9b:1::/48)", class: private},
	// Teredo hides an obfuscated IPv4 client address; nothing legitimate
	// needs it from a container.
	{prefix: p("2001::/32"), reason: "Teredo tunnel", class: never},
	{prefix: p("2001:2::/48"), reason: "benchmarking (2001:2::/48)", class: private},
	{prefix: p("2001:10::/28"), reason: "ORCHID (2001:10::/28)", class: private},
	{prefix: p("2001:20::/28"), reason: "ORCHIDv2 (2001:20::/28)", class: private},
	{prefix: p("2001:db8::/32"), reason: "documentation (2001:db8::/32)", class: private},
	{prefix: p("3fff::/20"), reason: "documentation (3fff::/20)", class: private},
	{prefix: p("100::/64"), reason: "discard-only (100::/64)", class: private},
	{prefix: p("fc00::/7"), reason: "unique local (fc00::/7)", class: private},
	{prefix: p("fe80::/10"), reason: "link-local", class: private},
	{prefix: p("fec0::/10"), reason: "site-local (deprecated)", class: private},
	{prefix: p("ff00::/8"), reason: "multicast", class: never},
}

// globalUnicast is the only IPv6 range the public internet uses.
var globalUnicast = p("2000::/3")

// classify says how ip may be reached and, if it is anything but a public
// internet address, why: loopback, private (RFC 1918), link-local
// (including the cloud metadata service 169.254.169.254 and fe80::/10),
// CGNAT, multicast, unspecified, broadcast, reserved, benchmarking and
// documentation ranges, IPv6 unique-local and site-local, Teredo, and the
// AWS IPv6 metadata address. IPv6 addresses that embed an IPv4 address (IPv4-mapped,
// IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the
// embedded address. The zero Addr is forbidden.
//
// Decide lets a rule that names a forbidden address open it, except for the
// ones no rule can open: cloud metadata and platform endpoints, unspecified,
// "this network", broadcast, multicast, reserved and Teredo addresses, and
// (known only to Decide, which reads them) the host's own addresses.
func classify(ip netip.Addr) (string, class) { return classifyOn(ip, nil) }

// hostReason is why an address of the host's own interfaces is refused.
const hostReason = "an address of this host"

// classifyOn is classify on a host whose interfaces have the addresses
// self (mapped or zoned as they come): each of them, in any encoding, is
// never reachable.
func classifyOn(ip netip.Addr, self []netip.Addr) (string, class) {
	if !ip.IsValid() {
		return "invalid address", never
	}
	ip = ip.WithZone("")
	// R4: the host's own addresses reach every service bound to 0.0.0.0
	// or ::, and a broad rule ("10.0.0.0/8:*") would open them by accident.
	// Loopback stays as it was: closed unless a rule names it, the owner's
	// deliberate way to one host service ("127.0.0.1:11434").
	if !ip.IsLoopback() && slices.ContainsFunc(self, func(s netip.Addr) bool { return s.Unmap().WithZone("") == ip }) {
		return hostReason, never
	}
	for _, s := range specials {
		if !s.prefix.Contains(ip) {
			continue
		}
		if s.embed == 0 {
			return s.reason, s.class
		}
		v4 := embedded(ip, s.embed)
		reason, c := classifyOn(v4, self)
		if c == public {
			return "", public
		}
		return s.reason + " address of " + v4.String() + ", " + reason, c
	}
	if ip.Is6() && !globalUnicast.Contains(ip) {
		return "reserved IPv6 (outside global unicast 2000::/3)", never
	}
	return "", public
}

// embedded returns the IPv4 address stored at bit offset off of the IPv6
// address ip.
func embedded(ip netip.Addr, off int) netip.Addr {
	b := ip.As16()
	var v4 [4]byte
	copy(v4[:], b[off/8:off/8+4])
	return netip.AddrFrom4(v4)
}

// InterfaceAddrs returns every address of every network interface of this
// host, whatever its scope or state, read afresh from the kernel so that an
// address added a moment ago counts. It is Decider's default HostAddrs.
func InterfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list this host's interface addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return nil, fmt.Errorf("list this host's interface addresses: cannot read %q", a)
		}
		out = append(out, addr.Unmap())
	}
	return out, nil
}
