package service

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSystemdQuote(t *testing.T) {
	cases := []struct {
		in           string
		dollar       bool
		want, errHas string
	}{
		{"/usr/bin/nanoclaw", false, `"/usr/bin/nanoclaw"`, ""},
		{"with space", false, `"with space"`, ""},
		{`say "hi"`, false, `"say \"hi\""`, ""},
		{`it's`, false, `"it's"`, ""},
		{`C:\dir\`, false, `"C:\\dir\\"`, ""},
		{"100%h", false, `"100%%h"`, ""},
		{"$HOME ${X}", false, `"$HOME ${X}"`, ""},
		{"$HOME ${X}", true, `"$$HOME $${X}"`, ""},
		{"; semi", true, `"; semi"`, ""},
		{"café", false, `"café"`, ""},
		{"", false, `""`, ""},
		{"a\nExecStartPre=/bin/evil", false, "", "control character"},
		{"tab\there", false, "", "control character"},
		{"bad\xffutf8", false, "", "not valid UTF-8"},
	}
	for _, tc := range cases {
		got, err := systemdQuote(tc.in, tc.dollar)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("systemdQuote(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("systemdQuote(%q, %v) = %q, %v; want %q", tc.in, tc.dollar, got, err, tc.want)
		}
	}
}

func TestSystemdExec(t *testing.T) {
	// The program's path: no variables are expanded there, so "$" stays.
	got, err := systemdExec([]string{"/opt/my apps/$5 100%/nanoclaw", "run", "$X", "50%"})
	if want := `"/opt/my apps/$5 100%%/nanoclaw" "run" "$$X" "50%%"`; err != nil || got != want {
		t.Errorf("systemdExec = %q, %v; want %q", got, err, want)
	}
	for _, prog := range []string{`/opt/"q"/nanoclaw`, `/opt/it's/nanoclaw`, `/opt/back\slash/nanoclaw`} {
		if _, err := systemdExec([]string{prog, "run"}); err == nil || !strings.Contains(err.Error(), "systemd refuses") {
			t.Errorf("systemdExec(%q): %v, want a refusal", prog, err)
		}
	}
	if _, err := systemdExec([]string{"/bin/nanoclaw", "run\n"}); err == nil || !strings.Contains(err.Error(), "argument 1") {
		t.Errorf("a newline in an argument: %v", err)
	}
}

func TestSystemdEnv(t *testing.T) {
	got, err := systemdEnv("NANOCLAW_HOME", `/srv/my "home" 100% $HOME\x`)
	if want := `"NANOCLAW_HOME=/srv/my \"home\" 100%% $HOME\\x"`; err != nil || got != want {
		t.Errorf("systemdEnv = %q, %v; want %q", got, err, want)
	}
	for _, name := range []string{"", "1X", "A B", "A=B", "É"} {
		if _, err := systemdEnv(name, "v"); err == nil {
			t.Errorf("systemdEnv(%q) accepted the name", name)
		}
	}
	if _, err := systemdEnv("PATH", "/bin\n/usr/bin"); err == nil || !strings.Contains(err.Error(), "PATH: ") {
		t.Errorf("a newline in a value: %v", err)
	}
}

// The system unit is the spec: every directive here was chosen (see the
// template's comments); a change to it should be a conscious one.
func TestRenderSystemUnit(t *testing.T) {
	u := Unit{Exe: "/usr/local/bin/nanoclaw", HomeDir: "/root", DataHome: "/root/.nanoclaw", ConfigDir: "/root/.config/nanoclaw",
		Path: "/usr/local/bin:/usr/bin:/bin", LogsDir: "/root/.nanoclaw/logs"}
	got, err := renderUnit(u, true, false)
	want := `# Written by nanoclaw service install: it replaces or removes this file
# only while this line is in it. Change the service by reinstalling
# (nanoclaw service install --force), remove it with nanoclaw service uninstall.
[Unit]
Description=nanoclaw, a personal assistant running Claude Code in a sandbox per chat group
Wants=network-online.target
After=network-online.target docker.service
# Restart for as long as it takes: no start limit that gives up for good.
StartLimitIntervalSec=0

[Service]
Type=exec
ExecStart="/usr/local/bin/nanoclaw" "run"
Environment="HOME=/root"
Environment="NANOCLAW_HOME=/root/.nanoclaw"
Environment="NANOCLAW_CONFIG_DIR=/root/.config/nanoclaw"
Environment="PATH=/usr/local/bin:/usr/bin:/bin"
UMask=0077
Restart=on-failure
RestartSec=5s
# The daemon stops its agent containers itself (up to 30 s): only it gets
# SIGTERM, and whatever is left is killed when the timeout runs out.
KillMode=mixed
TimeoutStopSec=45s
# Only hardening the container runtime survives: it mounts, makes
# namespaces and cgroups, and inherits every seccomp filter set here, so
# just two that no agent needs (personality changes, realtime scheduling).
LockPersonality=yes
RestrictRealtime=yes

[Install]
WantedBy=multi-user.target
`
	if err != nil || string(got) != want {
		t.Errorf("system unit: %v\n%s\nwant\n%s", err, got, want)
	}
}

func TestRenderUserUnit(t *testing.T) {
	u := Unit{Exe: "/home/alice/bin/nanoclaw", HomeDir: "/home/alice", DataHome: "/home/alice/.nanoclaw", ConfigDir: "/home/alice/.config/nanoclaw",
		Path: "/usr/bin:/bin", LogsDir: "/home/alice/.nanoclaw/logs"}
	got, err := renderUnit(u, false, false)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(got)
	for _, want := range []string{
		"\n[Service]\nType=exec\nExecStart=\"/home/alice/bin/nanoclaw\" \"run\"\nEnvironment=\"HOME=/home/alice\"\n",
		"\nUMask=0077\nRestart=on-failure\nRestartSec=5s\n",
		"\nKillMode=mixed\nTimeoutStopSec=45s\n\n[Install]\nWantedBy=default.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("user unit lacks %q:\n%s", want, unit)
		}
	}
	// A user manager has no network-online.target, and a user unit cannot
	// use the system unit's hardening.
	for _, absent := range []string{"network-online", "LockPersonality", "multi-user"} {
		if strings.Contains(unit, absent) {
			t.Errorf("user unit has %q:\n%s", absent, unit)
		}
	}
	// systemd 254 and later lengthen the delay step by step.
	got, _ = renderUnit(u, false, true)
	if !strings.Contains(string(got), "\nRestartSec=5s\nRestartSteps=8\nRestartMaxDelaySec=5min\n") {
		t.Errorf("with RestartSteps:\n%s", got)
	}
}

