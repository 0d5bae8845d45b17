// Package config is the one place that knows nanoclaw's settings: their
// defaults, the environment variables and the optional config file that
// override them, and the paths derived from them.
//
// Precedence, lowest first: built-in default, the config file
// ($NANOCLAW_CONFIG_DIR/config), the process environment. Every value is
// validated into a typed field; all problems are reported at once and nothing
// is half-applied.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

// Secret is a credential. It prints masked everywhere (fmt, slog, JSON) so it
// cannot leak into logs by accident; Reveal returns the real value for the one
// place that needs it, the gateway's API proxy.
type Secret string

// Reveal returns the unmasked value.
func (s Secret) Reveal() string { return string(s) }

// String returns a masked form that says whether the secret is set.
func (s Secret) String() string {
	if s == "" {
		return "(not set)"
	}
	return fmt.Sprintf("(set, %d characters)", len(s))
}

// LogValue keeps the secret masked in structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret masked when encoded.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is the validated, effective configuration.
type Config struct {
	Home      string // data home: groups/, sessions/, ipc/, store/, logs/
	ConfigDir string // config file, mount allowlist, secrets, database key; never mounted

	AssistantName string
	APIKey        Secret   // host side only: the gateway injects it, containers never see it
	OAuthToken    Secret   // host side only, as APIKey
	UpstreamURL   *url.URL // where the gateway forwards the agent's API calls
	Runtime       sandbox.Kind
	Image         string
	BrowserImage  string // Image plus Chromium and agent-browser, for groups with a browser
	AgentBinary   string // nanoclaw-agent (static linux build) mounted into containers
	Model         string // the default Claude model; "" leaves it to Claude Code

	MaxConcurrentContainers int
	ContainerTimeout        time.Duration // hard limit of one agent run
	IdleTimeout             time.Duration // how long a finished agent waits for follow-ups
	EgressAskTimeout        time.Duration // how long egress mode ask waits for the owner's answer
	ContainerMemoryMB       int
	ContainerCPUs           float64
	ContainerPidsLimit      int

	PromptMaxMessages int // finding 9: catch-up cap, newest kept
	PromptMaxBytes    int
	MessageMaxBytes   int

	MediaMaxBytes    int64         // largest media fetched or sent
	MediaRetention   time.Duration // how long received media are kept
	TranscribeURL    *url.URL      // nil: voice notes are not transcribed
	TranscribeAPIKey Secret        // host side only, as APIKey
	TranscribeModel  string
	TelegramAPIURL   *url.URL // the Bot API server the Telegram channel talks to

	SendPerMinute int // R9: messages a minute to one chat, all senders together
	SendBurst     int // R9: messages at once to one chat before the pace applies

	// R9: what the agents may schedule. Main's agent and the owner have a
	// higher cap and the scheduler's one-minute floor.
	TaskMaxActive     int           // active or paused tasks a non-main group's agent may have
	TaskMaxActiveMain int           // the same, per group, for what main's agent schedules
	TaskMinInterval   time.Duration // shortest interval (or cron frequency) for a non-main group's agent

	// Issue 14: each response's cost, and the total budget of all groups
	// together (each group's own is in its container config).
	Prices gateway.Prices
	Budget gateway.Budget

	Timezone  *time.Location
	DBKeyFile string
	LogLevel  slog.Level

	// File is the config file that was read, or "" if there was none.
	File string
	// Sources tells, per setting name, where its value came from:
	// "default", "environment" or the config file's path.
	Sources map[string]string
	// Warnings are problems worth telling the user that do not stop start-up.
	Warnings []string
}

// Derived paths. Each is inside Home or ConfigDir; callers never join their own.

// GroupsDir holds one folder per group plus global/.
func (c *Config) GroupsDir() string { return filepath.Join(c.Home, "groups") }

// SessionsDir holds each group's Claude Code state.
func (c *Config) SessionsDir() string { return filepath.Join(c.Home, "sessions") }

// IPCDir holds each group's gateway socket directory.
func (c *Config) IPCDir() string { return filepath.Join(c.Home, "ipc") }

// StoreDir holds the database.
func (c *Config) StoreDir() string { return filepath.Join(c.Home, "store") }

// SpoolDir holds the copies of the files the agents send, until sent:
// the host's own, never mounted.
func (c *Config) SpoolDir() string { return filepath.Join(c.Home, "outbox") }

// SkillsDir holds, per group, the read-only copy of the owner's skills
// its runs mount: the host's own.
func (c *Config) SkillsDir() string { return filepath.Join(c.Home, "skills") }

// LogsDir holds the daemon's own logs.
func (c *Config) LogsDir() string { return filepath.Join(c.Home, "logs") }

// DBPath is the SQLite database file.
func (c *Config) DBPath() string { return filepath.Join(c.StoreDir(), "nanoclaw.db") }

// ControlSocket is the daemon's local control socket (CLI and local chat).
func (c *Config) ControlSocket() string { return filepath.Join(c.Home, "control.sock") }

// LockFile guards the data home against a second daemon.
func (c *Config) LockFile() string { return filepath.Join(c.Home, "nanoclaw.lock") }

// FilePath is the config file: File when one was read, else where one
// would be ($NANOCLAW_CONFIG_DIR/config).
func (c *Config) FilePath() string { return cmp.Or(c.File, filepath.Join(c.ConfigDir, "config")) }

// AllowlistPath is the mount allowlist; it lives in ConfigDir so no container
// can ever see or edit it.
func (c *Config) AllowlistPath() string { return filepath.Join(c.ConfigDir, "mount-allowlist.json") }

