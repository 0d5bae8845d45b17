package service

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestUnitValidation(t *testing.T) {
	h, _ := testHost(t, "linux", 0)
	s, _ := New(h)
	good := testUnit(h)
	cases := []struct {
		edit func(*Unit)
		err  string
	}{
		{func(u *Unit) { u.Exe = "bin/nanoclaw" }, `the nanoclaw binary "bin/nanoclaw" is not an absolute path`},
		{func(u *Unit) { u.DataHome = "~/.nanoclaw" }, "NANOCLAW_HOME"},
		{func(u *Unit) { u.Path = "/usr/bin:.:/bin" }, `PATH entry "." is not an absolute path`},
		{func(u *Unit) { u.ConfigDir = "/home/a\nExecStartPre=/bin/evil" }, "control character"},
		{func(u *Unit) { u.HomeDir = "/home/\xff" }, "not valid UTF-8"},
		{func(u *Unit) { u.Exe = `/opt/it's/nanoclaw` }, "which systemd refuses"},
	}
	for _, tc := range cases {
		u := good
		tc.edit(&u)
		if _, err := s.Render(context.Background(), u); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %v, want %q", u, err, tc.err)
		}
	}
}

func TestSearchPath(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"podman-here", "docker-here", "nothing", "noexec"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "podman-here/podman"), []byte("#!/bin/true\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "docker-here/docker"), []byte("#!/bin/true\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec/podman"), []byte("x"), 0o644)
	shell := strings.Join([]string{filepath.Join(dir, "nothing"), ".", filepath.Join(dir, "docker-here"), "",
		filepath.Join(dir, "noexec"), filepath.Join(dir, "podman-here") + "/", "/usr/bin", filepath.Join(dir, "docker-here")}, ":")
	want := filepath.Join(dir, "docker-here") + ":" + filepath.Join(dir, "podman-here") + ":" + standardPath
	if got := SearchPath(shell, "linux"); got != want {
		t.Errorf("SearchPath = %q\nwant %q", got, want)
	}
	if got := SearchPath("", "darwin"); got != "/opt/homebrew/bin:"+standardPath {
		t.Errorf("SearchPath on macOS = %q", got)
	}
}

func TestParseSystemdVersion(t *testing.T) {
	for out, want := range map[string]int{"systemd 252 (252.38-1~deb12u1)\n+PAM\n": 252, "systemd 256 (256.5-1)": 256, "": 0, "bash: systemctl: not found": 0} {
		if got := parseSystemdVersion(out); got != want {
			t.Errorf("parseSystemdVersion(%q) = %d, want %d", out, got, want)
		}
	}
}

// Exec starts the program itself, with only the environment the service
// manager's client needs.
func TestExecRunsWithAnExplicitEnvironment(t *testing.T) {
	env := map[string]string{"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": "/run/user/1000", "ANTHROPIC_API_KEY": "sk-ant-secret", "HOME": "/home/alice"}
	run := Exec(func(k string) string { return env[k] })
	ctx := context.Background()
	out, code, err := run(ctx, "env")
	if err != nil || code != 0 {
		t.Fatalf("env: %d, %v", code, err)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"LC_ALL=C", "SYSTEMD_COLORS=0", "PATH=/usr/bin:/bin", "HOME=/home/alice", "XDG_RUNTIME_DIR=/run/user/1000"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the environment: %q, want %q", got, want)
	}
	if _, code, err := run(ctx, "false"); err != nil || code != 1 {
		t.Errorf("false: exit %d, %v", code, err)
	}
	if _, _, err := run(ctx, "no-such-program-nanoclaw"); err == nil {
		t.Error("a missing program ran")
	}
}
