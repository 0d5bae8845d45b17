package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Kind is what a Rule names.
type Kind uint8

// The kinds of rules.
const (
	// Domain names one host: "example.com".
	Domain Kind = iota + 1
	// Suffix names every subdomain of a domain, not the domain itself:
	// "*.example.org".
	Suffix
	// Address names one IP address: "192.168.1.10", "[2001:db8::1]".
	Address
	// Network names an IPv4 or IPv6 CIDR range: "10.0.0.0/24".
	Network
)

// Special values of Rule.Port.
const (
	// WebPorts (a rule without ":port") allows ports 80 and 443.
	WebPorts = 0
	// AnyPort (":*") allows every port.
	AnyPort = -1
)

// Minimum prefix lengths of Network rules: anything broader is refused as a
// mistake rather than a policy ("0.0.0.0/0" would open every private
// network the host can reach).
const (
	MinPrefixBits4 = 8
	MinPrefixBits6 = 32
)

// MaxRuleLen bounds the text of one rule.
const MaxRuleLen = 300

// Rule is one entry of an allow list. Build it with ParseRule; String gives
// it back in canonical form.
type Rule struct {
	Kind Kind
	// Host is the host name of a Domain rule, or the parent domain (without
	// "*.") of a Suffix rule.
	Host string
	// Prefix is the address of an Address rule (a single-address prefix) or
	// the range of a Network rule.
	Prefix netip.Prefix
	// Port is 1..65535, WebPorts or AnyPort.
	Port int
}

// ParseRule parses one allow-list entry. The grammar:
//
//	rule    = target [ ":" port ]
//	target  = domain | "*." domain | ipv4 | "[" ipv6 "]" | ipv6
//	        | ipv4 "/" bits | "[" ipv6 "/" bits "]" | ipv6 "/" bits
//	port    = 1..65535 | "*"
//
// Without a port a rule allows ports 80 and 443 (the web); ":N" allows only
// port N and ":*" every port. An IPv6 address or range takes a port only
// inside brackets: "[2001:db8::1]:8080", "[fd00::/64]:*".
//
// Domains are lowercase ASCII host names (punycode for international names)
// without a trailing dot; "localhost" is refused (a name never opens the
// host's own loopback: name the address, e.g. "127.0.0.1:11434").
// "*.example.org" matches a.example.org and a.b.example.org but not
// example.org. A suffix must cover at least two labels and not a known
// registry suffix such as "*.co.uk".
//
// Network rules must be canonical (host bits zero) and at least /8 (IPv4)
// or /32 (IPv6). A rule naming an address no rule may open (the cloud
// metadata service, multicast, ...; see classify) is refused.
func ParseRule(s string) (Rule, error) {
	r, err := parseRule(s)
	if err != nil {
		return Rule{}, fmt.Errorf("egress rule %q: %w", s, err)
	}
	return r, nil
}

func parseRule(s string) (Rule, error) {
	if s == "" {
		return Rule{}, errors.New("empty")
	}
	if len(s) > MaxRuleLen {
		return Rule{}, fmt.Errorf("%d characters, max %d", len(s), MaxRuleLen)
	}
	if strings.Contains(s, "://") {
		return Rule{}, errors.New(`this is a URL; write the host and, if needed, the port ("example.com:8443")`)
	}
	target, port, err := splitPort(s)
	if err != nil {
		return Rule{}, err
	}
	r := Rule{Port: port}
	switch {
	case strings.Contains(target, "/"):
		if before, _, _ := strings.Cut(target, "/"); !isAddrLike(before) {
			return Rule{}, errors.New("a path is not allowed: rules name hosts, addresses or CIDR ranges")
		}
		pfx, err := netip.ParsePrefix(target)
		if err != nil {
			return Rule{}, fmt.Errorf("not a CIDR range: %w", err)
		}
		if err := checkPrefix(pfx); err != nil {
			return Rule{}, err
		}
		r.Kind, r.Prefix = Network, pfx
	case isAddrLike(target):
		ip, err := netip.ParseAddr(target)
		if err != nil {
			return Rule{}, fmt.Errorf("not an IP address: %w", err)
		}
		if ip.Zone() != "" {
			return Rule{}, fmt.Errorf("address %s has a zone; zones are not allowed", ip)
		}
		if ip.Is4In6() {
			return Rule{}, fmt.Errorf("write the IPv4-mapped address %s as %s", ip, ip.Unmap())
		}
		if reason, c := classify(ip); c == never {
			return Rule{}, fmt.Errorf("%s is %s, which no rule can open", ip, reason)
		}
		r.Kind, r.Prefix = Address, netip.PrefixFrom(ip, ip.BitLen())
	default:
		host, wildcard := strings.CutPrefix(target, "*.")
		if err := checkHostname(host); err != nil {
			return Rule{}, err
		}
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return Rule{}, errors.New(`"localhost" is the host itself; a name never opens loopback, name the address instead (e.g. "127.0.0.1:8080")`)
		}
		r.Kind, r.Host = Domain, host
		if wildcard {
			if err := checkSuffixBreadth(host); err != nil {
				return Rule{}, err
			}
			r.Kind = Suffix
		}
	}
	return r, nil
}