// DataDirs are the directories of the data home, created 0700 at start-up.
func (c *Config) DataDirs() []string {
	return []string{c.Home, c.GroupsDir(), c.SessionsDir(), c.IPCDir(), c.StoreDir(), c.LogsDir()}
}

// Trigger is the default trigger word of a group, e.g. "@Andy".
func (c *Config) Trigger() string { return "@" + c.AssistantName }

// Load builds the effective configuration from defaults, the config file and
// getenv (os.Getenv in production). It reports every invalid value at once.
func Load(getenv func(string) string) (*Config, error) {
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("cannot find the home directory (set HOME): %w", err)
		}
		home = h
	}
	c := &Config{Sources: make(map[string]string)}

	dir := cmp.Or(getenv("NANOCLAW_CONFIG_DIR"), filepath.Join(cmp.Or(getenv("XDG_CONFIG_HOME"), filepath.Join(home, ".config")), "nanoclaw"))
	var err error
	if c.ConfigDir, err = expandHome(dir, home); err != nil {
		return nil, fmt.Errorf("NANOCLAW_CONFIG_DIR: %w", err)
	}

	path := c.FilePath() // File is not set yet
	data, err := os.ReadFile(path)
	if err == nil {
		c.File = path
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	fileValues, err := parseEnvFile(path, data) // no file: no values
	if err = cmp.Or(err, checkFileKeys(path, fileValues)); err != nil {
		return nil, err
	}

	var errs []error
	for _, s := range settings {
		v, src := s.Default, "default"
		if fv, ok := fileValues[s.Name]; ok && fv != "" {
			v, src = fv, path
		}
		if ev := getenv(s.Name); ev != "" {
			v, src = ev, "environment"
		}
		if s.path {
			if v, err = expandHome(v, home); err != nil {
				errs = append(errs, fmt.Errorf("%s (from %s): %w", s.Name, src, err))
				continue
			}
		}
		c.Sources[s.Name] = src
		if err := s.apply(c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s (from %s): %w", s.Name, src, err))
		}
		if s.Secret && v != "" && src == path {
			if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s holds %s but other users can read it: run chmod 600 %s", path, s.Name, path))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if u := c.TranscribeURL; u != nil && u.Scheme == "http" && c.TranscribeAPIKey != "" && !loopback(u.Hostname()) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("TRANSCRIBE_URL is plain http to %s: TRANSCRIBE_API_KEY and the voice notes cross the network unencrypted; use https", u.Hostname()))
	}
	if u := c.TelegramAPIURL; u.Scheme == "http" && !loopback(u.Hostname()) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("TELEGRAM_API_URL is plain http to %s: the bot's token and messages cross the network unencrypted; use https", u.Hostname()))
	}
	if within(c.ConfigDir, c.Home) {
		// Parts of the data home are mounted into containers; the config dir
		// holds the credentials and the mount allowlist, so it must stay apart.
		return nil, fmt.Errorf("NANOCLAW_CONFIG_DIR %s lies inside NANOCLAW_HOME %s: choose a config dir outside the data home", c.ConfigDir, c.Home)
	}
	return c, nil
}

// loopback reports whether host names this machine's loopback.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkFileKeys rejects names the file may not set: unknown ones (a typo would
// otherwise be silently ignored) and NANOCLAW_CONFIG_DIR, which locates the file.
func checkFileKeys(path string, values map[string]string) error {
	for k := range values {
		if k == "NANOCLAW_CONFIG_DIR" {
			return fmt.Errorf("%s: NANOCLAW_CONFIG_DIR cannot be set in the config file it locates; set it in the environment", path)
		}
		if !slices.ContainsFunc(settings, func(s setting) bool { return s.Name == k }) {
			return fmt.Errorf("%s: unknown setting %s (run `nanoclaw run --print-config` to see the known ones)", path, k)
		}
	}
	return nil
}

// Print writes the effective configuration as KEY=VALUE lines, secrets masked,
// each preceded by a comment saying where its value came from.
func (c *Config) Print(w io.Writer) {
	fmt.Fprintf(w, "NANOCLAW_CONFIG_DIR=%s\n", c.ConfigDir)
	fmt.Fprintf(w, "# config file: %s\n", cmp.Or(c.File, c.FilePath()+" (not present)"))
	for _, s := range settings {
		if src := c.Sources[s.Name]; src != "" {
			fmt.Fprintf(w, "# %s from %s\n", s.Name, src)
		}
		fmt.Fprintf(w, "%s=%s\n", s.Name, s.show(c))
	}
}

// Help lists every setting with its default, for --help texts and docs.
func Help() string {
	var b strings.Builder
	for _, s := range settings {
		fmt.Fprintf(&b, "  %-26s %s (default %s)\n", s.Name, s.Help, cmp.Or(s.Default, "-"))
	}
	return b.String()
}

// ParseLevel turns a log level name into a slog.Level: slog's own names, in
// any case, or "" for info.
func ParseLevel(v string) (slog.Level, error) {
	var l slog.Level
	if v != "" && l.UnmarshalText([]byte(v)) != nil {
		return 0, fmt.Errorf("unknown log level %q (use debug, info, warn or error)", v)
	}
	return l, nil
}

func expandHome(p, home string) (string, error) {
	if p == "~" {
		return home, nil
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest), nil
	}
	if strings.HasPrefix(p, "~") {
		return "", fmt.Errorf("%q: only ~/ (your own home) is expanded", p)
	}
	return p, nil
}

func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path contains a NUL byte")
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	return filepath.Clean(p), nil
}

// within reports whether path lies inside (or is) dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
