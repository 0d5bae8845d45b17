package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

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

// intSetting is a whole number within lo..hi, kept in *field(c).
func intSetting(name, def, help string, lo, hi int, field func(*Config) *int) setting {
	return setting{Name: name, Default: def, Help: help,
		apply: func(c *Config, v string) (err error) {
			*field(c), err = numberIn(v, lo, hi, strconv.Atoi, "a whole number")
			return err
		},
		show: func(c *Config) string { return strconv.Itoa(*field(c)) }}
}

// durationSetting is a duration within lo..hi, kept in *field(c).
func durationSetting(name, def, help string, lo, hi time.Duration, field func(*Config) *time.Duration) setting {
	return setting{Name: name, Default: def, Help: help,
		apply: func(c *Config, v string) (err error) { *field(c), err = durationIn(v, lo, hi); return err },
		show:  func(c *Config) string { return field(c).String() }}
}

// pathSetting is an absolute path kept in *field(c); empty means orElse(c).
func pathSetting(name, help string, field func(*Config) *string, orElse func(*Config) string) setting {
	return setting{Name: name, Help: help, path: true,
		apply: func(c *Config, v string) (err error) {
			if v == "" {
				*field(c) = orElse(c)
				return nil
			}
			*field(c), err = absPath(v)
			return err
		},
		show: func(c *Config) string { return *field(c) }}
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
		apply: func(c *Config, v string) (err error) { c.Runtime, err = sandbox.ParseKind(v); return err },
		show:  func(c *Config) string { return string(c.Runtime) }},
	{Name: "NANOCLAW_IMAGE", Default: "localhost/nanoclaw-agent:latest", Help: "agent container image",
		apply: func(c *Config, v string) error { c.Image = v; return validImage(v) },
		show:  func(c *Config) string { return c.Image }},
	{Name: "NANOCLAW_BROWSER_IMAGE", Default: "localhost/nanoclaw-agent-browser:latest",
		Help:  "agent image with Chromium and agent-browser, for groups with browser=true (nanoclaw image build --browser)",
		apply: func(c *Config, v string) error { c.BrowserImage = v; return validImage(v) },
		show:  func(c *Config) string { return c.BrowserImage }},
	{Name: "MODEL", Help: "the Claude model of groups that choose none (groups set F model=NAME); default: Claude Code's own",
		apply: func(c *Config, v string) error {
			c.Model = v
			if v == "" {
				return nil
			}
			return ipc.ValidateModel(v)
		},
		show: func(c *Config) string { return c.Model }},
	pathSetting("NANOCLAW_AGENT_BINARY", "the static nanoclaw-agent mounted into containers (default: beside the nanoclaw binary)",
		func(c *Config) *string { return &c.AgentBinary }, func(*Config) string { return besideExecutable("nanoclaw-agent") }),
	intSetting("MAX_CONCURRENT_CONTAINERS", "3", "agent containers running at once, all groups together", 1, 64,
		func(c *Config) *int { return &c.MaxConcurrentContainers }),
	durationSetting("CONTAINER_TIMEOUT", "5m", "longest agent run (Go duration, or milliseconds)", 10*time.Second, 24*time.Hour,
		func(c *Config) *time.Duration { return &c.ContainerTimeout }),
	durationSetting("IDLE_TIMEOUT", "30m", "how long a finished agent stays warm for follow-up messages", 0, 24*time.Hour,
		func(c *Config) *time.Duration { return &c.IdleTimeout }),
	durationSetting("EGRESS_ASK_TIMEOUT", "2m", "how long a connection of a group in egress mode ask waits for the owner's answer in main; no answer is deny",
		time.Second, time.Hour, func(c *Config) *time.Duration { return &c.EgressAskTimeout }),
	intSetting("CONTAINER_MEMORY_MB", "2048", "memory limit of an agent container, MiB", 64, 1<<16,
		func(c *Config) *int { return &c.ContainerMemoryMB }),
	{Name: "CONTAINER_CPUS", Default: "2", Help: "CPU limit of an agent container",
		apply: func(c *Config, v string) (err error) {
			c.ContainerCPUs, err = numberIn(v, 0.1, 64, parseFloat, "a number")
			return err
		},
		show: func(c *Config) string { return strconv.FormatFloat(c.ContainerCPUs, 'f', -1, 64) }},
	intSetting("CONTAINER_PIDS_LIMIT", "512", "process limit of an agent container", 16, 1<<16,
		func(c *Config) *int { return &c.ContainerPidsLimit }),
	intSetting("PROMPT_MAX_MESSAGES", "50", "most messages in one prompt (newest kept)", 1, 10000,
		func(c *Config) *int { return &c.PromptMaxMessages }),
	intSetting("PROMPT_MAX_BYTES", "32768", "largest prompt in bytes (newest messages kept)", 1024, 8<<20,
		func(c *Config) *int { return &c.PromptMaxBytes }),
	intSetting("MESSAGE_MAX_BYTES", "4096", "longest single message in a prompt; longer ones are cut with a marker", 256, 8<<20,
		func(c *Config) *int { return &c.MessageMaxBytes }),
	intSetting("TASK_MAX_ACTIVE", "20", "most active or paused scheduled tasks a non-main group's agent may have (it keeps at most ten times as many, finished ones included)", 1, 10000,
		func(c *Config) *int { return &c.TaskMaxActive }),
	intSetting("TASK_MAX_ACTIVE_MAIN", "200", "the same per group, for tasks the main group's agent schedules", 1, 100000,
		func(c *Config) *int { return &c.TaskMaxActiveMain }),
	durationSetting("TASK_MIN_INTERVAL", "5m", "shortest interval, or cron frequency, a non-main group's agent may schedule, and least time between its once tasks (main: 1m)", time.Minute, 24*time.Hour,
		func(c *Config) *time.Duration { return &c.TaskMinInterval }),
	intSetting("SEND_PER_MINUTE", "20", "messages a minute nanoclaw sends to one WhatsApp chat (replies, send_message and tasks together)", 1, 600,
		func(c *Config) *int { return &c.SendPerMinute }),
	intSetting("SEND_BURST", "5", "messages nanoclaw may send to one WhatsApp chat at once before SEND_PER_MINUTE paces them", 1, 100,
		func(c *Config) *int { return &c.SendBurst }),
	{Name: "MEDIA_MAX_BYTES", Default: "25MB", Help: "largest photo, voice note or document fetched into a group's folder (larger ones are noted, not fetched), and largest file an agent may send: bytes, or with kB, MB, GB, KiB, MiB or GiB",
		apply: func(c *Config, v string) (err error) { c.MediaMaxBytes, err = parseSize(v, 1<<10, 2<<30); return err },
		show:  func(c *Config) string { return strconv.FormatInt(c.MediaMaxBytes, 10) }},
	durationSetting("MEDIA_RETENTION", "720h", "how long received media stay in a group's media/ folder", time.Hour, 10*365*24*time.Hour,
		func(c *Config) *time.Duration { return &c.MediaRetention }),
	{Name: "TRANSCRIBE_URL", Help: "OpenAI-compatible transcription endpoint for voice notes (e.g. https://api.openai.com/v1/audio/transcriptions); empty: voice notes are not transcribed",
		apply: func(c *Config, v string) (err error) {
			if v != "" {
				c.TranscribeURL, err = parseEndpoint(v)
			}
			return err
		},
		show: func(c *Config) string {
			if c.TranscribeURL == nil {
				return ""
			}
			return c.TranscribeURL.String()
		}},
	{Name: "TRANSCRIBE_API_KEY", Secret: true, Help: "key of the transcription endpoint; stays on the host",
		apply: func(c *Config, v string) error { c.TranscribeAPIKey = Secret(v); return validSecret(v) },
		show:  func(c *Config) string { return c.TranscribeAPIKey.String() }},
	{Name: "TRANSCRIBE_MODEL", Default: "whisper-1", Help: "model the transcription endpoint is asked for",
		apply: func(c *Config, v string) error { c.TranscribeModel = v; return validModel(v) },
		show:  func(c *Config) string { return c.TranscribeModel }},
	{Name: "TELEGRAM_API_URL", Default: "https://api.telegram.org", Help: "the Telegram Bot API server (a self-hosted one, e.g. http://127.0.0.1:8081)",
		apply: func(c *Config, v string) (err error) { c.TelegramAPIURL, err = parseUpstream(v); return err },
		show:  func(c *Config) string { return c.TelegramAPIURL.String() }},
	{Name: "TZ", Help: "time zone for schedules (IANA name); default: the host's",
		apply: func(c *Config, v string) (err error) { c.Timezone, err = loadZone(v); return err },
		show:  func(c *Config) string { return c.Timezone.String() }},
	// The total budget of all groups together, which the gateway enforces
	// (each group's own is in its container config).
	pricesSetting(),
	tokenBudgetSetting("BUDGET_DAY_TOKENS", "tokens (input, output and cache) all groups together may use a day (UTC); 0: no cap",
		func(b *gateway.Budget) *int64 { return &b.DayTokens }),
	tokenBudgetSetting("BUDGET_MONTH_TOKENS", "the same a month (UTC)", func(b *gateway.Budget) *int64 { return &b.MonthTokens }),
	usdBudgetSetting("BUDGET_DAY_USD", "dollars (by PRICES) all groups together may spend a day (UTC); 0: no cap",
		func(b *gateway.Budget) *float64 { return &b.DayUSD }),
	usdBudgetSetting("BUDGET_MONTH_USD", "the same a month (UTC)", func(b *gateway.Budget) *float64 { return &b.MonthUSD }),
	pathSetting("NANOCLAW_DB_KEY_FILE", "database key file; when it exists the database is encrypted (default: CONFIG_DIR/db.key)",
		func(c *Config) *string { return &c.DBKeyFile }, func(c *Config) string { return filepath.Join(c.ConfigDir, "db.key") }),
	{Name: "LOG_LEVEL", Default: "info", Help: "debug, info, warn or error",
		apply: func(c *Config, v string) (err error) { c.LogLevel, err = ParseLevel(v); return err },
		show:  func(c *Config) string { return strings.ToLower(c.LogLevel.String()) }},
}

