package egress

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mode is a group's egress mode.
type Mode string

// The modes.
const (
	// None: no destination at all.
	None Mode = "none"
	// Allowlist: only destinations a rule names.
	Allowlist Mode = "allowlist"
	// Public: any public internet address on the web ports (80 and 443),
	// plus the other ports and private addresses rules name.
	Public Mode = "public"
	// Ask: what rules name, as under allowlist; any other public
	// destination is held while the owner is asked (see Decision.Ask).
	Ask Mode = "ask"
	// DefaultMode is the mode of an empty mode string.
	DefaultMode = Public
)

// MaxRules bounds the length of an allow list.
const MaxRules = 256

// Policy is one group's egress policy. The zero Policy (empty mode) behaves
// as DefaultMode with no rules.
type Policy struct {
	Mode  Mode
	Allow []Rule
	// PublicOnly refuses every address that is not public and every port
	// but 80 and 443, whatever rule opens them: the policy of the group's
	// browser, since any page the browser loads can send requests to what
	// its proxy reaches (a destination the owner opened for the agent,
	// "nas.lan:5000" or "192.168.1.10:8080", would be open to every page's
	// scripts too, and a home server's public IPv6 address is public).
	// Never stored; the gateway sets it on the browser's socket.
	PublicOnly bool
}

// ParsePolicy builds a Policy from its stored form: a mode ("" means
// DefaultMode) and the allow list's entries (see ParseRule). Under none no
// entry is allowed (it would have no effect); allowlist needs at least one;
// under public entries name what the group may reach besides the web ports
// of the public internet: other ports ("smtp.example.com:587") and private
// destinations ("192.168.1.10:8080"). An entry listed twice is an error.
func ParsePolicy(mode string, allow []string) (Policy, error) {
	m := cmp.Or(Mode(mode), DefaultMode)
	switch m {
	case None:
		if len(allow) > 0 {
			return Policy{}, fmt.Errorf("egress: mode %q allows nothing, so it takes no allow list (got %d entries)", None, len(allow))
		}
	case Allowlist:
		if len(allow) == 0 {
			return Policy{}, fmt.Errorf("egress: mode %q needs at least one entry in the allow list", Allowlist)
		}
	case Public, Ask:
	default:
		return Policy{}, fmt.Errorf("egress: unknown mode %q (want %q, %q, %q, %q or empty for %q)", mode, None, Allowlist, Public, Ask, DefaultMode)
	}
	if len(allow) > MaxRules {
		return Policy{}, fmt.Errorf("egress: %d allow-list entries, max %d", len(allow), MaxRules)
	}
	p := Policy{Mode: m}
	seen := map[string]int{}
	for i, s := range allow {
		r, err := ParseRule(s)
		if err != nil {
			return Policy{}, fmt.Errorf("egress: allow[%d]: %w", i, err)
		}
		if j, dup := seen[r.String()]; dup {
			return Policy{}, fmt.Errorf("egress: allow[%d] %q repeats allow[%d]", i, s, j)
		}
		seen[r.String()] = i
		p.Allow = append(p.Allow, r)
	}
	return p, nil
}

// Decision is the verdict on one destination.
type Decision struct {
	Allowed bool
	// Reason says why, in a few words fit for a log line and a 403 body.
	Reason string
	// Addr is the address to connect to when Allowed: one of the addresses
	// that were checked (IPv4-mapped addresses unmapped). Connect to it and
	// to nothing else, so a second DNS answer cannot change the destination.
	Addr netip.Addr
	// Ask is set (Allowed false) under mode ask when every address passed
	// except public ones no rule names: the owner may allow the
	// destination, and then Addr is the address to connect to. Private,
	// loopback and host addresses never get Ask: they stay refused.
	Ask bool
}

func deny(format string, args ...any) Decision {
	return Decision{Reason: fmt.Sprintf(format, args...)}
}

