package egress

import "strings"

// Verdict is the owner's answer to a destination asked about under mode
// ask.
type Verdict string

// The verdicts.
const (
	// VerdictAllow lets this one connection through.
	VerdictAllow Verdict = "allow"
	// VerdictAlways lets it through and keeps host:port open for the group.
	VerdictAlways Verdict = "always"
	// VerdictDeny refuses it.
	VerdictDeny Verdict = "deny"
	// VerdictTimeout is no answer in time, which refuses it too.
	VerdictTimeout Verdict = "timeout"
)

// Allows reports whether v lets the connection through.
func (v Verdict) Allows() bool { return v == VerdictAllow || v == VerdictAlways }

// Valid reports whether v is one of the verdicts.
func (v Verdict) Valid() bool {
	return v == VerdictAllow || v == VerdictAlways || v == VerdictDeny || v == VerdictTimeout
}

// AskFirst reports whether, under mode ask, the owner must be asked about
// host:port before host is even looked up: a name no rule covers at port.
// As under allowlist, such a name reaches no DNS server until someone
// allowed it, so a group cannot leak data through lookups of names nobody
// approved. An IP literal is never asked first: Decide judges it at once
// (a private one is refused without asking), and neither is localhost,
// which the host resolves itself, to loopback, refused without asking.
func (p Policy) AskFirst(host string, port int) bool {
	if p.mode() != Ask {
		return false
	}
	h, lit, err := CanonicalHost(host)
	if err != nil || lit.IsValid() || h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return false
	}
	return p.nameRule(h, port) == nil
}
