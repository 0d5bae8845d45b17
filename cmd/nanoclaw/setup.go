package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/doctor"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

const setupHelp = `Set nanoclaw up, from nothing to an always-on assistant, one step at a time:

  1. the machine: a working container runtime, free disk
  2. the credential: asked without echo (or --credential-file), checked with
     the upstream, then saved in the config file (mode 600); never printed
  3. encryption at rest (--encrypt): a new database key, db.key (mode 600)
  4. the agent image, built when missing or out of date
  5. WhatsApp, paired by QR code or --phone (--skip-whatsapp to leave it)
  6. the background service, installed and started (--no-service to leave it)
  7. the proof: a message to main and the assistant's reply

Run it again at any time: a step that is done says so (✓) and is left as it
is. A step that fails says what to do, and what was done before stays done.
On a terminal it asks; with --yes it asks nothing and takes the defaults.`

// setupStep is one step's outcome.
type setupStep struct {
	name   string
	detail string // what was found or done
	err    error  // the step failed: what to do is in the error
	skip   bool   // left out on purpose
}

func (m *Main) runSetup(ctx context.Context, args []string) error {
	fs := m.flagSet("setup", "[--yes] [--runtime KIND] [--credential-file FILE] [--encrypt] [--skip-whatsapp] [--phone NUMBER] [--no-service]", setupHelp)
	yes := fs.Bool("yes", false, "ask nothing: take the defaults (for scripts)")
	runtimeFlag := fs.String("runtime", "", "container runtime to use and save: podman, docker, container or auto")
	credFile := fs.String("credential-file", "", "read the API key or OAuth token from this file instead of asking")
	encrypt := fs.Bool("encrypt", false, "encrypt the database at rest (only before its first start)")
	skipWA := fs.Bool("skip-whatsapp", false, "do not pair WhatsApp now ('nanoclaw pair whatsapp' does it later)")
	phone := fs.String("phone", "", "pair WhatsApp by a code typed on the phone (its number, with country code)")
	noService := fs.Bool("no-service", false, "do not install the background service")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	if *runtimeFlag != "" {
		if _, err := sandbox.ParseKind(*runtimeFlag); err != nil {
			return usagef("--runtime: %v", err)
		}
	}
	interactive := !*yes && isTerminal(stdin) && isTerminal(m.Stdout)
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	s := &setup{m: m, cfg: cfg, interactive: interactive}
	steps := []func(context.Context) setupStep{
		func(ctx context.Context) setupStep { return s.machine(ctx, *runtimeFlag) },
		func(ctx context.Context) setupStep { return s.credential(ctx, *credFile) },
		func(context.Context) setupStep { return s.encryption(*encrypt) },
		s.image,
		func(ctx context.Context) setupStep { return s.whatsapp(ctx, *skipWA, *phone) },
		func(ctx context.Context) setupStep { return s.service(ctx, *noService) },
		s.proof,
	}
	for i, step := range steps {
		r := step(ctx)
		// R10: a step's words may quote the model (the proof) or the
		// upstream (the credential check).
		r.detail = sanitize.Terminal(r.detail)
		switch {
		case r.err != nil:
			fmt.Fprintf(m.Stdout, "✗ %d. %s: %s\n", i+1, r.name, sanitize.Terminal(r.err.Error()))
			fmt.Fprintf(m.Stdout, "What was done so far stays done; fix this, then run 'nanoclaw setup' again.\n")
			return fmt.Errorf("step %d (%s) failed", i+1, r.name)
		case r.skip:
			fmt.Fprintf(m.Stdout, "– %d. %s: %s\n", i+1, r.name, r.detail)
		default:
			fmt.Fprintf(m.Stdout, "✓ %d. %s: %s\n", i+1, r.name, r.detail)
		}
	}
	fmt.Fprintln(m.Stdout, "nanoclaw is set up. Talk to it: nanoclaw chat (or your WhatsApp self-chat); see it work: nanoclaw status")
	return nil
}

// setup is the walk-through's state: the config, reloaded after a step
// changed the config file.
type setup struct {
	m           *Main
	cfg         *config.Config
	interactive bool
	daemonUp    bool // the service runs (so the proof goes through it)
}

