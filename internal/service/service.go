// Package service installs and manages nanoclaw's daemon as a background
// service: a systemd user unit for an ordinary user, a systemd system unit
// for root, a launchd agent on macOS. The files are rendered from templates
// in the binary; every program (systemctl, launchctl) is started through a
// Runner, so tests see the exact argument vectors.
package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the service manager a file is written for.
type Kind string

// The kinds of service.
const (
	SystemdUser   Kind = "systemd-user"   // ~/.config/systemd/user/nanoclaw.service
	SystemdSystem Kind = "systemd-system" // /etc/systemd/system/nanoclaw.service
	Launchd       Kind = "launchd"        // ~/Library/LaunchAgents/com.nanoclaw.plist
)

const (
	// UnitName is the systemd unit's name.
	UnitName = "nanoclaw.service"
	// Label is the launchd job's label.
	Label = "com.nanoclaw"
	// marker is in every file this package writes: only a file with it is
	// replaced or removed without --force, so a unit the owner wrote by hand
	// is never lost.
	marker = "Written by nanoclaw service install"
	// stopTimeout lets the daemon finish its own graceful stop (30 s for
	// the agent containers) before the service manager kills it.
	stopTimeout = 45
	// restartDelay spaces restarts after a failure (seconds).
	restartDelay = 5
)

// Unit is what a service file says: the binary that runs and the
// environment it runs with. Every path is absolute.
type Unit struct {
	Exe       string // the nanoclaw binary (os.Executable, symlinks resolved); it runs "run"
	HomeDir   string // HOME: the user's home the configuration was resolved against
	DataHome  string // NANOCLAW_HOME
	ConfigDir string // NANOCLAW_CONFIG_DIR
	Path      string // PATH, so the container runtime is found
	LogsDir   string // the data home's logs/: launchd's output file goes there
}

// env is the unit's environment, in the order the files list it.
func (u Unit) env() [][2]string {
	return [][2]string{{"HOME", u.HomeDir}, {"NANOCLAW_HOME", u.DataHome}, {"NANOCLAW_CONFIG_DIR", u.ConfigDir}, {"PATH", u.Path}}
}

// validate checks that every path is absolute and printable: a relative one
// would be resolved against the service manager's working directory, not
// the owner's.
func (u Unit) validate() error {
	for _, f := range []struct{ name, v string }{{"the nanoclaw binary", u.Exe}, {"HOME", u.HomeDir},
		{"NANOCLAW_HOME", u.DataHome}, {"NANOCLAW_CONFIG_DIR", u.ConfigDir}, {"the logs directory", u.LogsDir}} {
		if !filepath.IsAbs(f.v) {
			return fmt.Errorf("%s %q is not an absolute path: set it to one", f.name, f.v)
		}
	}
	for _, dir := range filepath.SplitList(u.Path) {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("PATH entry %q is not an absolute path: the service would resolve it from its own working directory", dir)
		}
	}
	for _, kv := range u.env() {
		if err := printable(kv[1]); err != nil {
			return fmt.Errorf("%s: %w", kv[0], err)
		}
	}
	return printable(u.Exe)
}

// printable refuses what no service file can carry safely: invalid UTF-8
// and control characters (a newline would end the line and start a new
// directive).
func printable(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8: use a path without such bytes", s)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%q holds a control character (a newline or tab): use a path without one", s)
	}
	return nil
}

// Host is the machine a service is managed on.
type Host struct {
	GOOS    string // runtime.GOOS
	UID     int    // effective uid: 0 installs a systemd system unit
	User    string // login name, for lingering
	HomeDir string // the user's home: where user units and launch agents live
	Root    string // "/" on a real machine; tests use a temporary directory
	Run     Runner // how systemctl and launchctl are started
}

// Service is nanoclaw's service on one host.
type Service struct {
	Kind Kind
	File string // the unit file or plist
	host Host
}

// New says which kind of service this host takes and where its file lives.
func New(h Host) (*Service, error) {
	s := &Service{host: h}
	switch {
	case h.GOOS == "linux" && h.UID == 0:
		s.Kind, s.File = SystemdSystem, s.path("etc/systemd/system", UnitName)
	case h.GOOS == "linux":
		s.Kind, s.File = SystemdUser, filepath.Join(h.HomeDir, ".config/systemd/user", UnitName)
	case h.GOOS == "darwin" && h.UID == 0:
		return nil, errors.New("on macOS the service is a launchd agent of your own login: run this as yourself, not as root")
	case h.GOOS == "darwin":
		s.Kind, s.File = Launchd, filepath.Join(h.HomeDir, "Library/LaunchAgents", Label+".plist")
	default:
		return nil, fmt.Errorf("no service manager nanoclaw knows on %s (it knows systemd and launchd): run nanoclaw run under your own supervisor", h.GOOS)
	}
	if !filepath.IsAbs(h.HomeDir) {
		return nil, fmt.Errorf("home directory %q is not absolute: set HOME", h.HomeDir)
	}
	return s, nil
}

// path is an absolute path of the host's file system, under Root.
func (s *Service) path(elem ...string) string {
	return filepath.Join(append([]string{s.host.Root, "/"}, elem...)...)
}

// Check says whether the service manager runs on this host: a machine whose
// PID 1 is not systemd (a container, WSL without systemd) has systemctl but
// nothing it could talk to.
func (s *Service) Check() error {
	if s.Kind == Launchd {
		return nil
	}
	dir := s.path("run/systemd/system")
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("systemd is not running on this machine (no %s): run nanoclaw run under your own supervisor", dir)
	}
	return nil
}

