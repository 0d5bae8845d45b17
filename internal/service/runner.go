package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Runner starts one program with argv (argv[0] is looked up on PATH) and
// returns its combined output and exit code; err only when it could not be
// started at all.
type Runner func(ctx context.Context, argv ...string) (out string, code int, err error)

// managerEnvNames are what systemctl and launchctl need to reach the
// user's service manager (its runtime directory and bus).
var managerEnvNames = []string{"PATH", "HOME", "USER", "LOGNAME", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"}

// Exec is the Runner of a real machine: no shell, and an explicit
// environment: managerEnvNames as getenv has them, the C locale (the
// messages errors are recognised by) and no colours.
func Exec(getenv func(string) string) Runner {
	env := []string{"LC_ALL=C", "SYSTEMD_COLORS=0"}
	for _, n := range managerEnvNames {
		if v := getenv(n); v != "" {
			env = append(env, n+"="+v)
		}
	}
	return func(ctx context.Context, argv ...string) (string, int, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode(), nil
		}
		if err != nil {
			return string(out), -1, err
		}
		return string(out), 0, nil
	}
}

// standardPath is where a service looks for programs whatever the shell
// that installed it had.
const standardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runtimeNames are the container CLIs the daemon may use (sandbox.Kind).
var runtimeNames = []string{"podman", "docker", "container"}

// SearchPath is the PATH a service runs with: the standard directories
// (on macOS Homebrew's too), after any other directory in which shellPath
// (the installing shell's PATH) has a container CLI. Nothing else of the
// shell's PATH is carried: a service's environment should not depend on
// who happened to install it.
func SearchPath(shellPath, goos string) string {
	std := strings.Split(standardPath, ":")
	if goos == "darwin" {
		std = append([]string{"/opt/homebrew/bin"}, std...)
	}
	var dirs []string
	for _, dir := range filepath.SplitList(shellPath) {
		if !filepath.IsAbs(dir) {
			continue // "." or "": relative to wherever the service runs
		}
		dir = filepath.Clean(dir)
		if slices.Contains(std, dir) || slices.Contains(dirs, dir) {
			continue
		}
		for _, name := range runtimeNames {
			if info, err := os.Stat(filepath.Join(dir, name)); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
				dirs = append(dirs, dir)
				break
			}
		}
	}
	return strings.Join(append(dirs, std...), string(filepath.ListSeparator))
}

// firstLine is the first non-empty line of a program's output, for an
// error message.
func firstLine(out string) string {
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// failure describes a program's failure in one line: what ran, its exit
// code, and the first thing it said.
func failure(argv []string, code int, out string) string {
	msg := fmt.Sprintf("%s failed (exit %d)", strings.Join(argv, " "), code)
	if line := firstLine(out); line != "" {
		msg += ": " + line
	}
	return msg
}
