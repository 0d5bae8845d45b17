package selftest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// The routing tables of a podman container with --network none (IPv4
// empty; IPv6 only lo and its reject routes) and of a host with a default
// route.
const (
	noneV4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	noneV6 = `00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
`
	hostV4 = noneV4 + `eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`
	hostV6 = noneV6 + `fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
`
)

func TestOutboundRoutes(t *testing.T) {
	cases := []struct {
		name  string
		table string
		v6    bool
		want  int
	}{
		{"none v4", noneV4, false, 0},
		{"none v6: lo and reject routes", noneV6, true, 0},
		{"host v4: default and subnet via eth0", hostV4, false, 2},
		{"host v6: link-local via eth0", hostV6, true, 1},
	}
	for _, c := range cases {
		if got := outboundRoutes(c.table, c.v6); len(got) != c.want {
			t.Errorf("%s: %q, want %d routes", c.name, got, c.want)
		}
	}
}

func TestCredentialShaped(t *testing.T) {
	key := "sk-ant-api03-" + strings.Repeat("Ab9_", 10)
	cases := []struct {
		text string
		at   int
	}{
		{"nothing here", -1},
		{`if (key.startsWith("sk-ant-api03-")) {`, -1}, // a program naming the prefix
		{"x=" + key, 2},
		{"sk-ant-short sk-ant-oat01-" + strings.Repeat("z", 40), 13},
		{"Authorization: Bearer ${token}", -1},
		{"Authorization: Bearer " + strings.Repeat("eyJhbGciOi.", 4), 15},
		{ipc.PlaceholderAPIKey, -1},
	}
	for _, c := range cases {
		if got := credentialShaped([]byte(c.text)); got != c.at {
			t.Errorf("credentialShaped(%q) = %d, want %d", c.text, got, c.at)
		}
	}
}

// A key that straddles two read chunks is still found, at its offset.
func TestScanFileAcrossChunks(t *testing.T) {
	key := "sk-ant-api03-" + strings.Repeat("k", 40)
	for _, at := range []int{0, 60, 64 - 7, 64 - 3, 100} {
		path := filepath.Join(t.TempDir(), "f")
		content := strings.Repeat(".", at) + key + strings.Repeat(".", 50)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, got, err := scanFile(path, make([]byte, 64), 1<<20)
		if err != nil || got != int64(at) {
			t.Errorf("key at %d: found at %d, err %v", at, got, err)
		}
	}
}

func TestEnvironment(t *testing.T) {
	cases := []struct {
		env []string
		ok  bool
	}{
		{[]string{"PATH=/bin", "HOME=/home/agent"}, true},
		{[]string{"ANTHROPIC_API_KEY=" + ipc.PlaceholderAPIKey}, true},
		{[]string{"ANTHROPIC_API_KEY=anything-else"}, false},
		{[]string{"CLAUDE_CODE_OAUTH_TOKEN=x"}, false},
		{[]string{"NOTES=sk-ant-api03-" + strings.Repeat("q", 40)}, false},
	}
	for _, c := range cases {
		f := environment(c.env)
		if f.OK != c.ok || strings.Contains(f.Detail, "=") {
			t.Errorf("environment(%q) = %+v, want ok %v and no value in the detail", c.env, f, c.ok)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	info := `1071 1070 0:77 / / ro,relatime - overlay overlay rw,lowerdir=/a
1090 1071 254:0 /x /workspace/my\040group rw,relatime shared:1 - ext4 /dev/vda rw
1091 1071 0:80 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw,size=16384k
`
	got, err := parseMountinfo(info)
	want := []Mount{{"/", true, "overlay"}, {"/workspace/my group", false, "ext4"}, {"/tmp", false, "tmpfs"}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parseMountinfo = %v, %v; want %v", got, err, want)
	}
	if _, err := parseMountinfo("garbage line\n"); err == nil {
		t.Error("a line without ' - ' was accepted")
	}
}

// A report is the probe's only with each of its findings exactly once:
// one an image printed in its place, with fewer, more or other findings,
// is refused whole.
func TestDecodeRejects(t *testing.T) {
	report := func(names ...string) string {
		var fs []string
		for _, n := range names {
			fs = append(fs, `{"name":"`+n+`","ok":true,"detail":""}`)
		}
		return `{"findings":[` + strings.Join(fs, ",") + `],"mounts":[]}`
	}
	good := report(Findings...)
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatalf("good report refused: %v", err)
	}
	for what, bad := range map[string]string{
		"no findings":           report(),
		"one finding":           report(FindingRoute),
		"one missing":           report(Findings[1:]...),
		"one twice":             report(append([]string{FindingCaps}, Findings...)...),
		"one twice for another": report(append([]string{FindingCaps}, Findings[1:]...)...),
		"one of the host's":     report(append([]string{"only the expected mounts"}, Findings...)...),
		"an unknown field":      strings.Replace(good, `"detail":""`, `"detail":"","extra":1`, 1),
		"two reports":           good + good,
		"a long detail":         strings.Replace(good, `"detail":""`, `"detail":"`+strings.Repeat("d", maxDetailBytes+1)+`"`, 1),
	} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode accepted a report with %s: %.80s", what, bad)
		}
	}
}

