package egress

import (
	"net/netip"
	"strings"
	"testing"
)

// Under ask, what rules name passes as under allowlist; a public
// destination no rule names is asked about; private, loopback, metadata
// and the host's own addresses are refused and never asked about.
func TestDecideAsk(t *testing.T) {
	ask := policy(t, "ask", "api.example.com", "192.168.1.10:8080")
	self := Decider{HostAddrs: func() ([]netip.Addr, error) { return addrs("203.0.113.7", "93.184.215.99"), nil }}
	for _, tc := range []struct {
		name        string
		host        string
		port        int
		addrs       []netip.Addr
		allow, asks bool
		reason      string
	}{
		{"named passes", "api.example.com", 443, addrs("93.184.215.14"), true, false, "allowed by rule"},
		{"private by rule passes", "192.168.1.10", 8080, nil, true, false, "allowed by rule"},
		{"public name asked", "other.example", 443, addrs("93.184.215.14"), false, true, "other.example:443 is not in the group's allow list; only the owner"},
		{"public literal asked", "8.8.8.8", 22, nil, false, true, "8.8.8.8:22"},
		{"mixed rule and unnamed public asked", "1.1.1.1", 443, nil, false, true, "owner"},
		{"loopback never asked", "127.0.0.1", 8080, nil, false, false, "loopback"},
		{"private never asked", "10.0.0.1", 443, nil, false, false, "private"},
		{"name to private never asked", "evil.example", 443, addrs("10.1.2.3"), false, false, "private"},
		{"name to public and private never asked", "evil.example", 443, addrs("93.184.215.14", "10.1.2.3"), false, false, "private"},
		{"metadata never asked", "169.254.169.254", 80, nil, false, false, "never allowed"},
		{"host's own address never asked", "93.184.215.99", 443, nil, false, false, "this host"},
		{"named but private needs its own rule", "api.example.com", 443, addrs("10.0.0.5"), false, false, "private"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := self.Decide(ask, tc.host, tc.port, tc.addrs)
			if d.Allowed != tc.allow || d.Ask != tc.asks || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("Decide = %+v, want allowed %v, ask %v, reason with %q", d, tc.allow, tc.asks, tc.reason)
			}
			if d.Ask && !d.Addr.IsValid() {
				t.Fatalf("an ask without the address to connect to: %+v", d)
			}
		})
	}
	// No other mode asks.
	for _, mode := range []string{"public", "allowlist", "none"} {
		p := Policy{Mode: Mode(mode), Allow: ask.Allow}
		if d := self.Decide(p, "other.example", 8443, addrs("93.184.215.14")); d.Ask || d.Allowed {
			t.Errorf("%s: %+v", mode, d)
		}
	}
}

func TestParsePolicyAsk(t *testing.T) {
	if p, err := ParsePolicy("ask", nil); err != nil || p.Mode != Ask {
		t.Fatalf("ask without rules: %+v, %v", p, err)
	}
	if _, err := ParsePolicy("ask", []string{"x.example", "X.example"}); err == nil {
		t.Fatal("a repeated rule passed under ask")
	}
	if _, err := ParsePolicy("asks", nil); err == nil || !strings.Contains(err.Error(), `"ask"`) {
		t.Fatalf("unknown mode: %v", err)
	}
}

// A name no rule covers is asked about before any lookup; a literal, a
// covered name and localhost are not.
func TestAskFirst(t *testing.T) {
	ask := policy(t, "ask", "api.example.com", "*.example.org:8443")
	for _, tc := range []struct {
		host  string
		port  int
		first bool
	}{
		{"other.example", 443, true},
		{"API.example.com.", 443, false},
		{"api.example.com", 22, true},
		{"x.example.org", 8443, false},
		{"x.example.org", 443, true},
		{"8.8.8.8", 443, false},
		{"localhost", 80, false},
		{"a.localhost", 80, false},
	} {
		if got := ask.AskFirst(tc.host, tc.port); got != tc.first {
			t.Errorf("AskFirst(%q, %d) = %v", tc.host, tc.port, got)
		}
	}
	if policy(t, "public").AskFirst("other.example", 443) || policy(t, "allowlist", "a.example").AskFirst("other.example", 443) {
		t.Error("a mode other than ask asks")
	}
}
