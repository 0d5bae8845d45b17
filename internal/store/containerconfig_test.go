package store

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestContainerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  ContainerConfig
		wantErr string // "" = valid
	}{
		{"zero is all defaults", ContainerConfig{}, ""},
		{"all set", ContainerConfig{TimeoutSeconds: 600, MemoryMB: 2048, CPUs: 1.5, PidsLimit: 256,
			Egress:           Egress{Mode: EgressAllowlist, Allow: []string{"api.anthropic.com", "*.example.org", "1.2.3.4"}},
			AdditionalMounts: []Mount{{HostPath: "/home/me/notes", ContainerPath: "notes", ReadOnly: true}, {HostPath: "~/code", ContainerPath: "src/code"}},
		}, ""},
		{"bounds low", ContainerConfig{TimeoutSeconds: 10, MemoryMB: 64, CPUs: 0.1, PidsLimit: 16}, ""},
		{"bounds high", ContainerConfig{TimeoutSeconds: 86400, MemoryMB: 65536, CPUs: 64, PidsLimit: 65536}, ""},
		{"timeout too small", ContainerConfig{TimeoutSeconds: 9}, "timeout_seconds 9 out of range"},
		{"timeout too big", ContainerConfig{TimeoutSeconds: 86401}, "timeout_seconds 86401 out of range"},
		{"timeout negative", ContainerConfig{TimeoutSeconds: -1}, "timeout_seconds -1 out of range"},
		{"memory too small", ContainerConfig{MemoryMB: 63}, "memory_mb 63 out of range"},
		{"memory too big", ContainerConfig{MemoryMB: 65537}, "memory_mb 65537 out of range"},
		{"cpus too small", ContainerConfig{CPUs: 0.09}, "cpus 0.09 out of range"},
		{"cpus too big", ContainerConfig{CPUs: 64.5}, "cpus 64.5 out of range"},
		{"cpus negative", ContainerConfig{CPUs: -1}, "cpus -1 out of range"},
		{"cpus NaN", ContainerConfig{CPUs: math.NaN()}, "cpus NaN out of range"},
		{"cpus Inf", ContainerConfig{CPUs: math.Inf(1)}, "out of range"},
		{"pids too small", ContainerConfig{PidsLimit: 15}, "pids_limit 15 out of range"},
		{"pids too big", ContainerConfig{PidsLimit: 65537}, "pids_limit 65537 out of range"},
		{"egress none", ContainerConfig{Egress: Egress{Mode: EgressNone}}, ""},
		{"egress public", ContainerConfig{Egress: Egress{Mode: EgressPublic}}, ""},
		{"egress unknown mode", ContainerConfig{Egress: Egress{Mode: "open"}}, `unknown mode "open"`},
		{"egress mode uppercase", ContainerConfig{Egress: Egress{Mode: "NONE"}}, `unknown mode "NONE"`},
		{"allow without mode", ContainerConfig{Egress: Egress{Allow: []string{"example.com"}}}, "egress.allow needs a mode"},
		{"public with exceptions", ContainerConfig{Egress: Egress{Mode: EgressPublic, Allow: []string{"192.168.1.10:8080", "10.0.0.0/24", "nas.lan:5000"}}}, ""},
		{"public with a bad exception", ContainerConfig{Egress: Egress{Mode: EgressPublic, Allow: []string{"169.254.169.254:80"}}}, "no rule can open"},
		{"allow with none", ContainerConfig{Egress: Egress{Mode: EgressNone, Allow: []string{"example.com"}}}, "takes no allow list"},
		{"allowlist empty", ContainerConfig{Egress: Egress{Mode: EgressAllowlist}}, "needs at least one entry"},
		{"allowlist of every rule kind", allow("example.com", "nas.lan:5000", "git.example.com:*", "*.example.org:8443",
			"192.168.1.10:8080", "[2001:db8::1]:443", "10.0.0.0/24", "[fd00::/64]:*"), ""},
		{"domain uppercase", allow("Example.com"), `egress: allow[0]: egress rule "Example.com": character 'E' not allowed`},
		{"domain with scheme", allow("https://example.com"), "this is a URL"},
		{"domain with path", allow("example.com/x"), "a path is not allowed"},
		{"domain with bad port", allow("example.com:0"), `port "0": want 1-65535 or *`},
		{"domain trailing dot", allow("example.com."), "empty label"},
		{"domain double dot", allow("example..com"), "empty label"},
		{"domain empty", allow(""), "empty"},
		{"domain label hyphen", allow("-example.com"), "starts or ends with a hyphen"},
		{"domain label too long", allow(strings.Repeat("a", 64) + ".com"), "longer than 63"},
		{"domain too long", allow(strings.Repeat("abcdefghi.", 26) + "com"), "max 253"},
		{"domain unicode", allow("ex\u0430mple.com"), `character 'а' not allowed`}, // Cyrillic а
		{"wildcard too broad", allow("*.com"), "too broad"},
		{"wildcard registry suffix", allow("*.co.uk"), "registry suffix"},
		{"bare wildcard", allow("*"), `character '*' not allowed`},
		{"wildcard in middle", allow("a.*.example.com"), `character '*' not allowed`},
		{"wildcard without dot", allow("*example.com"), `character '*' not allowed`},
		{"CIDR host bits", allow("10.0.0.1/24"), "did you mean 10.0.0.0/24"},
		{"CIDR too broad", allow("0.0.0.0/0"), "too broad"},
		{"localhost", allow("localhost:8080"), "localhost"},
		{"duplicate rule", allow("example.com", "example.com"), "repeats allow[0]"},
		{"second domain bad", allow("example.com", "BAD"), "allow[1]"},
		{"mount empty host path", mount("", "x"), "additional_mounts[0]: host_path is empty"},
		{"mount empty container path", mount("/h", ""), "container_path is empty"},
		{"mount absolute container path", mount("/h", "/etc"), `container_path "/etc" is absolute`},
		{"mount dotdot", mount("/h", "../escape"), "'..' component"},
		{"mount inner dotdot", mount("/h", "a/../../b"), "'..' component"},
		{"mount trailing dotdot", mount("/h", "a/.."), "'..' component"},
		{"mount dotdot-like name ok", mount("/h", "a..b/..c"), ""},
		{"mount backslash", mount("/h", `a\..\b`), "backslash"},
		{"mount NUL", mount("/h", "a\x00b"), "NUL"},
		{"mount host NUL", mount("/h\x00", "a"), "NUL"},
		// R14: what the run-time check refuses is refused when stored.
		{"mount dot container path", mount("/h", "."), "not clean"},
		{"mount colon container path", mount("/h", "a:b"), `':' at byte 1 cannot be mounted`},
		{"mount comma container path", mount("/h", "a,b"), "cannot be mounted"},
		{"mount trailing slash container path", mount("/h", "a/"), "not clean"},
		{"mount relative host path", mount("projects", "p"), `host_path "projects" is relative`},
		{"mount dot-relative host path", mount("./projects", "p"), "is relative"},
		{"mount tilde user host path", mount("~root/x", "p"), "not ~user"},
		{"mount tilde host path ok", mount("~/projects", "p"), ""},
		{"mount control char host path", mount("/h\x1b[0m", "p"), "control character"},
		{"mount colon host path", mount("/a:b", "p"), "cannot be mounted"},
		{"mount duplicate container path", ContainerConfig{AdditionalMounts: []Mount{{HostPath: "/a", ContainerPath: "x"}, {HostPath: "/b", ContainerPath: "x"}}}, "additional_mounts[1]: container_path \"x\" used twice"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErrText(t, tc.config.Validate(), tc.wantErr) })
	}
}

