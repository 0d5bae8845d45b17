// Package egress decides where a group's container may connect to through
// the gateway's egress proxy (finding 2: containers have no network of
// their own, and what they reach is a per-group policy).
//
// A Policy has a Mode — none, allowlist or public (the default) — and an
// allow list of Rules (see ParseRule for the grammar). Under public the
// group reaches the web ports (80, 443) of public addresses; other ports
// and private addresses need a rule. Prescreen says whether a destination
// may be looked up at all; Decide judges it with every address it resolved
// to, refusing private, loopback, link-local and metadata addresses (see
// classify) unless a rule deliberately names them, and every address of
// the host's own interfaces always, and returns the one checked address to
// connect to, so a second DNS answer cannot redirect the connection (DNS
// rebinding).
//
// The package is a leaf: it imports nothing of NanoClaw, so the store can
// validate stored policies with it.
package egress