// Prescreen decides what can be decided before host is resolved. It says
// no to invalid hosts and ports (under PublicOnly every port but 80 and
// 443), to everything under none, and under
// allowlist to a name no name rule covers at that port (and to an IP
// literal no address rule covers): such names are never looked up, so a
// group cannot leak data through DNS queries for names nothing allows.
// ok means "resolve host, then ask Decide".
func (p Policy) Prescreen(host string, port int) (reason string, ok bool) {
	if port < 1 || port > 65535 {
		return fmt.Sprintf("port %d out of range", port), false
	}
	if p.PublicOnly && !webPort(port) {
		return fmt.Sprintf("port %d: the browser reaches ports 80 and 443 only, even where a rule opens another for the group, since any page it loads could reach it too (the agent's own tools can)", port), false
	}
	h, lit, err := CanonicalHost(host)
	if err != nil {
		return err.Error(), false
	}
	if lit.IsValid() {
		// Say so plainly when a literal is one no policy opens: such
		// attempts (the metadata service) are worth noticing in the log.
		if reason, c := classify(lit); c == never {
			return fmt.Sprintf("%s: %s, never allowed", h, reason), false
		}
	}
	switch p.mode() {
	case None:
		return "egress is off for this group (mode none)", false
	case Public, Ask:
		// Every name may be looked up here (at 443 anyway); Decide then
		// says why a closed port or a private address is refused. Under
		// ask the gateway asks the owner first when AskFirst says so.
		return "", true
	case Allowlist:
		if lit.IsValid() {
			if p.addrRule(lit, port) != nil {
				return "", true
			}
		} else if p.nameRule(h, port) != nil {
			return "", true
		}
		return fmt.Sprintf("%s is not in the group's allow list", joinHostPort(h, port)), false
	}
	return fmt.Sprintf("unknown egress mode %q", p.Mode), false
}

// webPort reports whether port is one the default policy opens on the
// public internet.
func webPort(port int) bool { return port == 80 || port == 443 }

// Decide is Decider{}.Decide: it judges against this host's real
// interface addresses.
func Decide(p Policy, host string, port int, addrs []netip.Addr) Decision {
	return Decider{}.Decide(p, host, port, addrs)
}

// Decider judges destinations on one host. The zero Decider reads the
// host's interface addresses afresh at every decision.
type Decider struct {
	// HostAddrs lists the addresses of the host's own interfaces, none of
	// which is ever reachable; nil means InterfaceAddrs. Tests give a
	// fixed list.
	HostAddrs func() ([]netip.Addr, error)
}

// Decide decides whether the group with policy p may connect to host:port,
// which resolved to addrs (every address the resolver returned). If host is
// an IP literal, that address is the only one considered and addrs is
// ignored.
//
// Every address must pass, so a name resolving to one public and one
// private address is refused (no mixing): the client could be steered to
// either. An address passes
//
//   - under public: if it is public (see classify) and port is 80 or 443,
//     or an Address/Network rule covers it at port, or a Domain/Suffix rule
//     covers host at port and the address is public, or a Domain rule names
//     host with this exact port ("nas.lan:5000") and the address is not
//     loopback;
//   - under allowlist: after Prescreen passes (a name rule covers
//     host:port, or an address rule covers the literal), if it is public or
//     opened as under public. A domain rule without an exact port, and a
//     suffix rule, never open a private address: whoever controls the
//     name's DNS decides where it points;
//   - under ask: as under allowlist; a public address no rule opens gets
//     Decision.Ask instead of a refusal, so the owner can be asked;
//   - under none: never.
//
// Addresses no rule can open (cloud metadata, multicast, ...) never pass,
// nor does any address of the host's own interfaces except loopback, in
// any encoding (IPv4-mapped, NAT64, ...). Under p.PublicOnly no address
// but a public one passes. If the host's addresses cannot be read, nothing
// passes.
func (d Decider) Decide(p Policy, host string, port int, addrs []netip.Addr) Decision {
	if reason, ok := p.Prescreen(host, port); !ok {
		return deny("%s", reason)
	}
	h, lit, _ := CanonicalHost(host) // valid: Prescreen checked it
	if lit.IsValid() {
		addrs = []netip.Addr{lit}
	}
	if len(addrs) == 0 {
		return deny("%s has no address", h)
	}
	hostAddrs := d.HostAddrs
	if hostAddrs == nil {
		hostAddrs = InterfaceAddrs
	}
	self, err := hostAddrs()
	if err != nil {
		// R4: without the host's own addresses no destination is known to
		// be elsewhere.
		return deny("cannot tell whether %s is this host (%v); nothing is allowed until it can", h, err)
	}
	var named, exact *Rule
	if !lit.IsValid() {
		named = p.nameRule(h, port)
		// A rule naming one host and one port ("nas.lan:5000") is the
		// user's deliberate exception that may lead to a private address.
		exact = p.firstRule(func(r Rule) bool { return r.Kind == Domain && r.Port == port && r.Host == h })
	}
	dest := func(a netip.Addr) string {
		if lit.IsValid() {
			return a.String()
		}
		return h + " resolves to " + a.String()
	}
	// First what no rule opens, so that the log names it even when another
	// address of the answer is refused too.
	for _, a := range addrs {
		if !a.IsValid() || a.Zone() != "" {
			return deny("%s resolved to an unusable address %q", h, a)
		}
		if reason, c := classifyOn(a.Unmap(), self); c == never {
			return deny("%s: %s, never allowed", dest(a.Unmap()), reason)
		}
	}
	why, ask := "", false
	for _, a := range addrs {
		a = a.Unmap()
		reason, c := classifyOn(a, self)
		if p.PublicOnly && c != public {
			return deny("%s: %s; the browser never reaches a non-public address, even one a rule opens for the group, since any page it loads could reach it too (the agent's own tools can)", dest(a), reason)
		}
		var by string
		switch r := p.addrRule(a, port); {
		case r != nil:
			by = "allowed by rule " + r.String()
		case c == public && named != nil:
			by = "allowed by rule " + named.String()
		case c == public && p.mode() == Public && webPort(port):
			by = "public address"
		case c == public && p.mode() == Ask:
			ask = true
			continue
		case c == public:
			// R4: only reachable under public, on a port no rule opens;
			// what the container sees says how to open it.
			return deny("%s: port %d is not a web port (only 80 and 443 are open by default); the owner can open it with the egress rule %q", dest(a), port, joinHostPort(h, port))
		case exact != nil && !strings.HasSuffix(reason, "loopback"):
			by = "allowed by rule " + exact.String()
		default:
			return deny("%s: %s; only a rule naming this address or %s opens it", dest(a), reason, joinHostPort(h, port))
		}
		if why == "" {
			why = by
		}
	}
	if ask {
		return Decision{Ask: true, Reason: fmt.Sprintf("%s is not in the group's allow list; only the owner can allow it", joinHostPort(h, port)), Addr: addrs[0].Unmap()}
	}
	return Decision{Allowed: true, Reason: why, Addr: addrs[0].Unmap()}
}

