package egress

import (
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // canonical String(); "" with wantErr
		kind Kind
		port int
	}{
		{"example.com", "example.com", Domain, WebPorts},
		{"api.anthropic.com:443", "api.anthropic.com:443", Domain, 443},
		{"nas.lan:5000", "nas.lan:5000", Domain, 5000},
		{"nas:5000", "nas:5000", Domain, 5000},
		{"git.example.com:*", "git.example.com:*", Domain, AnyPort},
		{"*.example.org", "*.example.org", Suffix, WebPorts},
		{"*.example.org:8443", "*.example.org:8443", Suffix, 8443},
		{"*.co.example", "*.co.example", Suffix, WebPorts},
		{"*.example.co.uk", "*.example.co.uk", Suffix, WebPorts},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", Domain, WebPorts},
		{"1.2.3.4", "1.2.3.4", Address, WebPorts},
		{"192.168.1.10:8080", "192.168.1.10:8080", Address, 8080},
		{"127.0.0.1:11434", "127.0.0.1:11434", Address, 11434},
		{"2001:db8::1", "2001:db8::1", Address, WebPorts},
		{"[2001:db8::1]", "2001:db8::1", Address, WebPorts},
		{"[2001:DB8:0::1]:443", "[2001:db8::1]:443", Address, 443},
		{"[::1]:*", "[::1]:*", Address, AnyPort},
		{"10.0.0.0/24", "10.0.0.0/24", Network, WebPorts},
		{"10.0.0.0/8:*", "10.0.0.0/8:*", Network, AnyPort},
		{"192.168.1.0/24:22", "192.168.1.0/24:22", Network, 22},
		{"fd00::/64", "fd00::/64", Network, WebPorts},
		{"[fd00::/64]:8080", "[fd00::/64]:8080", Network, 8080},
		{"169.254.0.0/16", "169.254.0.0/16", Network, WebPorts}, // metadata inside stays closed
		{"example.com:65535", "example.com:65535", Domain, 65535},
		{"example.com:1", "example.com:1", Domain, 1},
	} {
		r, err := ParseRule(tc.in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tc.in, err)
			continue
		}
		if r.String() != tc.want || r.Kind != tc.kind || r.Port != tc.port {
			t.Errorf("ParseRule(%q) = %q kind %d port %d; want %q kind %d port %d", tc.in, r, r.Kind, r.Port, tc.want, tc.kind, tc.port)
		}
		back, err := ParseRule(r.String())
		if err != nil || back != r {
			t.Errorf("round trip of %q: %+v, %v; want %+v", r, back, err, r)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"", "empty"},
		{strings.Repeat("a", 301), "max 300"},
		{"Example.com", `character 'E' not allowed`},
		{"https://example.com", "this is a URL"},
		{"example.com/x", "a path is not allowed"},
		{"10.0.0.0/x", "not a CIDR range"},
		{"example.com:0", `port "0"`},
		{"example.com:65536", `port "65536"`},
		{"example.com:080", `port "080"`},
		{"example.com:+80", `port "+80"`},
		{"example.com:", `port ""`},
		{"example.com:http", `port "http"`},
		{":443", "no host"},
		{"example.com.", "empty label"},
		{"example..com", "empty label"},
		{"-example.com", "starts or ends with a hyphen"},
		{strings.Repeat("a", 64) + ".com", "longer than 63"},
		{strings.Repeat("abcdefghi.", 26) + "com", "max 253"},
		{"ex\u0430mple.com", `character 'а' not allowed`}, // Cyrillic а
		{"exa_mple.com", `character '_' not allowed`},
		{"*.com", "too broad"},
		{"*.co.uk", "registry suffix"},
		{"*.com.au", "registry suffix"},
		{"*", `character '*' not allowed`},
		{"*.*.example.com", `character '*' not allowed`},
		{"a.*.example.com", `character '*' not allowed`},
		{"*example.com", `character '*' not allowed`},
		{"localhost", "localhost"},
		{"localhost:8080", "localhost"},
		{"app.localhost:3000", "localhost"},
		{"example.123", "numeric label"},
		{"1.2.3", "not an IP address"},
		{"1.2.3.4.5", "not an IP address"},
		{"256.1.1.1", "not an IP address"},
		{"169.254.169.254", "cloud metadata service, which no rule can open"},
		{"169.254.169.254:80", "cloud metadata"},
		{"[fd00:ec2::254]:80", "metadata"},
		{"0.0.0.0:80", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"[ff02::1]:80", "multicast"},
		{"::ffff:10.0.0.1", "write the IPv4-mapped address"},
		{"fe80::1%eth0", "zone"},
		{"[2001:db8::1", "'[' without ']'"},
		{"[example.com]:80", "brackets are only for IPv6"},
		{"[2001:db8::1]x", `unexpected "x" after ']'`},
		{"10.0.0.1/24", "did you mean 10.0.0.0/24"},
		{"0.0.0.0/0", "too broad"},
		{"10.0.0.0/7", "too broad"},
		{"::/0", "too broad"},
		{"2000::/3", "too broad"},
		{"224.0.0.0/8", "multicast, which no rule can open"},
		{"0.0.0.0/8", "no rule can open"},
		{"10.0.0.0/33", "not a CIDR range"},
		{"example.com:80:90", "not an IP address"},
	} {
		_, err := ParseRule(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseRule(%q) err = %v; want it to contain %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    string
		allow   []string
		want    Mode
		wantErr string
	}{
		{"empty is public", "", nil, Public, ""},
		{"public with exceptions", "public", []string{"192.168.1.10:8080", "10.0.0.0/24"}, Public, ""},
		{"default with exceptions", "", []string{"nas.lan:5000"}, Public, ""},
		{"none", "none", nil, None, ""},
		{"none with rules", "none", []string{"example.com"}, "", "takes no allow list"},
		{"allowlist", "allowlist", []string{"example.com", "*.example.org"}, Allowlist, ""},
		{"allowlist empty", "allowlist", nil, "", "needs at least one entry"},
		{"unknown mode", "open", nil, "", `unknown mode "open"`},
		{"uppercase mode", "PUBLIC", nil, "", `unknown mode "PUBLIC"`},
		{"bad rule names its index", "allowlist", []string{"example.com", "BAD"}, "", "allow[1]"},
		{"duplicate", "allowlist", []string{"example.com:443", "example.com:443"}, "", "allow[1] \"example.com:443\" repeats allow[0]"},
		{"duplicate after canonical form", "public", []string{"[2001:db8::1]:80", "[2001:DB8::1]:80"}, "", "repeats allow[0]"},
		{"too many", "allowlist", manyRules(MaxRules + 1), "", "max 256"},
		{"as many as allowed", "allowlist", manyRules(MaxRules), Allowlist, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.mode, tc.allow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != tc.want || len(p.Allow) != len(tc.allow) {
				t.Fatalf("policy %+v; want mode %q with %d rules", p, tc.want, len(tc.allow))
			}
		})
	}
}

func manyRules(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "h" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + ".example.com:" + itoa(i+1)
	}
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