// The back-off directives depend on the version systemctl reports.
func TestRestartStepsFollowTheVersion(t *testing.T) {
	for version, steps := range map[string]bool{"systemd 252 (252.38-1~deb12u1)": false, "systemd 254 (254.1)": true, "": false} {
		h, rec := testHost(t, "linux", 0)
		rec.reply = func([]string) (string, int) { return version, 0 }
		s, _ := New(h)
		got, err := s.Render(context.Background(), testUnit(h))
		if err != nil || strings.Contains(string(got), "RestartSteps=") != steps {
			t.Errorf("%q: RestartSteps %v, want %v (%v)", version, !steps, steps, err)
		}
	}
}

// systemd-analyze verify reads the units as systemd would. The program's
// path has a space, "%" and "$" in it and must still name the executable,
// and the values carry every character the quoting handles: any slip
// shows as a warning or as "not executable".
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIPPED: systemd-analyze is not installed (Debian package systemd): the rendered units are not verified")
	}
	dir := t.TempDir()
	binDir := filepath.Join(dir, "my apps", "$HOME 100%h")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(binDir, "nanoclaw")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(dir, `home "quoted" \back 50% $USER it's`)
	u := Unit{Exe: exe, HomeDir: odd, DataHome: odd + "/data", ConfigDir: odd + "/conf", Path: odd + ":/usr/bin:/bin", LogsDir: odd + "/data/logs"}
	runtimeDir := filepath.Join(dir, "runtime") // a user manager's, which --user needs
	os.Mkdir(runtimeDir, 0o700)

	verify := func(t *testing.T, unit []byte, user bool) (string, error) {
		unitDir := t.TempDir()
		path := filepath.Join(unitDir, UnitName)
		if err := os.WriteFile(path, unit, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"verify", "--man=no", path}
		if user {
			args = append([]string{"--user"}, args...)
		}
		cmd := exec.Command(analyze, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "XDG_RUNTIME_DIR=" + runtimeDir, "SYSTEMD_LOG_COLOR=0"}
		out, err := cmd.CombinedOutput()
		return string(bytes.TrimSpace(out)), err
	}
	for _, system := range []bool{true, false} {
		unit, err := renderUnit(u, system, false)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := verify(t, unit, !system); err != nil || out != "" {
			t.Errorf("system %v: systemd-analyze verify: %v\n%s\n%s", system, err, out, unit)
		}
	}
	// The check has teeth: the same unit with its "%" left single, or an
	// unquoted environment, is not clean.
	unit, _ := renderUnit(u, true, false)
	for _, broken := range []string{
		strings.Replace(string(unit), "100%%h", "100%h", 1),
		strings.Replace(string(unit), `Environment="PATH=`, `Environment=PATH=x y `, 1),
	} {
		if out, err := verify(t, []byte(broken), false); err == nil && out == "" {
			t.Errorf("systemd-analyze verify passed a broken unit:\n%s", broken)
		}
	}
}