// permissiveProxy is what a broken gateway would be: it grants every
// CONNECT and answers every API call itself with 200.
func permissiveProxy(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodConnect {
			fmt.Fprint(w, `{"data":[]}`)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// The probe run on this host, outside any container, with a writable
// directory as "root", a planted key and a gateway that lets everything
// through: each of those is reported as a failure, and so are root and
// its capabilities when the test runs as root (as make test does).
func TestProbeOutsideAContainerFails(t *testing.T) {
	walkRoot := t.TempDir()
	key := "sk-ant-api03-" + strings.Repeat("S", 48)
	if err := os.WriteFile(filepath.Join(walkRoot, "leak.txt"), []byte("key: "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Proxy = permissiveProxy(t)
	cfg.ReadOnlyDirs = []string{t.TempDir()}
	cfg.WalkRoot, cfg.SkipDirs = walkRoot, nil
	cfg.DialTimeout = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Finding{}
	for _, f := range rep.Findings {
		got[f.Name] = f
	}
	mustFail := []string{FindingReadOnly, FindingFiles, FindingEgress, FindingAPI}
	if os.Geteuid() == 0 {
		mustFail = append(mustFail, FindingUser, FindingCaps)
	}
	for _, name := range mustFail {
		if f, ok := got[name]; !ok || f.OK {
			t.Errorf("finding %q = %+v, want a failure", name, f)
		}
	}
	if strings.Contains(got[FindingFiles].Detail, key) || !strings.Contains(got[FindingFiles].Detail, "leak.txt") {
		t.Errorf("the files finding should name the file, never the key: %q", got[FindingFiles].Detail)
	}
	if rep.OK() {
		t.Error("report says OK")
	}
	// What the probe itself reports, the host takes as the probe's.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); err != nil {
		t.Errorf("the probe's own report refused: %v", err)
	}
	if !hasRoot(rep.Mounts) {
		t.Errorf("mounts of the host not listed: %v", rep.Mounts)
	}
}

func hasRoot(ms []Mount) bool {
	for _, m := range ms {
		if m.Point == "/" {
			return true
		}
	}
	return false
}

// A gateway's real refusals are recognised: 403 with its own words.
func TestEgressRefusalRecognised(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				body := "nanoclaw egress: " + req.Host + " denied: private\n"
				fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
			}()
		}
	}()
	cfg := Config{Proxy: ln.Addr().String(), HostAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}}
	f := egressRefusals(context.Background(), cfg)
	if !f.OK || strings.Count(f.Detail, "refused") != len(PrivateTargets)+1 {
		t.Errorf("egressRefusals = %+v, want every target refused", f)
	}
}