// splitPort splits "target[:port]", bracketed IPv6 included, and parses
// the port.
func splitPort(s string) (target string, port int, err error) {
	portText, hasPort := "", false
	if rest, ok := strings.CutPrefix(s, "["); ok {
		inner, after, ok := strings.Cut(rest, "]")
		if !ok {
			return "", 0, errors.New("'[' without ']'")
		}
		if !strings.Contains(inner, ":") {
			return "", 0, errors.New("brackets are only for IPv6 addresses")
		}
		target = inner
		switch {
		case after == "":
		case after[0] == ':':
			portText, hasPort = after[1:], true
		default:
			return "", 0, fmt.Errorf("unexpected %q after ']'", after)
		}
	} else if strings.Count(s, ":") > 1 {
		target = s // a bare IPv6 address or range: no port
	} else {
		target, portText, hasPort = strings.Cut(s, ":")
	}
	if target == "" {
		return "", 0, errors.New("no host, address or range before the port")
	}
	if !hasPort {
		return target, WebPorts, nil
	}
	port, err = parsePort(portText)
	return target, port, err
}

// parsePort accepts "*" or a decimal port 1..65535 without sign or leading
// zeros.
func parsePort(s string) (int, error) {
	if s == "*" {
		return AnyPort, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '0' || s[0] == '+' || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: want 1-65535 or *", s)
	}
	return n, nil
}

// isAddrLike reports whether target is meant as an IP address: it has a
// colon (IPv6) or consists of digits and dots only (IPv4).
func isAddrLike(target string) bool {
	return strings.Contains(target, ":") || strings.Trim(target, "0123456789.") == ""
}

func checkPrefix(pfx netip.Prefix) error {
	addr := pfx.Addr()
	if addr.Zone() != "" {
		return fmt.Errorf("range %s has a zone; zones are not allowed", pfx)
	}
	if addr.Is4In6() {
		return fmt.Errorf("write IPv4 ranges in IPv4 form, not %s", pfx)
	}
	if pfx.Masked() != pfx {
		return fmt.Errorf("range %s has host bits set; did you mean %s?", pfx, pfx.Masked())
	}
	minBits := MinPrefixBits4
	if addr.Is6() {
		minBits = MinPrefixBits6
	}
	if pfx.Bits() < minBits {
		return fmt.Errorf("range %s is too broad (at most /%d)", pfx, minBits)
	}
	for _, s := range specials {
		if s.class == never && s.embed == 0 && s.prefix.Bits() <= pfx.Bits() && s.prefix.Contains(addr) {
			return fmt.Errorf("range %s is %s, which no rule can open", pfx, s.reason)
		}
	}
	// Ranges outside the table (reserved IPv6) are judged by their ends.
	r1, c1 := classify(addr)
	r2, c2 := classify(lastAddr(pfx))
	if c1 == never && c2 == never && r1 == r2 {
		return fmt.Errorf("range %s is %s, which no rule can open", pfx, r1)
	}
	return nil
}

func lastAddr(pfx netip.Prefix) netip.Addr {
	b := pfx.Addr().AsSlice()
	for i := pfx.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// checkHostname accepts lowercase RFC 1123 host names: labels of 1..63
// letters, digits and inner hyphens, 253 characters at most, no trailing
// dot, and a last label that is not all digits (which resolvers would take
// for an address).
func checkHostname(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name is %d characters, max 253", len(h))
	}
	labels := strings.Split(h, ".")
	for _, label := range labels {
		if label == "" {
			return fmt.Errorf("host name %q has an empty label (leading, trailing or double dot)", h)
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q is longer than 63 characters", label)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("character %q not allowed in host name %q (lowercase letters, digits, '-' and '.'; punycode for international names)", c, h)
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("host name %q ends in a numeric label", h)
	}
	return nil
}

// registryLabels are second-level labels under which country registries
// sell names (co.uk, com.au, ac.jp, ...): "*.co.uk" is as broad as "*.com".
// This is a heuristic, not the public suffix list.
var registryLabels = map[string]bool{
	"ac": true, "co": true, "com": true, "edu": true, "go": true, "gob": true,
	"gov": true, "gv": true, "ltd": true, "me": true, "mil": true, "ne": true,
	"net": true, "nic": true, "or": true, "org": true, "plc": true, "sch": true,
}

// checkSuffixBreadth refuses "*.com" and "*.co.uk"-like suffixes.
func checkSuffixBreadth(host string) error {
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return fmt.Errorf(`"*.%s" is too broad: a wildcard must cover a domain with at least two labels`, host)
	}
	if len(labels) == 2 && len(labels[1]) == 2 && registryLabels[labels[0]] {
		return fmt.Errorf(`"*.%s" is too broad: %s is a registry suffix`, host, host)
	}
	return nil
}

// String is the rule in canonical form; ParseRule(r.String()) gives r back.
func (r Rule) String() string {
	var target string
	switch r.Kind {
	case Domain:
		target = r.Host
	case Suffix:
		target = "*." + r.Host
	case Address:
		target = r.Prefix.Addr().String()
	case Network:
		target = r.Prefix.String()
	default:
		return "(invalid rule)"
	}
	// JoinHostPort brackets an IPv6 address or range.
	switch r.Port {
	case WebPorts:
		return target
	case AnyPort:
		return net.JoinHostPort(target, "*")
	}
	return net.JoinHostPort(target, strconv.Itoa(r.Port))
}

// AllowsPort reports whether the rule covers port.
func (r Rule) AllowsPort(port int) bool {
	switch r.Port {
	case AnyPort:
		return true
	case WebPorts:
		return webPort(port)
	default:
		return port == r.Port
	}
}
