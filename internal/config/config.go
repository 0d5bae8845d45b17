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
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/runtime"
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
	Runtime       runtime.Kind
	Image         string
	AgentBinary   string // nanoclaw-agent (static linux build) mounted into containers

	MaxConcurrentContainers int
	ContainerTimeout        time.Duration // hard limit of one agent run
	IdleTimeout             time.Duration // how long a finished agent waits for follow-ups
	ContainerMemoryMB       int
	ContainerCPUs           float64
	ContainerPidsLimit      int

	PromptMaxMessages int // finding 9: catch-up cap, newest kept
	PromptMaxBytes    int
	MessageMaxBytes   int

	SendPerMinute int // R9: messages a minute to one chat, all senders together
	SendBurst     int // R9: messages at once to one chat before the pace applies

	// R9: what the agents may schedule. Main's agent and the owner have a
	// higher cap and the scheduler's one-minute floor.
	TaskMaxActive     int           // active or paused tasks a non-main group's agent may have
	TaskMaxActiveMain int           // the same, per group, for what main's agent schedules
	TaskMinInterval   time.Duration // shortest interval (or cron frequency) for a non-main group's agent

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

// LogsDir holds the daemon's own logs.
func (c *Config) LogsDir() string { return filepath.Join(c.Home, "logs") }

// DBPath is the SQLite database file.
func (c *Config) DBPath() string { return filepath.Join(c.StoreDir(), "nanoclaw.db") }

// ControlSocket is the daemon's local control socket (CLI and local chat).
func (c *Config) ControlSocket() string { return filepath.Join(c.Home, "control.sock") }

// LockFile guards the data home against a second daemon.
func (c *Config) LockFile() string { return filepath.Join(c.Home, "nanoclaw.lock") }

// AllowlistPath is the mount allowlist; it lives in ConfigDir so no container
// can ever see or edit it.
func (c *Config) AllowlistPath() string { return filepath.Join(c.ConfigDir, "mount-allowlist.json") }

// DataDirs are the directories of the data home, created 0700 at start-up.
func (c *Config) DataDirs() []string {
	return []string{c.Home, c.GroupsDir(), c.SessionsDir(), c.IPCDir(), c.StoreDir(), c.LogsDir()}
}

// Trigger is the default trigger word of a group, e.g. "@Andy".
func (c *Config) Trigger() string { return "@" + c.AssistantName }

// setting describes one knob: its name, default, help text and how its
// string value is validated into Config.
type setting struct {
	Name    string
	Default string
	Help    string
	Secret  bool
	path    bool // a path: "~/" is expanded before apply
	apply   func(c *Config, v string) error
	show    func(c *Config) string // the effective value, secrets masked
}

// defaultUpstream is the public Anthropic API.
const defaultUpstream = "https://api.anthropic.com"