// save writes settings into the config file and reloads the config.
func (s *setup) save(values map[string]string) error {
	if err := config.SetFileValues(s.cfg.FilePath(), values); err != nil {
		return fmt.Errorf("write %s: %w", s.cfg.FilePath(), err)
	}
	cfg, err := config.Load(s.m.Getenv)
	if err != nil {
		return err
	}
	s.cfg = cfg
	return nil
}

// ask asks a yes/no question on the terminal; without one it is def.
func (s *setup) ask(question string, def bool) bool {
	if !s.interactive {
		return def
	}
	hint := "[y/N]"
	if def {
		hint = "[Y/n]"
	}
	fmt.Fprintf(s.m.Stdout, "%s %s ", question, hint)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	case "n", "no":
		return false
	}
	return def
}

func (s *setup) machine(ctx context.Context, runtimeFlag string) setupStep {
	r := setupStep{name: "machine"}
	if runtimeFlag != "" && runtimeFlag != string(s.cfg.Runtime) {
		if err := s.save(map[string]string{"NANOCLAW_RUNTIME": runtimeFlag}); err != nil {
			r.err = err
			return r
		}
	}
	_, checks := doctor.ContainerRuntime(ctx, s.cfg)
	checks = append(checks, doctor.FreeDisk(s.cfg.Home))
	var found []string
	for _, c := range checks {
		if !c.OK {
			r.err = fmt.Errorf("%s: %s\n    fix: %s", c.Name, c.Detail, c.Fix)
			return r
		}
		found = append(found, c.Detail)
	}
	if err := daemon.PrepareHome(s.cfg, s.m.Logger); err != nil {
		r.err = err
		return r
	}
	r.detail = strings.Join(found, "; ")
	return r
}

func (s *setup) credential(ctx context.Context, file string) setupStep {
	r := setupStep{name: "credential"}
	if file == "" && (s.cfg.APIKey != "" || s.cfg.OAuthToken != "") {
		if c := doctor.Credential(ctx, s.cfg); c.OK {
			r.detail = "set, and " + c.Detail
			return r
		} else if !s.interactive {
			r.err = fmt.Errorf("%s\n    fix: %s", c.Detail, c.Fix)
			return r
		}
	}
	secret, err := s.readSecret(file)
	if err != nil {
		r.err = err
		return r
	}
	name := "ANTHROPIC_API_KEY"
	key, token := secret, ""
	if strings.HasPrefix(secret, "sk-ant-oat") {
		name, key, token = "CLAUDE_CODE_OAUTH_TOKEN", "", secret
	}
	if err := gateway.CheckCredential(ctx, s.cfg.UpstreamURL, key, token); err != nil {
		r.err = fmt.Errorf("not saved: %v\n    fix: check the key (console.anthropic.com), or the network, and run setup again", err)
		return r
	}
	if err := s.save(map[string]string{name: secret}); err != nil {
		r.err = err
		return r
	}
	r.detail = fmt.Sprintf("accepted by %s; saved as %s in %s (mode 600)", s.cfg.UpstreamURL.Redacted(), name, s.cfg.FilePath())
	if s.m.Getenv(name) != "" {
		r.detail += fmt.Sprintf("; note: %s in your environment overrides the file", name)
	}
	return r
}

// readSecret reads the credential from file (its first line), or asks for
// it on the terminal without echo.
func (s *setup) readSecret(file string) (string, error) {
	return s.m.readSecret(file, "--credential-file", "Anthropic API key or Claude Code OAuth token", s.interactive,
		"no credential: give --credential-file FILE (a file holding the key), or run setup on a terminal")
}

// readSecret reads a secret from file (its first line; flag names the
// option that gave it), or, when interactive, asks for it (what) on the
// terminal without echo; otherwise it fails with none.
func (m *Main) readSecret(file, flag, what string, interactive bool, none string) (string, error) {
	var secret string
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", flag, err)
		}
		defer f.Close()
		if info, err := f.Stat(); err == nil && info.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(m.Stderr, "warning: other users can read %s (mode %v): chmod 600 %s, or remove it now\n", file, info.Mode().Perm(), file)
		}
		data, err := io.ReadAll(io.LimitReader(f, 64<<10)) // a key, not a document
		if err != nil {
			return "", fmt.Errorf("read %s: %w", flag, err)
		}
		secret, _, _ = strings.Cut(string(data), "\n")
	case interactive:
		f, _ := stdin.(*os.File)
		fmt.Fprintf(m.Stdout, "%s (not shown as you type): ", what)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(m.Stdout)
		if err != nil {
			return "", fmt.Errorf("read the %s: %w", strings.ToLower(what), err)
		}
		secret = string(b)
	default:
		return "", errors.New(none)
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return "", fmt.Errorf("the %s is empty", strings.ToLower(what))
	}
	return secret, nil
}

