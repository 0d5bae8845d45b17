package service

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

//go:embed nanoclaw.service.tmpl
var unitTemplateText string

var unitTemplate = template.Must(template.New(UnitName).Option("missingkey=error").Parse(unitTemplateText))

// renderUnit is the systemd unit for u: a system unit (root) or a user
// unit. restartSteps (systemd 254 and later) lengthens the delay between
// restarts step by step up to five minutes; older versions restart every
// restartDelay seconds, for as long as it takes.
func renderUnit(u Unit, system, restartSteps bool) ([]byte, error) {
	exec, err := systemdExec([]string{u.Exe, "run"})
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range u.env() {
		e, err := systemdEnv(kv[0], kv[1])
		if err != nil {
			return nil, err
		}
		env = append(env, e)
	}
	var b bytes.Buffer
	err = unitTemplate.Execute(&b, map[string]any{
		"Marker": marker, "System": system, "ExecStart": exec, "Env": env,
		"RestartDelay": restartDelay, "RestartSteps": restartSteps, "StopTimeout": stopTimeout,
	})
	return b.Bytes(), err
}

// systemdExec is argv as the value of ExecStart=. The program's path is
// taken literally but for specifiers (systemd expands no variables in it,
// and refuses quotes and backslashes there); each argument is a quoted word
// (systemdQuote) whose "$" is doubled, since systemd expands $VAR in
// arguments.
func systemdExec(argv []string) (string, error) {
	prog := argv[0]
	if strings.ContainsAny(prog, `"'\`) {
		return "", fmt.Errorf("the program path %q holds a quote or a backslash, which systemd refuses: move nanoclaw to a plain path", prog)
	}
	words := make([]string, len(argv))
	var err error
	if words[0], err = systemdQuote(prog, false); err != nil {
		return "", fmt.Errorf("the program path: %w", err)
	}
	for i, arg := range argv[1:] {
		if words[i+1], err = systemdQuote(arg, true); err != nil {
			return "", fmt.Errorf("argument %d: %w", i+1, err)
		}
	}
	return strings.Join(words, " "), nil
}

// envName is what systemd accepts as a variable's name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// systemdEnv is one variable as a word of Environment=: "NAME=value"
// quoted (systemdQuote); Environment= expands no variables, so "$" stays.
func systemdEnv(name, value string) (string, error) {
	if !envName.MatchString(name) {
		return "", fmt.Errorf("%q is not a variable name systemd accepts", name)
	}
	q, err := systemdQuote(name+"="+value, false)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return q, nil
}

// systemdQuote is s as one double-quoted word of a unit file, as systemd
// unquotes it: backslash and double quote escaped C-style, "%" doubled
// (specifiers), and with dollar "$" doubled too (variables, in ExecStart=
// arguments). Control characters cannot be written at all.
func systemdQuote(s string, dollar bool) (string, error) {
	if err := printable(s); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
		case r == '%', r == '$' && dollar:
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// systemctl runs systemctl (--user for a user unit) with args.
func (s *Service) systemctl(ctx context.Context, args ...string) (string, error) {
	argv := s.systemctlArgv(args...)
	out, code, err := s.host.Run(ctx, argv...)
	if err != nil {
		return out, fmt.Errorf("run systemctl: %w: install systemd, or run nanoclaw run under your own supervisor", err)
	}
	if code != 0 {
		return out, s.systemctlError(argv, code, out)
	}
	return out, nil
}

// systemctlArgv is systemctl's argv for args: --user for a user unit.
func (s *Service) systemctlArgv(args ...string) []string {
	if s.Kind == SystemdUser {
		return append([]string{"systemctl", "--user"}, args...)
	}
	return append([]string{"systemctl"}, args...)
}

// systemctlError says what failed and, where the cause is known, the fix.
func (s *Service) systemctlError(argv []string, code int, out string) error {
	user := ""
	if s.Kind == SystemdUser {
		user = "--user "
	}
	switch {
	case s.Kind == SystemdUser && (strings.Contains(out, "Failed to connect to bus") || strings.Contains(out, "XDG_RUNTIME_DIR")):
		return errors.New("no systemd user instance for this login: log in with a session of your own (not su or sudo), or run as root for a system unit")
	case strings.Contains(out, "Access denied") || strings.Contains(out, "Interactive authentication required"):
		return fmt.Errorf("%s: run it as root, or as your own user for a user unit", failure(argv, code, out))
	}
	return fmt.Errorf("%s: see systemctl %sstatus %s and journalctl %s-u %s", failure(argv, code, out), user, UnitName, user, UnitName)
}

// systemdVersion is systemd's version number, 0 when it cannot be told.
func (s *Service) systemdVersion(ctx context.Context) int {
	out, code, err := s.host.Run(ctx, "systemctl", "--version")
	if err != nil || code != 0 {
		return 0
	}
	return parseSystemdVersion(out)
}

// parseSystemdVersion reads the number of "systemd 252 (252.38-1~deb12u1)".
func parseSystemdVersion(out string) int {
	f := strings.Fields(firstLine(out))
	if len(f) < 2 || f[0] != "systemd" {
		return 0
	}
	v, _ := strconv.Atoi(f[1])
	return v
}

// systemdInstall makes systemd read the new file, enables the unit and
// starts it; a replaced unit that was running restarts, so it runs the new
// file.
func (s *Service) systemdInstall(ctx context.Context, replaced, noStart bool) error {
	steps := [][]string{{"daemon-reload"}}
	switch {
	case noStart:
		steps = append(steps, []string{"enable", UnitName})
	case replaced:
		steps = append(steps, []string{"try-restart", UnitName}, []string{"enable", "--now", UnitName})
	default:
		steps = append(steps, []string{"enable", "--now", UnitName})
	}
	for _, args := range steps {
		if _, err := s.systemctl(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// systemdStatus is systemctl status, whose exit code 3 means "not
// running" rather than a failure.
func (s *Service) systemdStatus(ctx context.Context) (Status, error) {
	argv := s.systemctlArgv("status", "--no-pager", UnitName)
	out, code, err := s.host.Run(ctx, argv...)
	switch {
	case err != nil:
		return Status{}, fmt.Errorf("run systemctl: %w", err)
	case code == 0:
		return Status{Running: true, Report: out}, nil
	case code == 3:
		return Status{Report: out}, nil
	}
	return Status{}, s.systemctlError(argv, code, out)
}

// lingering says whether the user's systemd instance outlives their
// sessions: logind keeps one file per lingering user.
func (s *Service) lingering() bool {
	if s.host.User == "" {
		return false
	}
	_, err := os.Stat(s.path("var/lib/systemd/linger", s.host.User))
	return err == nil
}