// settings is the table of every knob; Load, Print and the README follow it.
var settings = []setting{
	{Name: "NANOCLAW_HOME", path: true, Default: "~/.nanoclaw", Help: "data home: groups, sessions, gateway sockets, database, logs",
		apply: func(c *Config, v string) (err error) { c.Home, err = absPath(v); return err },
		show:  func(c *Config) string { return c.Home }},
	{Name: "ASSISTANT_NAME", Default: "Andy", Help: "the assistant's name; the trigger is @NAME",
		apply: func(c *Config, v string) error { c.AssistantName = v; return validName(v) },
		show:  func(c *Config) string { return c.AssistantName }},
	{Name: "ANTHROPIC_API_KEY", Secret: true, Help: "API key; stays on the host, injected by the gateway",
		apply: func(c *Config, v string) error { c.APIKey = Secret(v); return validSecret(v) },
		show:  func(c *Config) string { return c.APIKey.String() }},
	{Name: "CLAUDE_CODE_OAUTH_TOKEN", Secret: true, Help: "OAuth token (alternative to the API key); stays on the host",
		apply: func(c *Config, v string) error { c.OAuthToken = Secret(v); return validSecret(v) },
		show:  func(c *Config) string { return c.OAuthToken.String() }},
	{Name: "ANTHROPIC_BASE_URL", Default: defaultUpstream, Help: "upstream Messages API the gateway forwards to",
		apply: func(c *Config, v string) (err error) { c.UpstreamURL, err = parseUpstream(v); return err },
		show:  func(c *Config) string { return c.UpstreamURL.String() }},
	{Name: "NANOCLAW_RUNTIME", Default: "auto", Help: "container runtime: auto, docker, podman or container",
		apply: func(c *Config, v string) (err error) { c.Runtime, err = runtime.ParseKind(v); return err },
		show:  func(c *Config) string { return string(c.Runtime) }},
	{Name: "NANOCLAW_IMAGE", Default: "localhost/nanoclaw-agent:latest", Help: "agent container image",
		apply: func(c *Config, v string) error { c.Image = v; return validImage(v) },
		show:  func(c *Config) string { return c.Image }},
	{Name: "NANOCLAW_AGENT_BINARY", path: true, Help: "the static nanoclaw-agent mounted into containers (default: beside the nanoclaw binary)",
		apply: func(c *Config, v string) (err error) {
			if v == "" {
				c.AgentBinary = besideExecutable("nanoclaw-agent")
				return nil
			}
			c.AgentBinary, err = absPath(v)
			return err
		},
		show: func(c *Config) string { return c.AgentBinary }},
	{Name: "MAX_CONCURRENT_CONTAINERS", Default: "3", Help: "agent containers running at once, all groups together",
		apply: func(c *Config, v string) (err error) { c.MaxConcurrentContainers, err = intIn(v, 1, 64); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.MaxConcurrentContainers) }},
	{Name: "CONTAINER_TIMEOUT", Default: "5m", Help: "longest agent run (Go duration, or milliseconds)",
		apply: func(c *Config, v string) (err error) {
			c.ContainerTimeout, err = durationIn(v, 10*time.Second, 24*time.Hour)
			return err
		},
		show: func(c *Config) string { return c.ContainerTimeout.String() }},
	{Name: "IDLE_TIMEOUT", Default: "30m", Help: "how long a finished agent stays warm for follow-up messages",
		apply: func(c *Config, v string) (err error) { c.IdleTimeout, err = durationIn(v, 0, 24*time.Hour); return err },
		show:  func(c *Config) string { return c.IdleTimeout.String() }},
	{Name: "CONTAINER_MEMORY_MB", Default: "2048", Help: "memory limit of an agent container, MiB",
		apply: func(c *Config, v string) (err error) { c.ContainerMemoryMB, err = intIn(v, 64, 1<<16); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.ContainerMemoryMB) }},
	{Name: "CONTAINER_CPUS", Default: "2", Help: "CPU limit of an agent container",
		apply: func(c *Config, v string) (err error) { c.ContainerCPUs, err = floatIn(v, 0.1, 64); return err },
		show:  func(c *Config) string { return strconv.FormatFloat(c.ContainerCPUs, 'f', -1, 64) }},
	{Name: "CONTAINER_PIDS_LIMIT", Default: "512", Help: "process limit of an agent container",
		apply: func(c *Config, v string) (err error) { c.ContainerPidsLimit, err = intIn(v, 16, 1<<16); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.ContainerPidsLimit) }},
	{Name: "PROMPT_MAX_MESSAGES", Default: "50", Help: "most messages in one prompt (newest kept)",
		apply: func(c *Config, v string) (err error) { c.PromptMaxMessages, err = intIn(v, 1, 10000); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.PromptMaxMessages) }},
	{Name: "PROMPT_MAX_BYTES", Default: "32768", Help: "largest prompt in bytes (newest messages kept)",
		apply: func(c *Config, v string) (err error) { c.PromptMaxBytes, err = intIn(v, 1024, 8<<20); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.PromptMaxBytes) }},
	{Name: "MESSAGE_MAX_BYTES", Default: "4096", Help: "longest single message in a prompt; longer ones are cut with a marker",
		apply: func(c *Config, v string) (err error) { c.MessageMaxBytes, err = intIn(v, 256, 8<<20); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.MessageMaxBytes) }},
	{Name: "TASK_MAX_ACTIVE", Default: "20", Help: "most active or paused scheduled tasks a non-main group's agent may have",
		apply: func(c *Config, v string) (err error) { c.TaskMaxActive, err = intIn(v, 1, 10000); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.TaskMaxActive) }},
	{Name: "TASK_MAX_ACTIVE_MAIN", Default: "200", Help: "the same per group, for tasks the main group's agent schedules",
		apply: func(c *Config, v string) (err error) { c.TaskMaxActiveMain, err = intIn(v, 1, 100000); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.TaskMaxActiveMain) }},
	{Name: "TASK_MIN_INTERVAL", Default: "5m", Help: "shortest interval, or cron frequency, a non-main group's agent may schedule (main: 1m)",
		apply: func(c *Config, v string) (err error) {
			c.TaskMinInterval, err = durationIn(v, time.Minute, 24*time.Hour)
			return err
		},
		show: func(c *Config) string { return c.TaskMinInterval.String() }},
	{Name: "SEND_PER_MINUTE", Default: "20", Help: "messages a minute nanoclaw sends to one WhatsApp chat (replies, send_message and tasks together)",
		apply: func(c *Config, v string) (err error) { c.SendPerMinute, err = intIn(v, 1, 600); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.SendPerMinute) }},
	{Name: "SEND_BURST", Default: "5", Help: "messages nanoclaw may send to one WhatsApp chat at once before SEND_PER_MINUTE paces them",
		apply: func(c *Config, v string) (err error) { c.SendBurst, err = intIn(v, 1, 100); return err },
		show:  func(c *Config) string { return strconv.Itoa(c.SendBurst) }},
	{Name: "TZ", Help: "time zone for schedules (IANA name); default: the host's",
		apply: func(c *Config, v string) (err error) { c.Timezone, err = loadZone(v); return err },
		show:  func(c *Config) string { return c.Timezone.String() }},
	{Name: "NANOCLAW_DB_KEY_FILE", path: true, Help: "database key file; when it exists the database is encrypted (default: CONFIG_DIR/db.key)",
		apply: func(c *Config, v string) (err error) {
			if v == "" {
				c.DBKeyFile = filepath.Join(c.ConfigDir, "db.key")
				return nil
			}
			c.DBKeyFile, err = absPath(v)
			return err
		},
		show: func(c *Config) string { return c.DBKeyFile }},
	{Name: "LOG_LEVEL", Default: "info", Help: "debug, info, warn or error",
		apply: func(c *Config, v string) (err error) { c.LogLevel, err = ParseLevel(v); return err },
		show:  func(c *Config) string { return strings.ToLower(c.LogLevel.String()) }},
}

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

	dir := getenv("NANOCLAW_CONFIG_DIR")
	switch {
	case dir != "":
	case getenv("XDG_CONFIG_HOME") != "":
		dir = filepath.Join(getenv("XDG_CONFIG_HOME"), "nanoclaw")
	default:
		dir = filepath.Join(home, ".config", "nanoclaw")
	}
	var err error
	if c.ConfigDir, err = expandHome(dir, home); err != nil {
		return nil, fmt.Errorf("NANOCLAW_CONFIG_DIR: %w", err)
	}

	fileValues := map[string]string{}
	path := filepath.Join(c.ConfigDir, "config")
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if fileValues, err = ParseEnvFile(path, data); err != nil {
			return nil, err
		}
		c.File = path
		if err := checkFileKeys(path, fileValues); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("read config file: %w", err)
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
	if within(c.ConfigDir, c.Home) {
		// Parts of the data home are mounted into containers; the config dir
		// holds the credentials and the mount allowlist, so it must stay apart.
		return nil, fmt.Errorf("NANOCLAW_CONFIG_DIR %s lies inside NANOCLAW_HOME %s: choose a config dir outside the data home", c.ConfigDir, c.Home)
	}
	return c, nil
}

