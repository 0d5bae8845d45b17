package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/service"
)

const serviceHelp = `Run nanoclaw as a background service: started at boot (or login), restarted
after a failure.

  nanoclaw service install [--force] [--no-start] [--dry-run]
  nanoclaw service uninstall [--force]
  nanoclaw service start | stop | status

As root on Linux it is a systemd system unit (/etc/systemd/system/nanoclaw.service),
as an ordinary user a systemd user unit (~/.config/systemd/user/nanoclaw.service),
on macOS a launchd agent (~/Library/LaunchAgents/com.nanoclaw.plist).
The service runs this binary with the data home and config dir this command
uses. It does not see this shell's environment: keep settings in the config file.
Run 'nanoclaw service <command> --help' for a command's options.`

// serviceCommands are the service subcommands: their usage and help.
var serviceCommands = map[string][2]string{
	"install": {"[--force] [--no-start] [--dry-run]", `Write the service file, enable the service and start it (a running one
restarts, to run the new file). A file nanoclaw did not write is kept
unless --force. With --dry-run it prints the file and changes nothing.`},
	"uninstall": {"[--force]", `Stop and disable the service and remove its file. The data home and the
config are kept. A file nanoclaw did not write is kept unless --force.`},
	"start":  {"", "Start the installed service."},
	"stop":   {"", "Stop the service. It stays installed and starts again at the next boot (or login)."},
	"status": {"", "Say whether the service runs, what the service manager says of it, and where its logs are.\nExit status 1 when it does not run."},
}

// serviceHost is this machine as the service commands see it; tests
// replace it with a temporary root and a recording runner.
var serviceHost = func(m *Main) (service.Host, error) {
	uid := os.Geteuid()
	var name, home string
	if u, err := user.Current(); err == nil {
		name, home = u.Username, u.HomeDir
	}
	h := service.Host{GOOS: runtime.GOOS, UID: uid, Root: "/", Run: service.Exec(m.Getenv),
		User:    cmp.Or(name, m.Getenv("USER"), strconv.Itoa(uid)),
		HomeDir: cmp.Or(m.Getenv("HOME"), home)} // HOME first, as config.Load resolves it
	if h.HomeDir == "" {
		return h, fmt.Errorf("cannot find your home directory: set HOME")
	}
	return h, nil
}