// Render returns the file for u, as install would write it.
func (s *Service) Render(ctx context.Context, u Unit) ([]byte, error) {
	if err := u.validate(); err != nil {
		return nil, err
	}
	if s.Kind == Launchd {
		return renderPlist(u)
	}
	return renderUnit(u, s.Kind == SystemdSystem, s.systemdVersion(ctx) >= 254)
}

// Installed is what Install did.
type Installed struct {
	Replaced bool   // an earlier file of ours was replaced
	Started  bool   // the service was (re)started
	Linger   string // for a user unit with lingering off: the command that keeps it running after logout
}

// Install writes the service file and enables it; unless noStart it also
// starts it, or restarts it when it was running. A file nanoclaw did not
// write is replaced only with force.
func (s *Service) Install(ctx context.Context, u Unit, force, noStart bool) (Installed, error) {
	var done Installed
	if err := s.Check(); err != nil {
		return done, err
	}
	exists, ours, err := s.inspect()
	if err != nil {
		return done, err
	}
	if exists && !ours && !force {
		return done, fmt.Errorf("%s exists and was not written by nanoclaw: move it away, or replace it with nanoclaw service install --force", s.File)
	}
	data, err := s.Render(ctx, u)
	if err != nil {
		return done, err
	}
	done.Replaced = exists
	if s.Kind == Launchd {
		// launchd opens the output file itself and does not make its directory.
		if err := os.MkdirAll(u.LogsDir, 0o700); err != nil {
			return done, fmt.Errorf("create the logs directory: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(s.File), 0o755); err != nil {
		return done, fmt.Errorf("create %s: %w", filepath.Dir(s.File), err)
	}
	if err := writeFileAtomic(s.File, data, 0o644); err != nil {
		return done, err
	}
	if s.Kind == Launchd {
		err = s.launchdInstall(ctx, noStart)
	} else {
		err = s.systemdInstall(ctx, exists, noStart)
	}
	if err != nil {
		return done, err
	}
	done.Started = !noStart
	if s.Kind == SystemdUser && !s.lingering() {
		done.Linger = "loginctl enable-linger " + s.host.User
	}
	return done, nil
}

// Uninstall stops and disables the service and removes its file. It
// reports false when there was no file. A file nanoclaw did not write is
// removed only with force.
func (s *Service) Uninstall(ctx context.Context, force bool) (bool, error) {
	if err := s.Check(); err != nil {
		return false, err
	}
	exists, ours, err := s.inspect()
	if err != nil || !exists {
		return false, err
	}
	if !ours && !force {
		return false, fmt.Errorf("%s was not written by nanoclaw: remove it yourself, or with nanoclaw service uninstall --force", s.File)
	}
	if s.Kind == Launchd {
		err = s.launchdStop(ctx)
	} else {
		_, err = s.systemctl(ctx, "disable", "--now", UnitName)
	}
	if err != nil {
		return false, err
	}
	if err := os.Remove(s.File); err != nil {
		return false, fmt.Errorf("remove the service file: %w", err)
	}
	if s.Kind != Launchd {
		if _, err := s.systemctl(ctx, "daemon-reload"); err != nil {
			return true, err
		}
	}
	return true, nil
}

// Start starts the installed service.
func (s *Service) Start(ctx context.Context) error {
	if err := s.installed(); err != nil {
		return err
	}
	if s.Kind == Launchd {
		return s.launchdStart(ctx)
	}
	_, err := s.systemctl(ctx, "start", UnitName)
	return err
}

// Stop stops the service; it stays installed and starts again at the next
// boot (systemd) or login (launchd), or with Start.
func (s *Service) Stop(ctx context.Context) error {
	if err := s.installed(); err != nil {
		return err
	}
	if s.Kind == Launchd {
		return s.launchdStop(ctx)
	}
	_, err := s.systemctl(ctx, "stop", UnitName)
	return err
}

// Status is what the service manager says of the service.
type Status struct {
	Running bool
	Report  string // systemctl status or launchctl print, as they printed it
}

// Status asks the service manager about the installed service.
func (s *Service) Status(ctx context.Context) (Status, error) {
	if err := s.installed(); err != nil {
		return Status{}, err
	}
	if s.Kind == Launchd {
		return s.launchdStatus(ctx)
	}
	return s.systemdStatus(ctx)
}

// LogHint says where the service's own output goes (what the daemon prints
// before its log file is open, and a crash's last words).
func (s *Service) LogHint(u Unit) string {
	switch s.Kind {
	case SystemdUser:
		return "journalctl --user -u " + UnitName
	case SystemdSystem:
		return "journalctl -u " + UnitName
	}
	return launchdLogFile(u)
}

// installed checks that the service's file exists.
func (s *Service) installed() error {
	if err := s.Check(); err != nil {
		return err
	}
	exists, _, err := s.inspect()
	if err == nil && !exists {
		err = fmt.Errorf("the service is not installed (no %s): run nanoclaw service install", s.File)
	}
	return err
}

// inspect says whether the service file exists and whether nanoclaw wrote it.
func (s *Service) inspect() (exists, ours bool, err error) {
	data, err := os.ReadFile(s.File)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read the service file: %w", err)
	}
	return true, strings.Contains(string(data), marker), nil
}

// writeFileAtomic replaces path with data in one rename: the service
// manager may read the file at any moment, and must never see half of it.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing left to remove
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode) // explicit: CreateTemp makes 0600, and the umask would decide otherwise
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename itself survives a crash; best effort where directories cannot be synced
		d.Close()
	}
	return nil
}
