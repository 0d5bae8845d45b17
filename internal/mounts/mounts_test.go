package mounts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// tree builds a small host file system in a temp dir and returns its
// resolved base.
func tree(t *testing.T) string {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{
		"allowed/proj", "allowed/deep/a/.ssh/keys", "allowed/deep/b/credentials.d/x", "allowed/.ssh",
		"allowed/odd,name", "allowed/cache", "ro/docs", "realroot/stuff", "outside", "data/groups", "conf",
	} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"allowed/out-link":   filepath.Join(base, "outside"),      // points out of the root
		"allowed/in-link":    filepath.Join(base, "allowed/proj"), // stays inside
		"allowed/harmless":   filepath.Join(base, "allowed/.ssh"), // hides a blocked target
		"rootlink":           filepath.Join(base, "realroot"),     // a root that is a link
		"outside/into-allow": filepath.Join(base, "allowed/proj"), // from outside, into a root
		"allowed/data-link":  filepath.Join(base, "data"),         // to the protected data home
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(base, l)); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

func writeAllowlist(t *testing.T, base, body string) string {
	t.Helper()
	f := filepath.Join(base, "conf", "mount-allowlist.json")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(body, "BASE", base)), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

const testAllowlist = `{
  "allowedRoots": [
    {"path": "BASE/allowed", "allowReadWrite": true, "description": "projects"},
    {"path": "BASE/ro", "allowReadWrite": false},
    {"path": "BASE/rootlink", "allowReadWrite": true},
    {"path": "BASE/missing", "allowReadWrite": true}
  ],
  "blockedPatterns": ["cache", "*.pem"],
  "nonMainReadOnly": true
}`