func allow(rules ...string) ContainerConfig {
	return ContainerConfig{Egress: Egress{Mode: EgressAllowlist, Allow: rules}}
}

func mount(host, container string) ContainerConfig {
	return ContainerConfig{AdditionalMounts: []Mount{{HostPath: host, ContainerPath: container}}}
}

func TestParseContainerConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		json    string
		want    ContainerConfig
		wantErr string
	}{
		{"empty object", `{}`, ContainerConfig{}, ""},
		{"full", `{"timeout_seconds": 600, "memory_mb": 1024, "cpus": 2, "pids_limit": 100,
			"egress": {"mode": "allowlist", "allow": ["example.com"]},
			"additional_mounts": [{"host_path": "/srv", "container_path": "srv", "readonly": true}]}`,
			ContainerConfig{TimeoutSeconds: 600, MemoryMB: 1024, CPUs: 2, PidsLimit: 100,
				Egress:           Egress{Mode: EgressAllowlist, Allow: []string{"example.com"}},
				AdditionalMounts: []Mount{{HostPath: "/srv", ContainerPath: "srv", ReadOnly: true}}}, ""},
		{"unknown top-level field", `{"memory": 512}`, ContainerConfig{}, `unknown field "memory"`},
		{"unknown nested field", `{"egress": {"mode": "none", "ports": [80]}}`, ContainerConfig{}, `unknown field "ports"`},
		{"unknown mount field", `{"additional_mounts": [{"host_path": "/a", "container_path": "a", "rw": true}]}`, ContainerConfig{}, `unknown field "rw"`},
		{"wrong type", `{"memory_mb": "512"}`, ContainerConfig{}, "cannot unmarshal"},
		{"fraction for int", `{"memory_mb": 512.5}`, ContainerConfig{}, "cannot unmarshal"},
		{"valid JSON, invalid value", `{"memory_mb": 1}`, ContainerConfig{}, "memory_mb 1 out of range"},
		{"null", `null`, ContainerConfig{}, "not a JSON object"},
		{"array", `[]`, ContainerConfig{}, "not a JSON object"},
		{"empty", ``, ContainerConfig{}, "not a JSON object"},
		{"garbage", `not json at all`, ContainerConfig{}, "not a JSON object"},
		{"truncated", `{"memory_mb": 128`, ContainerConfig{}, "container config"},
		{"trailing data", `{} {}`, ContainerConfig{}, "data after the JSON object"},
		{"trailing garbage", `{}x`, ContainerConfig{}, "data after the JSON object"},
		{"whitespace around", " \n{}\n ", ContainerConfig{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseContainerConfig([]byte(tc.json))
			if wantErrText(t, err, tc.wantErr); err == nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A config is stored as PutGroup encodes it: the zero config as the column
// default, "{}", and every config so that it parses back.
func TestContainerConfigMarshal(t *testing.T) {
	if got, err := json.Marshal(ContainerConfig{}); err != nil || string(got) != "{}" {
		t.Fatalf("zero config marshals to %q, %v; want {}", got, err)
	}
	c := ContainerConfig{MemoryMB: 512, Egress: Egress{Mode: EgressNone},
		AdditionalMounts: []Mount{{HostPath: "/a", ContainerPath: "a"}}}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"memory_mb":512,"egress":{"mode":"none"},"additional_mounts":[{"host_path":"/a","container_path":"a"}]}`
	if string(data) != want {
		t.Fatalf("marshal = %s, want %s", data, want)
	}
	back, err := ParseContainerConfig(data)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, c)
	}
}