func (s *setup) encryption(want bool) setupStep {
	r := setupStep{name: "encryption at rest"}
	if _, err := os.Stat(s.cfg.DBKeyFile); err == nil {
		r.detail = "the database key is " + s.cfg.DBKeyFile + " (keep a copy: without it the database cannot be read)"
		return r
	}
	if _, err := os.Stat(s.cfg.DBPath()); err == nil {
		r.skip, r.detail = true, "the database exists unencrypted; encryption applies to a new data home only"
		return r
	}
	if !want && !s.ask("Encrypt the database at rest? You must keep a copy of its key.", false) {
		r.skip, r.detail = true, "not encrypted ('nanoclaw setup --encrypt' before the first start encrypts it)"
		return r
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.MkdirAll(filepath.Dir(s.cfg.DBKeyFile), 0o700); err != nil {
		r.err = err
		return r
	}
	f, err := os.OpenFile(s.cfg.DBKeyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = fmt.Fprintln(f, hex.EncodeToString(key))
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		r.err = fmt.Errorf("write the database key: %w", err)
		return r
	}
	r.detail = "created " + s.cfg.DBKeyFile + " (mode 600). KEEP A COPY of it somewhere safe: without it the database cannot be read"
	return r
}

func (s *setup) image(ctx context.Context) setupStep {
	r := setupStep{name: "agent image"}
	rt, err := sandbox.Detect(ctx, s.cfg.Runtime)
	if err != nil {
		r.err = err
		return r
	}
	if c := doctor.Image(ctx, s.cfg, rt); c.OK {
		r.detail = c.Detail
		return r
	}
	fmt.Fprintf(s.m.Stdout, "  building %s (a few minutes; progress below)…\n", s.cfg.Image)
	if err := s.m.runImageBuild(ctx, nil); err != nil {
		r.err = fmt.Errorf("%v\n    fix: see the build output above; 'nanoclaw image build' retries it alone", err)
		return r
	}
	r.detail = s.cfg.Image + ", built"
	return r
}

func (s *setup) whatsapp(ctx context.Context, skip bool, phone string) setupStep {
	r := setupStep{name: "WhatsApp"}
	if paired, c := doctor.WhatsApp(ctx, s.cfg, s.m.Logger); paired {
		r.detail = c.Detail
		return r
	}
	if skip || !s.ask("Pair WhatsApp now (you need your phone)?", true) {
		r.skip, r.detail = true, "not paired ('nanoclaw pair whatsapp' pairs it later; the terminal chat works without it)"
		return r
	}
	args := []string{"whatsapp"}
	if phone != "" {
		args = append(args, "--phone", phone)
	}
	if err := s.m.runPair(ctx, args); err != nil {
		r.err = fmt.Errorf("%v\n    fix: 'nanoclaw pair whatsapp' retries it, or run setup with --skip-whatsapp", err)
		return r
	}
	r.detail = "paired"
	return r
}

// errNoServiceManager is what the service step says where no service manager runs.
var errNoServiceManager = errors.New("no service manager")

func (s *setup) service(ctx context.Context, skip bool) setupStep {
	r := setupStep{name: "background service"}
	if skip {
		r.skip, r.detail = true, "not installed ('nanoclaw service install' installs it later)"
		return r
	}
	detail, running, err := s.m.setupService(ctx, s.cfg)
	switch {
	case errors.Is(err, errNoServiceManager):
		r.skip, r.detail = true, detail
	case err != nil:
		r.err = err
	default:
		r.detail, s.daemonUp = detail, running
	}
	return r
}

func (s *setup) proof(ctx context.Context) setupStep {
	r := setupStep{name: "proof"}
	reply, err := s.m.proveReply(ctx, s.cfg, s.daemonUp)
	if err != nil {
		r.err = fmt.Errorf("%v\n    fix: 'nanoclaw doctor' says what is wrong; 'nanoclaw status --group main' shows the message's way", err)
		return r
	}
	r.detail = "reply received: " + oneLine(reply, 200)
	return r
}
