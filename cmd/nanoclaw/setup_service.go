package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/service"
)

// setupService installs and starts the service. Where no service manager
// runs, the unit is still rendered and, when systemd-analyze is there,
// verified; the error is then errNoServiceManager and detail says so. A
// credential set only in this shell's environment is refused first: the
// service would start without it and never answer.
func (m *Main) setupService(ctx context.Context, cfg *config.Config) (detail string, running bool, err error) {
	for _, name := range []string{"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"} {
		if cfg.Sources[name] == "environment" {
			return "", false, fmt.Errorf("%s is set only in this shell's environment, which the service does not see\n    fix: save it with 'nanoclaw setup --credential-file FILE', or put it in %s; or run setup with --no-service", name, cfg.FilePath())
		}
	}
	svc, unit, _, err := m.newService(cfg)
	if err != nil {
		return "", false, err
	}
	if why := svc.Check(); why != nil {
		data, err := svc.Render(ctx, unit)
		if err != nil {
			return "", false, err
		}
		verified, err := verifyUnit(ctx, data, svc.Kind == service.SystemdUser)
		if err != nil {
			return "", false, fmt.Errorf("the service file does not verify: %w", err)
		}
		return fmt.Sprintf("NOT INSTALLED: %v; the service file it would write %s", why, verified), false, errNoServiceManager
	}
	done, err := svc.Install(ctx, unit, false, false)
	if err != nil {
		return "", false, fmt.Errorf("%w\n    fix: 'nanoclaw service install' says more; or run setup with --no-service", err)
	}
	detail = "installed " + svc.File + " and started: it runs at boot and restarts after a failure"
	if done.Linger != "" {
		detail += "; it stops when you log out unless you run: " + done.Linger
	}
	return detail, done.Started, nil
}

// verifyUnit checks a systemd unit with systemd-analyze verify when the
// program is installed, and says which.
func verifyUnit(ctx context.Context, unit []byte, user bool) (string, error) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		return "was not verified (no systemd-analyze here)", nil
	}
	dir, err := os.MkdirTemp("", "nanoclaw-unit-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, service.UnitName)
	if err := os.WriteFile(path, unit, 0o600); err != nil {
		return "", err
	}
	args := []string{"verify", "--man=no", path}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "SYSTEMD_LOG_COLOR=0"}
	if user {
		args = append([]string{"--user"}, args...)
		env = append(env, "XDG_RUNTIME_DIR="+dir) // --user wants a runtime directory
	}
	cmd := exec.CommandContext(ctx, analyze, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if msg := strings.TrimSpace(string(out)); err != nil || msg != "" {
		return "", fmt.Errorf("systemd-analyze verify: %v %s", err, msg)
	}
	return "verifies (systemd-analyze verify)", nil
}

// proofText is the message setup sends to main.
const proofText = "This is nanoclaw setup checking that you answer. Reply with one short sentence."

// proveReply sends a message to main and returns the assistant's reply:
// through the running daemon, or one started for the proof and stopped
// after it.
func (m *Main) proveReply(ctx context.Context, cfg *config.Config, daemonUp bool) (string, error) {
	cl := control.Dial(cfg.ControlSocket())
	if !daemonUp {
		if _, err := cl.Status(ctx, ""); err == nil {
			daemonUp = true // a daemon of the owner's own already runs
		}
	}
	if !daemonUp {
		stop, err := m.startProofDaemon(ctx, cl)
		if err != nil {
			return "", err
		}
		defer stop()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := cl.PostMessageWait(ctx, control.MessageRequest{Chat: local.JID("main"), Sender: local.DefaultSender(), Text: proofText})
	if err != nil {
		return "", err
	}
	defer st.Close()
	var reply []string
	for {
		ev, err := st.Next()
		if err != nil {
			return "", fmt.Errorf("no reply: %w", err)
		}
		switch ev.Type {
		case local.EventReply:
			reply = append(reply, ev.Text)
		case local.EventDone:
			if ev.Error != "" {
				return "", fmt.Errorf("the run failed: %s", ev.Error)
			}
			if len(reply) == 0 {
				return "", errors.New("the run ended without a reply")
			}
			return strings.Join(reply, "\n"), nil
		case local.EventLagged:
			return "", errors.New("the reply stream lagged")
		}
	}
}

// startProofDaemon runs `nanoclaw run` (this binary) until stop is called,
// once its control socket answers.
func (m *Main) startProofDaemon(ctx context.Context, cl *control.Client) (stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "run")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard // its log is in logs/nanoclaw.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nanoclaw run: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("nanoclaw run stopped (%v): 'nanoclaw logs' says why", err)
		default:
		}
		if _, err := cl.Status(ctx, ""); err == nil {
			return stop, nil
		}
	}
	stop()
	return nil, errors.New("nanoclaw run did not answer within 30s: 'nanoclaw logs' says why")
}