func (m *Main) runService(ctx context.Context, args []string) error {
	fs := m.flagSet("service", "install|uninstall|start|stop|status [options]", serviceHelp)
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("which service command? install, uninstall, start, stop or status")
	}
	verb := fs.Arg(0)
	text, ok := serviceCommands[verb]
	if !ok {
		return usagef("unknown service command %q: install, uninstall, start, stop or status", verb)
	}
	sub := m.flagSet("service "+verb, text[0], text[1])
	var force, noStart, dryRun *bool
	switch verb {
	case "install":
		force = sub.Bool("force", false, "replace a service file nanoclaw did not write")
		noStart = sub.Bool("no-start", false, "enable the service but do not start it now")
		dryRun = sub.Bool("dry-run", false, "print the file that would be written; change nothing")
	case "uninstall":
		force = sub.Bool("force", false, "remove a service file nanoclaw did not write")
	}
	if err := m.parseNoArgs(sub, fs.Args()[1:]); err != nil {
		return err
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	svc, unit, host, err := m.newService(cfg)
	if err != nil {
		return err
	}

	w := m.Stdout
	switch verb {
	case "install":
		if *dryRun {
			data, err := svc.Render(ctx, unit)
			if err != nil {
				return err
			}
			w.Write(data)
			if err := svc.Check(); err != nil {
				fmt.Fprintf(m.Stderr, "note: %v\n", err)
			}
			fmt.Fprintf(m.Stderr, "would write %s; nothing was changed\n", svc.File)
			return nil
		}
		done, err := svc.Install(ctx, unit, *force, *noStart)
		if err != nil {
			return err
		}
		if done.Replaced {
			fmt.Fprintf(w, "replaced %s\n", svc.File)
		} else {
			fmt.Fprintf(w, "wrote %s\n", svc.File)
		}
		switch {
		case done.Started:
			fmt.Fprintln(w, "the service is enabled and running: it starts at boot (or login) and restarts after a failure")
		default:
			fmt.Fprintln(w, "the service is enabled, not started: nanoclaw service start starts it now")
		}
		if done.Linger != "" {
			fmt.Fprintf(w, "lingering is off for %s: the service stops when you log out and waits for your next login; to keep it always on, run: %s\n", host.User, done.Linger)
		}
		m.warnEnvironmentOnly(cfg)
		fmt.Fprintf(w, "status: nanoclaw service status; its output: %s\n", svc.LogHint(unit))
	case "uninstall":
		removed, err := svc.Uninstall(ctx, *force)
		if err != nil {
			return err
		}
		if !removed {
			fmt.Fprintf(w, "the service is not installed (no %s): nothing to remove\n", svc.File)
			return nil
		}
		fmt.Fprintf(w, "stopped the service and removed %s; the data home %s and the config are kept\n", svc.File, cfg.Home)
	case "start":
		if err := svc.Start(ctx); err != nil {
			return err
		}
		fmt.Fprintln(w, "started the service")
	case "stop":
		if err := svc.Stop(ctx); err != nil {
			return err
		}
		fmt.Fprintln(w, "stopped the service; it starts again at the next boot (or login): nanoclaw service uninstall removes it")
	case "status":
		st, err := svc.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "service file: %s\n", svc.File)
		// The report quotes the daemon's last log lines, which may carry a
		// chat's text (R10).
		fmt.Fprint(w, sanitize.Terminal(st.Report))
		fmt.Fprintf(w, "logs: nanoclaw logs (files in %s); the service's own output: %s\n", cfg.LogsDir(), svc.LogHint(unit))
		if !st.Running {
			return fmt.Errorf("the service is not running: start it with nanoclaw service start")
		}
	}
	return nil
}

// newService is this machine's service manager and the unit it would run
// for cfg.
func (m *Main) newService(cfg *config.Config) (*service.Service, service.Unit, service.Host, error) {
	host, err := serviceHost(m)
	if err != nil {
		return nil, service.Unit{}, host, err
	}
	svc, err := service.New(host)
	if err != nil {
		return nil, service.Unit{}, host, err
	}
	unit, err := m.serviceUnit(cfg, host.HomeDir)
	return svc, unit, host, err
}

// serviceUnit is what the service runs: this binary, with the data home and
// config dir this command resolved, so the service uses the same ones.
func (m *Main) serviceUnit(cfg *config.Config, homeDir string) (service.Unit, error) {
	exe, err := os.Executable()
	if err == nil {
		// The file itself: a symlink (a package manager's, /usr/local/bin)
		// may later point elsewhere.
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return service.Unit{}, fmt.Errorf("find the nanoclaw binary: %w", err)
	}
	u := service.Unit{Exe: exe, HomeDir: homeDir, DataHome: cfg.Home, ConfigDir: cfg.ConfigDir,
		Path: service.SearchPath(m.Getenv("PATH"), runtime.GOOS), LogsDir: cfg.LogsDir()}
	// The service manager runs this binary, and the daemon the runtime
	// CLIs it finds in PATH, at every boot (as root for a system unit):
	// none of them may be replaceable by another user.
	if err := u.CheckReplaceable(os.Geteuid()); err != nil {
		return service.Unit{}, fmt.Errorf("service: %w", err)
	}
	return u, nil
}

// warnEnvironmentOnly names the settings that only this shell's
// environment sets: the service starts without them.
func (m *Main) warnEnvironmentOnly(cfg *config.Config) {
	var names []string
	for name, src := range cfg.Sources {
		if src == "environment" && name != "NANOCLAW_HOME" { // the unit carries the data home
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(m.Stdout, "warning: %s is set only in this shell's environment, which the service does not see: put it in %s\n",
			name, cfg.FilePath())
	}
}