// checkFileKeys rejects names the file may not set: unknown ones (a typo would
// otherwise be silently ignored) and NANOCLAW_CONFIG_DIR, which locates the file.
func checkFileKeys(path string, values map[string]string) error {
	known := make(map[string]bool, len(settings))
	for _, s := range settings {
		known[s.Name] = true
	}
	for k := range values {
		if k == "NANOCLAW_CONFIG_DIR" {
			return fmt.Errorf("%s: NANOCLAW_CONFIG_DIR cannot be set in the config file it locates; set it in the environment", path)
		}
		if !known[k] {
			return fmt.Errorf("%s: unknown setting %s (run `nanoclaw run --print-config` to see the known ones)", path, k)
		}
	}
	return nil
}

// Print writes the effective configuration as KEY=VALUE lines, secrets masked,
// each preceded by a comment saying where its value came from.
func (c *Config) Print(w io.Writer) {
	c.printLine(w, "NANOCLAW_CONFIG_DIR", c.ConfigDir, "")
	file := c.File
	if file == "" {
		file = filepath.Join(c.ConfigDir, "config") + " (not present)"
	}
	fmt.Fprintf(w, "# config file: %s\n", file)
	for _, s := range settings {
		c.printLine(w, s.Name, s.show(c), c.Sources[s.Name])
	}
}