func (p Policy) mode() Mode { return cmp.Or(p.Mode, DefaultMode) }

// firstRule returns the first rule of the allow list for which match holds.
func (p Policy) firstRule(match func(Rule) bool) *Rule {
	if i := slices.IndexFunc(p.Allow, match); i >= 0 {
		return &p.Allow[i]
	}
	return nil
}

// nameRule returns the first Domain or Suffix rule covering host:port (host
// in canonical form).
func (p Policy) nameRule(host string, port int) *Rule {
	return p.firstRule(func(r Rule) bool {
		return r.AllowsPort(port) && (r.Kind == Domain && host == r.Host || r.Kind == Suffix && strings.HasSuffix(host, "."+r.Host))
	})
}

// addrRule returns the first Address or Network rule covering addr:port.
func (p Policy) addrRule(addr netip.Addr, port int) *Rule {
	return p.firstRule(func(r Rule) bool {
		return (r.Kind == Address || r.Kind == Network) && r.AllowsPort(port) && r.Prefix.Contains(addr)
	})
}

// CanonicalHost is host as Prescreen and Decide see it, and as it should be
// resolved and logged: lowercased, without one trailing dot, an IPv6
// literal without brackets. For an IP literal it also returns the address
// (IPv4-mapped unmapped). It is an error if host is neither a valid ASCII
// host name nor an address without zone.
func CanonicalHost(host string) (string, netip.Addr, error) {
	if host == "" {
		return "", netip.Addr{}, errors.New("empty host")
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if ip.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("address %s has a zone", ip)
		}
		ip = ip.Unmap()
		return ip.String(), ip, nil
	}
	// Only ASCII is folded: strings.ToLower would turn the Kelvin sign
	// into "k" and let a look-alike pass as a listed name.
	if strings.ContainsFunc(host, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return "", netip.Addr{}, fmt.Errorf("invalid host %.80q: not ASCII (use punycode)", host)
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if err := checkHostname(h); err != nil {
		return "", netip.Addr{}, fmt.Errorf("invalid host %.80q: %w", host, err)
	}
	return h, netip.Addr{}, nil
}

func joinHostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
