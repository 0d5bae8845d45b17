package egress

import (
	"net/netip"
	"strings"
	"testing"
)

func TestForbidden(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		reason string // "" = public
	}{
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		{"93.184.215.14", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:80b::200e", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"10.1.2.3", "private (RFC 1918)"},
		{"172.16.0.1", "private (RFC 1918)"},
		{"172.31.255.255", "private (RFC 1918)"},
		{"192.168.1.10", "private (RFC 1918)"},
		{"169.254.169.254", "the cloud metadata service"},
		{"169.254.170.2", "credentials service"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fd00:ec2::254", "AWS IPv6) metadata"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"100.100.100.200", "Alibaba"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "this network"},
		{"255.255.255.255", "broadcast"},
		{"192.0.0.8", "IETF protocol assignments"},
		{"192.0.0.192", "Oracle"},
		{"192.0.2.1", "TEST-NET-1"},
		{"198.51.100.7", "TEST-NET-2"},
		{"203.0.113.9", "TEST-NET-3"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"240.0.0.1", "reserved (240.0.0.0/4)"},
		{"192.88.99.1", "6to4 relay"},
		{"168.63.129.16", "Azure"},
		{"fc00::1", "unique local"},
		{"fd12:3456::1", "unique local"},
		{"fec0::1", "site-local"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"100::1", "discard-only"},
		{"2001:2::1", "benchmarking"},
		{"2001:10::1", "ORCHID"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"::ffff:127.0.0.1", "IPv4-mapped address of 127.0.0.1, loopback"},
		{"::ffff:169.254.169.254", "IPv4-mapped address of 169.254.169.254, the cloud metadata service"},
		{"::ffff:10.0.0.1", "IPv4-mapped address of 10.0.0.1, private"},
		{"::ffff:8.8.8.8", ""},
		{"::127.0.0.1", "IPv4-compatible address of 127.0.0.1, loopback"},
		{"::8.8.8.8", ""},
		{"64:ff9b::a9fe:a9fe", "NAT64 address of 169.254.169.254, the cloud metadata service"},
		{"64:ff9b::0a00:0001", "NAT64 address of 10.0.0.1"},
		{"64:ff9b::808:808", ""},
		{"64:ff9b:1::1", "local-use NAT64"},
		{"2002:7f00:0001::1", "6to4 address of 127.0.0.1, loopback"},
		{"2002:c0a8:0101::1", "6to4 address of 192.168.1.1"},
		{"2002:0808:0808::1", ""},
		{"4000::1", "outside global unicast"},
		{"::2", "IPv4-compatible address of 0.0.0.2"},
	} {
		reason, c := classify(netip.MustParseAddr(tc.ip))
		if (c != public) != (tc.reason != "") || !strings.Contains(reason, tc.reason) {
			t.Errorf("classify(%s) = %q, %v; want %q", tc.ip, reason, c, tc.reason)
		}
	}
	if _, c := classify(netip.Addr{}); c == public {
		t.Error("the zero Addr is not forbidden")
	}
}
