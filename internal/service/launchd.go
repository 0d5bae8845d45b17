package service

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

//go:embed nanoclaw.plist.tmpl
var plistTemplateText string

var plistTemplate = template.Must(template.New(Label).Option("missingkey=error").Parse(plistTemplateText))

// launchdLogFile is where launchd puts the daemon's stdout and stderr.
func launchdLogFile(u Unit) string { return filepath.Join(u.LogsDir, "service.log") }

// renderPlist is the launchd agent for u. Every value is escaped by
// plistString.
func renderPlist(u Unit) ([]byte, error) {
	exe, err := plistString(u.Exe)
	if err != nil {
		return nil, fmt.Errorf("the program path: %w", err)
	}
	logFile, err := plistString(launchdLogFile(u))
	if err != nil {
		return nil, fmt.Errorf("the log file: %w", err)
	}
	var env [][2]string
	for _, kv := range u.env() {
		v, err := plistString(kv[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv[0], err)
		}
		env = append(env, [2]string{kv[0], v})
	}
	var b bytes.Buffer
	err = plistTemplate.Execute(&b, map[string]any{
		"Marker": marker, "Label": Label, "Exe": exe, "Env": env, "LogFile": logFile,
		"RestartDelay": restartDelay, "StopTimeout": stopTimeout,
	})
	return b.Bytes(), err
}

// plistString is s as the text of a plist's <string> element: XML's
// special characters escaped. Control characters, which XML 1.0 cannot
// carry or which a reader would normalise away, are refused.
func plistString(s string) (string, error) {
	if err := printable(s); err != nil {
		return "", err
	}
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // a strings.Builder never fails a write
	return b.String(), nil
}

// launchctl runs launchctl with args.
func (s *Service) launchctl(ctx context.Context, args ...string) (string, int, error) {
	argv := append([]string{"launchctl"}, args...)
	out, code, err := s.host.Run(ctx, argv...)
	if err != nil {
		return out, code, fmt.Errorf("run launchctl: %w", err)
	}
	if code != 0 {
		return out, code, fmt.Errorf("%s: see launchctl print %s", failure(argv, code, out), s.target())
	}
	return out, 0, nil
}

// domain is the login session's launchd domain; target the job in it.
func (s *Service) domain() string { return "gui/" + strconv.Itoa(s.host.UID) }
func (s *Service) target() string { return s.domain() + "/" + Label }

// launchdLoaded asks launchd about the job: whether it is loaded, and what
// launchctl print said.
func (s *Service) launchdLoaded(ctx context.Context) (bool, string, error) {
	out, code, err := s.host.Run(ctx, "launchctl", "print", s.target())
	if err != nil {
		return false, out, fmt.Errorf("run launchctl: %w", err)
	}
	return code == 0, out, nil // launchctl print fails for a job that is not loaded
}

// launchdInstall enables the job (clearing an earlier launchctl disable)
// and, unless noStart, loads it afresh from the new file, which starts it.
func (s *Service) launchdInstall(ctx context.Context, noStart bool) error {
	if _, _, err := s.launchctl(ctx, "enable", s.target()); err != nil {
		return err
	}
	if noStart {
		return nil // loaded, and so started, at the next login
	}
	if err := s.launchdStop(ctx); err != nil {
		return err
	}
	_, _, err := s.launchctl(ctx, "bootstrap", s.domain(), s.File)
	return err
}

// launchdStart loads the job, which starts it (RunAtLoad), or starts a
// loaded one that is not running.
func (s *Service) launchdStart(ctx context.Context) error {
	loaded, _, err := s.launchdLoaded(ctx)
	if err != nil {
		return err
	}
	if loaded {
		_, _, err = s.launchctl(ctx, "kickstart", s.target())
	} else {
		_, _, err = s.launchctl(ctx, "bootstrap", s.domain(), s.File)
	}
	return err
}

// launchdStop unloads the job: with KeepAlive, a mere kill would start it
// again. It stays unloaded until the next login or launchdStart.
func (s *Service) launchdStop(ctx context.Context) error {
	loaded, _, err := s.launchdLoaded(ctx)
	if err != nil || !loaded {
		return err
	}
	_, _, err = s.launchctl(ctx, "bootout", s.target())
	return err
}

// launchdStatus is launchctl print's account of the job.
func (s *Service) launchdStatus(ctx context.Context) (Status, error) {
	loaded, out, err := s.launchdLoaded(ctx)
	if err != nil || !loaded {
		return Status{Report: "not loaded: start it with nanoclaw service start\n"}, err
	}
	return Status{Running: strings.Contains(out, "state = running"), Report: out}, nil
}