// validName allows 1-50 letters, digits, spaces and a few joiners, starting
// with a letter or digit: the name is shown in replies and matched in
// triggers, so nothing markup-like. (A loop, not a regexp: one of Unicode's
// classes costs each start of nanoclaw milliseconds to compile.)
func validName(v string) error {
	letterOrDigit := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }
	first, _ := utf8.DecodeRuneInString(v)
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > 50 || !letterOrDigit(first) ||
		strings.ContainsFunc(v, func(r rune) bool { return !letterOrDigit(r) && !strings.ContainsRune(" ._-", r) }) {
		return fmt.Errorf("%q: 1-50 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit", v)
	}
	return nil
}

func validSecret(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("contains a space or control character (paste error?)")
	}
	return nil
}

// parseEndpoint is an http(s) URL with a path and perhaps a query, but no
// user info or fragment.
func parseEndpoint(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("%q: want an http(s) URL without user info, like https://api.openai.com/v1/audio/transcriptions", v)
	}
	return u, nil
}

// parseSize reads a size in bytes: a whole number, optionally followed by
// kB, MB, GB (powers of 1000) or KiB, MiB, GiB (of 1024), within lo..hi.
func parseSize(v string, lo, hi int64) (int64, error) {
	digits := strings.TrimRightFunc(v, unicode.IsLetter)
	units := map[string]int64{"": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	unit, ok := units[strings.TrimSpace(v[len(digits):])]
	n, err := strconv.ParseInt(strings.TrimSpace(digits), 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a size such as 25MB or 26214400", v)
	}
	if n > hi/unit || n*unit < lo || n*unit > hi {
		return 0, fmt.Errorf("%q: outside %d..%d bytes", v, lo, hi)
	}
	return n * unit, nil
}

// validModel accepts a model name: 1-100 letters, digits, '.', '_', ':', '/' or '-'.
func validModel(v string) error {
	if v == "" || len(v) > 100 || strings.ContainsFunc(v, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._:/-", r))
	}) {
		return fmt.Errorf("%q: a model name of letters, digits, '.', '_', ':', '/' or '-'", v)
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
	if sandbox.ValidateImage(v) != nil {
		return fmt.Errorf("%q is not an image reference like localhost/nanoclaw-agent:latest", v)
	}
	return nil
}

// numberIn is v read by parse (what it must be, for the error), within lo..hi.
func numberIn[T int | float64](v string, lo, hi T, parse func(string) (T, error), what string) (T, error) {
	n, err := parse(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", v, what)
	}
	if !(n >= lo && n <= hi) {
		return 0, fmt.Errorf("%v is outside %v..%v", n, lo, hi)
	}
	return n, nil
}

func parseFloat(v string) (float64, error) { return strconv.ParseFloat(v, 64) }

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
