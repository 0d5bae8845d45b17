package sandbox

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Detect runs against fake CLIs in PATH: "ok" ones that work, and ones that
// fail like a CLI whose daemon is down.
func TestDetect(t *testing.T) {
	cases := []struct {
		name     string
		clis     map[string]string // CLI name → its fake mode ("ok" or "" for broken)
		want     Kind
		wantKind Kind
		wantErr  []string
	}{
		{"auto prefers podman", map[string]string{"podman": "ok", "docker": "ok"}, "auto", Podman, nil},
		{"empty means auto", map[string]string{"podman": "ok"}, "", Podman, nil},
		{"auto skips a broken podman", map[string]string{"podman": "", "docker": "ok"}, "auto", Docker, nil},
		{"explicit docker", map[string]string{"podman": "ok", "docker": "ok"}, "docker", Docker, nil},
		{"explicit container", map[string]string{"container": "ok"}, "container", Apple, nil},
		{"nothing installed", nil, "auto", "", []string{
			"no working container runtime (tried podman, docker)",
			"podman: not installed (not found in PATH)",
			"docker: not installed", "NANOCLAW_RUNTIME"}},
		{"all broken", map[string]string{"podman": "", "docker": ""}, "auto", "", []string{
			"podman: installed at", "`info --format {{.Host.Arch}}` failed",
			"docker: installed at", "`version --format {{.Server.Version}}` failed: exit status 1: Cannot connect to the docker daemon",
			"start the Docker daemon"}},
		{"explicit broken", map[string]string{"podman": "ok", "docker": ""}, "docker", "", []string{
			"container runtime docker is not usable: docker: installed at", "not working"}},
		{"explicit missing", map[string]string{"podman": "ok"}, "container", "", []string{
			"container runtime container is not usable: container: not installed", "github.com/apple/container"}},
		{"unknown", map[string]string{"podman": "ok"}, "lxc", "", []string{`unknown container runtime "lxc"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for n, mode := range tc.clis {
				names = append(names, n)
				t.Setenv("NANOCLAW_FAKE_"+strings.ToUpper(n), mode)
			}
			dir := fakeCLIs(t, names...)
			logPath := filepath.Join(t.TempDir(), "calls")
			t.Setenv("NANOCLAW_FAKE_LOG", logPath)
			t.Setenv("PATH", dir)
			r, err := Detect(context.Background(), tc.want)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Detect = %+v, want an error", r)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != tc.wantKind || r.Bin != filepath.Join(dir, string(tc.wantKind)) {
				t.Errorf("Detect = %+v, want %s in %s", r, tc.wantKind, dir)
			}
			// It asked the CLI whether it works, not just whether it exists.
			calls := recorded(t, logPath)
			if !slices.ContainsFunc(calls, func(c []string) bool {
				return c[0] == string(tc.wantKind) && slices.Equal(c[1:], clis[tc.wantKind].probe)
			}) {
				t.Errorf("no probe of %s in %q", tc.wantKind, calls)
			}
		})
	}
}

// On Linux, auto never picks Apple's CLI (it exists only on macOS).
func TestDetectAutoOrder(t *testing.T) {
	if got := autoOrder("linux"); !slices.Equal(got, []Kind{Podman, Docker}) {
		t.Errorf("linux order %v", got)
	}
	if got := autoOrder("darwin"); got[0] != Apple {
		t.Errorf("darwin order %v: container first", got)
	}
	if runtime.GOOS != "linux" {
		return
	}
	t.Setenv("NANOCLAW_FAKE_CONTAINER", "ok")
	t.Setenv("PATH", fakeCLIs(t, "container"))
	if r, err := Detect(context.Background(), "auto"); err == nil {
		t.Errorf("auto picked %+v on linux", r)
	}
}