func TestCheck(t *testing.T) {
	base := tree(t)
	t.Setenv("HOME", base)
	a, err := LoadAllowlist(writeAllowlist(t, base, testAllowlist))
	if err != nil {
		t.Fatal(err)
	}
	protected := []string{filepath.Join(base, "data"), filepath.Join(base, "conf")}
	type want struct {
		allowed  bool
		readOnly bool
		host     string // resolved host path, relative to base ("" = don't care)
		target   string
		reason   string // substring of Reason ("" = Reason must be empty)
	}
	cases := []struct {
		name   string
		m      store.Mount
		isMain bool
		want   want
	}{
		{"read-only under rw root", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "proj", ReadOnly: true}, false,
			want{true, true, "allowed/proj", "/workspace/extra/proj", ""}},
		{"read-write for main", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "proj"}, true,
			want{true, false, "allowed/proj", "/workspace/extra/proj", ""}},
		{"read-write forced read-only for non-main", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "proj"}, false,
			want{true, true, "allowed/proj", "/workspace/extra/proj", "nonMainReadOnly"}},
		{"read-write under read-only root", store.Mount{HostPath: "BASE/ro/docs", ContainerPath: "docs"}, true,
			want{true, true, "ro/docs", "/workspace/extra/docs", "allows only read-only"}},
		{"tilde expanded", store.Mount{HostPath: "~/allowed/proj", ContainerPath: "p", ReadOnly: true}, true,
			want{true, true, "allowed/proj", "/workspace/extra/p", ""}},
		{"nested container path", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "a/b", ReadOnly: true}, true,
			want{true, true, "allowed/proj", "/workspace/extra/a/b", ""}},
		{"the root itself", store.Mount{HostPath: "BASE/allowed", ContainerPath: "all"}, true,
			want{true, false, "allowed", "", ""}},
		{"symlink pointing out of the root", store.Mount{HostPath: "BASE/allowed/out-link", ContainerPath: "x"}, true,
			want{false, true, "outside", "", "not under any allowed root"}},
		{"symlink staying inside the root", store.Mount{HostPath: "BASE/allowed/in-link", ContainerPath: "x"}, true,
			want{true, false, "allowed/proj", "", ""}},
		{"symlink from outside into a root", store.Mount{HostPath: "BASE/outside/into-allow", ContainerPath: "x"}, true,
			want{true, false, "allowed/proj", "", ""}},
		{"symlink hiding a blocked target", store.Mount{HostPath: "BASE/allowed/harmless", ContainerPath: "x"}, true,
			want{false, true, "allowed/.ssh", "", `".ssh"`}},
		{"symlink to the data home", store.Mount{HostPath: "BASE/allowed/data-link", ContainerPath: "x"}, true,
			want{false, true, "data", "", "overlaps nanoclaw's own"}},
		{"root that is itself a symlink, via the link", store.Mount{HostPath: "BASE/rootlink/stuff", ContainerPath: "s"}, true,
			want{true, false, "realroot/stuff", "", ""}},
		{"root that is itself a symlink, via the target", store.Mount{HostPath: "BASE/realroot/stuff", ContainerPath: "s"}, true,
			want{true, false, "realroot/stuff", "", ""}},
		{"blocked component deep in the path", store.Mount{HostPath: "BASE/allowed/deep/a/.ssh/keys", ContainerPath: "k", ReadOnly: true}, true,
			want{false, true, "", "", `".ssh"`}},
		{"blocked default pattern inside a component", store.Mount{HostPath: "BASE/allowed/deep/b/credentials.d/x", ContainerPath: "k", ReadOnly: true}, true,
			want{false, true, "", "", `"credentials"`}},
		{"blocked configured pattern", store.Mount{HostPath: "BASE/allowed/cache", ContainerPath: "c", ReadOnly: true}, true,
			want{false, true, "", "", `"cache"`}},
		{"blocked .ssh directly under root", store.Mount{HostPath: "BASE/allowed/.ssh", ContainerPath: "ssh", ReadOnly: true}, true,
			want{false, true, "", "", "blocked pattern"}},
		{"nonexistent host path", store.Mount{HostPath: "BASE/allowed/nope", ContainerPath: "n"}, true,
			want{false, true, "", "", "cannot be resolved"}},
		{"outside every root", store.Mount{HostPath: "BASE/outside", ContainerPath: "o"}, true,
			want{false, true, "outside", "", "not under any allowed root"}},
		{"under a root that does not exist", store.Mount{HostPath: "BASE/data/groups", ContainerPath: "o"}, true,
			want{false, true, "", "", "overlaps"}},
		{"parent of the data home", store.Mount{HostPath: "BASE", ContainerPath: "o"}, true,
			want{false, true, "", "", "overlaps"}},
		{"the config dir", store.Mount{HostPath: "BASE/conf", ContainerPath: "o"}, true,
			want{false, true, "", "", "overlaps"}},
		{"dotdot in container path", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "../etc"}, true,
			want{false, true, "", "", "'..'"}},
		{"dotdot deep in container path", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "a/../../x"}, true,
			want{false, true, "", "", "'..'"}},
		{"absolute container path", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "/etc"}, true,
			want{false, true, "", "", "absolute"}},
		{"empty container path", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: ""}, true,
			want{false, true, "", "", "empty"}},
		{"dot container path", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "."}, true,
			want{false, true, "", "", "not clean"}},
		{"unclean container path", store.Mount{HostPath: "BASE/allowed/proj", ContainerPath: "a//b"}, true,
			want{false, true, "", "", "not clean"}},
		{"comma in host path", store.Mount{HostPath: "BASE/allowed/odd,name", ContainerPath: "o"}, true,
			want{false, true, "", "", "cannot be mounted"}},
		{"relative host path", store.Mount{HostPath: "allowed/proj", ContainerPath: "o"}, true,
			want{false, true, "", "", "is relative"}},
		{"tilde user", store.Mount{HostPath: "~root/x", ContainerPath: "o"}, true,
			want{false, true, "", "", "~user"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.m.HostPath = strings.ReplaceAll(c.m.HostPath, "BASE", base)
			v := a.Check(c.m, c.isMain, protected...)
			w := c.want
			if v.Allowed != w.allowed || v.ReadOnly != w.readOnly {
				t.Fatalf("allowed=%v readOnly=%v, want %v %v (reason %q)", v.Allowed, v.ReadOnly, w.allowed, w.readOnly, v.Reason)
			}
			if w.host != "" && v.HostPath != filepath.Join(base, w.host) {
				t.Errorf("host path %q, want %q", v.HostPath, filepath.Join(base, w.host))
			}
			if w.target != "" && v.ContainerPath != w.target {
				t.Errorf("container path %q, want %q", v.ContainerPath, w.target)
			}
			if w.reason == "" && v.Reason != "" {
				t.Errorf("reason %q, want none", v.Reason)
			}
			if w.reason != "" && !strings.Contains(v.Reason, w.reason) {
				t.Errorf("reason %q, want it to contain %q", v.Reason, w.reason)
			}
			if d := Describe(v); (v.Allowed && !strings.HasPrefix(d, "allowed")) || (!v.Allowed && !strings.HasPrefix(d, "rejected")) {
				t.Errorf("Describe = %q", d)
			}
		})
	}
}

