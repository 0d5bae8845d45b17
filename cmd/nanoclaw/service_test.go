package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/service"
)

// fakeServiceHost points the service commands at a temporary root (with
// systemd running when systemd is true, and the user's home in
// home/alice) and records the programs they run,
// answering each with reply.
func fakeServiceHost(t *testing.T, systemd bool, reply func(argv []string) (string, int)) (root string, calls *[]string) {
	t.Helper()
	root = t.TempDir()
	if systemd {
		os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
	}
	calls = new([]string)
	saved := serviceHost
	t.Cleanup(func() { serviceHost = saved })
	serviceHost = func(m *Main) (service.Host, error) {
		return service.Host{GOOS: "linux", UID: 1000, User: "alice", HomeDir: filepath.Join(root, "home/alice"), Root: root,
			Run: func(_ context.Context, argv ...string) (string, int, error) {
				*calls = append(*calls, strings.Join(argv, " "))
				if argv[len(argv)-1] == "--version" {
					return "systemd 252 (252.38-1~deb12u1)\n", 0, nil
				}
				out, code := reply(argv)
				return out, code, nil
			}}, nil
	}
	return root, calls
}

func TestServiceHelp(t *testing.T) {
	for args, want := range map[string]string{
		"service --help":           "Usage: nanoclaw service install|uninstall|start|stop|status",
		"service install --help":   "-dry-run",
		"service uninstall --help": "Usage: nanoclaw service uninstall [--force]",
		"service status --help":    "Exit status 1 when it does not run.",
		"help service":             "a launchd agent (~/Library/LaunchAgents/com.nanoclaw.plist)",
	} {
		code, out, errOut := run(t, nil, strings.Fields(args)...)
		if code != cli.ExitOK || !strings.Contains(out, want) || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", args, code, out, errOut, want)
		}
	}
}

func TestServiceUsageErrors(t *testing.T) {
	_, calls := fakeServiceHost(t, true, func([]string) (string, int) { return "", 0 })
	for args, want := range map[string]string{
		"service":                      "which service command?",
		"service restart":              `unknown service command "restart"`,
		"service start now":            `unexpected argument "now"`,
		"service uninstall --no-start": "flag provided but not defined: -no-start",
	} {
		code, out, errOut := run(t, nil, strings.Fields(args)...)
		if code != cli.ExitUsage || !strings.Contains(errOut, want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", args, code, out, errOut, want)
		}
	}
	if len(*calls) != 0 {
		t.Errorf("usage errors ran %q", *calls)
	}
}