func (c *Config) printLine(w io.Writer, name, value, src string) {
	if src != "" {
		fmt.Fprintf(w, "# %s from %s\n", name, src)
	}
	fmt.Fprintf(w, "%s=%s\n", name, value)
}

// Help lists every setting with its default, for --help texts and docs.
func Help() string {
	var b strings.Builder
	for _, s := range settings {
		def := s.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(&b, "  %-26s %s (default %s)\n", s.Name, s.Help, def)
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

// assistantName allows letters, digits, spaces and a few joiners: the name is
// shown in replies and matched in triggers, so nothing markup-like.
var assistantName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,49}$`)

func validName(v string) error {
	if !assistantName.MatchString(v) {
		return fmt.Errorf("%q: 1-50 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit", v)
	}
	return nil
}

func validSecret(v string) error {
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return errors.New("contains a space or control character (paste error?)")
		}
	}
	return nil
}

func parseUpstream(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q: want an http(s) URL such as %s", v, defaultUpstream)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: no user info, query or fragment allowed", v)
	}
	return u, nil
}

// validImage holds the image to runtime's narrow rule: the value becomes a
// command-line argument and must never start with '-'.
func validImage(v string) error {
	if runtime.ValidateImage(v) != nil {
		return fmt.Errorf("%q is not an image reference like localhost/nanoclaw-agent:latest", v)
	}
	return nil
}

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

func floatIn(v string, lo, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	if !(f >= lo && f <= hi) {
		return 0, fmt.Errorf("%v is outside %v..%v", f, lo, hi)
	}
	return f, nil
}

// durationIn accepts a Go duration ("5m", "90s") or, as the original's
// settings did, a plain number of milliseconds.
func durationIn(v string, lo, hi time.Duration) (time.Duration, error) {
	var d time.Duration
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms < 0 || ms > int64(hi/time.Millisecond) {
			return 0, fmt.Errorf("%d ms is outside %v..%v", ms, lo, hi)
		}
		d = time.Duration(ms) * time.Millisecond
	} else if d, err = time.ParseDuration(v); err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 5m or 90s (or milliseconds)", v)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%v is outside %v..%v", d, lo, hi)
	}
	return d, nil
}

// loadZone resolves a time zone name; empty means the host's own zone.
func loadZone(v string) (*time.Location, error) {
	if v == "" {
		v = hostZone()
	}
	v = strings.TrimPrefix(v, ":") // POSIX allows TZ=:Area/City
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/Berlin)", v)
	}
	return loc, nil
}

// besideExecutable is name in the directory of the running binary (make
// build puts nanoclaw and nanoclaw-agent side by side in bin/).
func besideExecutable(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return name
	}
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	return filepath.Join(filepath.Dir(exe), name)
}

// hostZone finds the IANA name of the host's zone: scheduled tasks store it,
// so "Local" will not do.
func hostZone() string {
	if b, err := os.ReadFile("/etc/timezone"); err == nil {
		if z := strings.TrimSpace(string(b)); z != "" {
			return z
		}
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, z, ok := strings.Cut(target, "zoneinfo/"); ok {
			return z
		}
	}
	return "UTC"
}