func TestNoFileAllowsNothing(t *testing.T) {
	base := tree(t)
	a, err := LoadAllowlist(filepath.Join(base, "conf", "none.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Exists {
		t.Fatal("Exists for a missing file")
	}
	v := a.Check(store.Mount{HostPath: filepath.Join(base, "allowed/proj"), ContainerPath: "p", ReadOnly: true}, true)
	if v.Allowed || !strings.Contains(v.Reason, "no mount allowlist") {
		t.Fatalf("verdict %+v, want rejected for want of an allowlist", v)
	}
	// The zero value allows nothing either.
	if v := (&Allowlist{}).Check(store.Mount{HostPath: filepath.Join(base, "allowed/proj"), ContainerPath: "p"}, true); v.Allowed {
		t.Fatalf("zero Allowlist allowed %+v", v)
	}
}

func TestLoadAllowlistErrors(t *testing.T) {
	base := tree(t)
	cases := []struct{ name, body, want string }{
		{"not json", `allowedRoots: []`, "not a JSON object"},
		{"unknown field", `{"allowedRoots": [], "nonMainReadonly": true}`, "unknown field"},
		{"unknown root field", `{"allowedRoots": [{"path": "/tmp", "rw": true}]}`, "unknown field"},
		{"wrong type", `{"nonMainReadOnly": "yes"}`, "cannot unmarshal"},
		{"trailing data", `{} {}`, "data after"},
		{"relative root", `{"allowedRoots": [{"path": "projects"}]}`, "allowedRoots[0]"},
		{"pattern with slash", `{"blockedPatterns": ["a/b"]}`, "blockedPatterns[0]"},
		{"empty pattern", `{"blockedPatterns": [""]}`, "empty pattern"},
		{"bad glob", `{"blockedPatterns": ["[a"]}`, "bad glob"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := writeAllowlist(t, base, c.body)
			_, err := LoadAllowlist(f)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), f) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, f, c.want)
			}
		})
	}
	// A root that does not exist is kept, unusable, with the reason.
	a, err := LoadAllowlist(writeAllowlist(t, base, `{"allowedRoots": [{"path": "BASE/gone"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Roots) != 1 || a.Roots[0].Resolved != "" || a.Roots[0].Problem == "" {
		t.Fatalf("roots %+v, want one unresolved with a problem", a.Roots)
	}
}

// TestEditsApply: the file is read afresh by each LoadAllowlist, which the
// runner calls at every run.
func TestEditsApply(t *testing.T) {
	base := tree(t)
	m := store.Mount{HostPath: filepath.Join(base, "outside"), ContainerPath: "o", ReadOnly: true}
	f := writeAllowlist(t, base, `{"allowedRoots": [{"path": "BASE/allowed"}]}`)
	a, _ := LoadAllowlist(f)
	if a.Check(m, true).Allowed {
		t.Fatal("allowed before the edit")
	}
	writeAllowlist(t, base, `{"allowedRoots": [{"path": "BASE/outside"}]}`)
	a, _ = LoadAllowlist(f)
	if !a.Check(m, true).Allowed {
		t.Fatal("not allowed after the edit")
	}
}

func FuzzContainerPath(f *testing.F) {
	for _, s := range []string{"proj", "a/b", "../x", "/etc", "", ".", "a/./b", "a/", "a//b", "a,b", "a:b", "..", "a/..", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		// The zero Allowlist refuses every mount, but only after it has
		// placed an acceptable container path.
		v := (&Allowlist{}).Check(store.Mount{ContainerPath: p}, true)
		got := v.ContainerPath
		if got == "" {
			return
		}
		// Whatever is accepted is a clean path strictly inside the extra dir.
		if !strings.HasPrefix(got, "/workspace/extra/") || filepath.Clean(got) != got {
			t.Fatalf("ContainerPath(%q) = %q, not clean under /workspace/extra/", p, got)
		}
		if strings.Contains(got, "/../") || strings.HasSuffix(got, "/..") || strings.ContainsAny(got, ",:=\"\x00\\") {
			t.Fatalf("ContainerPath(%q) = %q accepted", p, got)
		}
	})
}