// install, status and uninstall of a user unit, end to end through the
// CLI, with systemctl recorded.
func TestServiceInstallStatusUninstall(t *testing.T) {
	status := 3 // systemctl status: not running
	root, calls := fakeServiceHost(t, true, func(argv []string) (string, int) {
		if argv[2] == "status" {
			return "○ nanoclaw.service - nanoclaw\n     Active: inactive (dead)\n\x1b]0;owned\x07", status
		}
		return "", 0
	})
	base, _ := filepath.EvalSymlinks(t.TempDir())
	env := map[string]string{"NANOCLAW_HOME": filepath.Join(base, "my data"), "NANOCLAW_CONFIG_DIR": filepath.Join(base, "conf"),
		"ANTHROPIC_API_KEY": "sk-ant-test-0123456789", "PATH": "/usr/bin:/bin"}

	home := filepath.Join(root, "home/alice")
	code, out, errOut := run(t, env, "service", "install")
	if code != cli.ExitOK {
		t.Fatalf("install: exit %d, stderr %q", code, errOut)
	}
	file := filepath.Join(home, ".config/systemd/user/nanoclaw.service")
	for _, want := range []string{
		"wrote " + file + "\n",
		"the service is enabled and running",
		"lingering is off for alice: the service stops when you log out and waits for your next login; to keep it always on, run: loginctl enable-linger alice\n",
		"warning: ANTHROPIC_API_KEY is set only in this shell's environment, which the service does not see: put it in " + filepath.Join(base, "conf", "config") + "\n",
		"status: nanoclaw service status; its output: journalctl --user -u nanoclaw.service\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NANOCLAW_HOME is set") {
		t.Errorf("install warns of NANOCLAW_HOME, which the unit carries:\n%s", out)
	}
	want := []string{"systemctl --version", "systemctl --user daemon-reload", "systemctl --user enable --now nanoclaw.service"}
	if !reflect.DeepEqual(*calls, want) {
		t.Errorf("install ran %q, want %q", *calls, want)
	}
	unit, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	for _, want := range []string{
		"ExecStart=\"" + exe + "\" \"run\"\n",
		"Environment=\"HOME=" + home + "\"\n",
		"Environment=\"NANOCLAW_HOME=" + filepath.Join(base, "my data") + "\"\n",
		"Environment=\"NANOCLAW_CONFIG_DIR=" + filepath.Join(base, "conf") + "\"\n",
		"Environment=\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(string(unit), "sk-ant") {
		t.Errorf("the unit carries the API key:\n%s", unit)
	}

	*calls = nil
	code, out, errOut = run(t, env, "service", "status")
	if code != cli.ExitFailure || !strings.Contains(errOut, "the service is not running: start it with nanoclaw service start") {
		t.Errorf("status of a stopped service: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"service file: " + file + "\n", "Active: inactive (dead)\n",
		"logs: nanoclaw logs (files in " + filepath.Join(base, "my data", "logs") + "); the service's own output: journalctl --user -u nanoclaw.service\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "owned") {
		t.Errorf("status printed an escape sequence from the journal: %q", out)
	}
	status = 0
	if code, _, errOut := run(t, env, "service", "status"); code != cli.ExitOK {
		t.Errorf("status of a running service: exit %d, stderr %q", code, errOut)
	}

	*calls = nil
	code, out, errOut = run(t, env, "service", "uninstall")
	if code != cli.ExitOK || !strings.Contains(out, "removed "+file) {
		t.Errorf("uninstall: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if want := []string{"systemctl --user disable --now nanoclaw.service", "systemctl --user daemon-reload"}; !reflect.DeepEqual(*calls, want) {
		t.Errorf("uninstall ran %q, want %q", *calls, want)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unit is still there: %v", err)
	}
}

// Where systemd does not run, install says so in one line and writes
// nothing; --dry-run still shows the unit.
func TestServiceWithoutSystemd(t *testing.T) {
	root, calls := fakeServiceHost(t, false, func([]string) (string, int) { return "", 0 })
	code, out, errOut := run(t, nil, "service", "install")
	if code != cli.ExitFailure || out != "" || !strings.Contains(errOut, "systemd is not running on this machine (no "+filepath.Join(root, "run/systemd/system")+")") ||
		strings.Count(errOut, "\n") != 1 {
		t.Errorf("install: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if len(*calls) != 0 {
		t.Errorf("install without systemd ran %q", *calls)
	}
	code, out, errOut = run(t, nil, "service", "install", "--dry-run")
	if code != cli.ExitOK || !strings.HasPrefix(out, "# Written by nanoclaw service install") || !strings.Contains(out, "\nWantedBy=default.target\n") ||
		!strings.Contains(errOut, "note: systemd is not running") || !strings.Contains(errOut, "nothing was changed") {
		t.Errorf("--dry-run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("--dry-run wrote into the root: %v", entries)
	}
}

// --dry-run on this very machine: the real host, the real systemctl
// --version, and nothing written where systemd would read it.
func TestServiceDryRunOnThisMachine(t *testing.T) {
	host, err := serviceHost(&Main{Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(host)
	if err != nil {
		t.Skipf("SKIPPED: no service manager on this machine: %v", err)
	}
	_, existed := os.Stat(svc.File)
	base, _ := filepath.EvalSymlinks(t.TempDir())
	env := map[string]string{"NANOCLAW_HOME": filepath.Join(base, "data"), "NANOCLAW_CONFIG_DIR": filepath.Join(base, "conf")}
	code, out, errOut := run(t, env, "service", "install", "--dry-run")
	if code != cli.ExitOK || !strings.Contains(errOut, "would write "+svc.File+"; nothing was changed") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `Environment="NANOCLAW_HOME=` + filepath.Join(base, "data") + `"`
	if svc.Kind == service.Launchd {
		want = "<string>" + filepath.Join(base, "data") + "</string>"
	}
	if !strings.Contains(out, want) {
		t.Errorf("the %s file lacks %q:\n%s", svc.Kind, want, out)
	}
	if _, err := os.Stat(svc.File); existed != nil && err == nil {
		t.Errorf("--dry-run created %s", svc.File)
	}
}

// A world-writable directory holding a runtime CLI, first in PATH: the
// service would run what another user puts there, so install refuses,
// names the directory and its fix, and writes and runs nothing.
func TestServiceInstallRefusesAReplaceablePATH(t *testing.T) {
	root, calls := fakeServiceHost(t, true, func([]string) (string, int) { return "", 0 })
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(open, "podman"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	base, _ := filepath.EvalSymlinks(t.TempDir())
	env := map[string]string{"NANOCLAW_HOME": filepath.Join(base, "data"), "NANOCLAW_CONFIG_DIR": filepath.Join(base, "conf"),
		"PATH": open + ":/usr/bin:/bin"}
	for _, args := range [][]string{{"service", "install"}, {"service", "install", "--dry-run"}} {
		code, out, errOut := run(t, env, args...)
		want := "PATH entry " + open + ": " + open + " can be changed by another user"
		if code != cli.ExitFailure || !strings.Contains(errOut, want) || !strings.Contains(errOut, "chmod go-w "+open) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want a refusal saying %q", args, code, out, errOut, want)
		}
	}
	if len(*calls) != 0 {
		t.Errorf("a refused install ran %q", *calls)
	}
	if _, err := os.Stat(filepath.Join(root, "home/alice/.config/systemd/user/nanoclaw.service")); err == nil {
		t.Error("a refused install wrote the unit")
	}
}
