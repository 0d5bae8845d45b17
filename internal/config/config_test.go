package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

func TestParseEnvFileKeepsValuesLiterally(t *testing.T) {
	file := strings.Join([]string{
		"# a comment",
		"   # an indented comment",
		"",
		"PLAIN=value",
		"SPACES =  two words here  ",
		`DQ="quoted value"`,
		`SQ='single $(quoted)'`,
		`INNER=a"b'c`,
		`HALF="unterminated`,
		"HASH=abc # not a comment",
		"EQUALS=a=b==c",
		"SUBST=$(rm -rf /)",
		"BACKTICK=`id`",
		"DOLLAR=$HOME/${USER}",
		`BACKSLASH=a\nb\"`,
		"export EXPORTED=yes",
		"EMPTY=",
		"CRLF=win\r",
	}, "\n")
	got, err := parseEnvFile("test.env", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"PLAIN":     "value",
		"SPACES":    "two words here",
		"DQ":        "quoted value",
		"SQ":        "single $(quoted)",
		"INNER":     `a"b'c`,
		"HALF":      `"unterminated`,
		"HASH":      "abc # not a comment",
		"EQUALS":    "a=b==c",
		"SUBST":     "$(rm -rf /)",
		"BACKTICK":  "`id`",
		"DOLLAR":    "$HOME/${USER}",
		"BACKSLASH": `a\nb\"`,
		"EXPORTED":  "yes",
		"EMPTY":     "",
		"CRLF":      "win",
	}
	if len(got) != len(want) {
		t.Errorf("got %d values, want %d: %q", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestParseEnvFileErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"no equals", "A=1\nsk-ant-secret-pasted-alone\n", "cfg:2: expected KEY=VALUE"},
		{"empty key", "=value\n", "cfg:1: invalid setting name"},
		{"bad key", "A=1\n\n1ABC=2\n", "cfg:3: invalid setting name \"1ABC\""},
		{"key with space", "MY KEY=2\n", "cfg:1: invalid setting name"},
		{"key with dash", "MY-KEY=2\n", "cfg:1: invalid setting name"},
		{"duplicate", "A=1\nB=2\nA=3\n", "cfg:3: A is already set on line 1"},
		{"nul", "A=x\x00y\n", "cfg:1: line contains a NUL byte"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseEnvFile("cfg", []byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sk-ant") {
				t.Errorf("error echoes the malformed line, which may be a secret: %v", err)
			}
		})
	}
}

// env builds a getenv from pairs, with HOME pointing at a temp dir.
func env(t *testing.T, pairs ...string) (func(string) string, string) {
	t.Helper()
	home := t.TempDir()
	m := map[string]string{"HOME": home}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) string { return m[k] }, home
}

func writeConfig(t *testing.T, home, content string, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(home, ".config", "nanoclaw")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	getenv, home := env(t, "TZ", "Europe/Berlin")
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"home", c.Home, filepath.Join(home, ".nanoclaw")},
		{"config dir", c.ConfigDir, filepath.Join(home, ".config", "nanoclaw")},
		{"name", c.AssistantName, "Andy"},
		{"trigger", c.Trigger(), "@Andy"},
		{"upstream", c.UpstreamURL.String(), "https://api.anthropic.com"},
		{"runtime", c.Runtime, sandbox.Auto},
		{"image", c.Image, "localhost/nanoclaw-agent:latest"},
		{"browser image", c.BrowserImage, "localhost/nanoclaw-agent-browser:latest"},
		{"max containers", c.MaxConcurrentContainers, 3},
		{"timeout", c.ContainerTimeout, 5 * time.Minute},
		{"idle", c.IdleTimeout, 30 * time.Minute},
		{"egress ask", c.EgressAskTimeout, 2 * time.Minute},
		{"task cap", c.TaskMaxActive, 20},
		{"main task cap", c.TaskMaxActiveMain, 200},
		{"task interval", c.TaskMinInterval, 5 * time.Minute},
		{"tz", c.Timezone.String(), "Europe/Berlin"},
		{"db key", c.DBKeyFile, filepath.Join(home, ".config", "nanoclaw", "db.key")},
		{"db path", c.DBPath(), filepath.Join(home, ".nanoclaw", "store", "nanoclaw.db")},
		{"allowlist", c.AllowlistPath(), filepath.Join(home, ".config", "nanoclaw", "mount-allowlist.json")},
		{"api key", c.APIKey, Secret("")},
		{"source", c.Sources["ASSISTANT_NAME"], "default"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadPrecedenceEnvOverFileOverDefault(t *testing.T) {
	getenv, home := env(t, "MAX_CONCURRENT_CONTAINERS", "7", "TZ", "UTC")
	path := writeConfig(t, home, "MAX_CONCURRENT_CONTAINERS=5\nASSISTANT_NAME=\"Jarvis\"\nCONTAINER_TIMEOUT=300000\n", 0o600)
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConcurrentContainers != 7 || c.Sources["MAX_CONCURRENT_CONTAINERS"] != "environment" {
		t.Errorf("env should win: got %d from %s", c.MaxConcurrentContainers, c.Sources["MAX_CONCURRENT_CONTAINERS"])
	}
	if c.AssistantName != "Jarvis" || c.Sources["ASSISTANT_NAME"] != path {
		t.Errorf("file should beat default: got %q from %s", c.AssistantName, c.Sources["ASSISTANT_NAME"])
	}
	if c.ContainerTimeout != 5*time.Minute {
		t.Errorf("milliseconds: got %v, want 5m", c.ContainerTimeout)
	}
	if c.File != path {
		t.Errorf("File = %q, want %q", c.File, path)
	}
}

func TestLoadRejectsHostileValues(t *testing.T) {
	cases := []struct {
		key, value, want string
	}{
		{"ASSISTANT_NAME", "$(reboot)", "ASSISTANT_NAME (from environment)"},
		{"ASSISTANT_NAME", "<b>Andy</b>", "ASSISTANT_NAME"},
		{"ASSISTANT_NAME", "-rf", "ASSISTANT_NAME"},
		{"ASSISTANT_NAME", " Andy", "ASSISTANT_NAME"},
		{"ASSISTANT_NAME", "An\x1b[2Jdy", "ASSISTANT_NAME"},
		{"ASSISTANT_NAME", "Andy\xff", "ASSISTANT_NAME"},
		{"ASSISTANT_NAME", "Andy\u200b", "ASSISTANT_NAME"},
		{"ASSISTANT_NAME", strings.Repeat("é", 51), "ASSISTANT_NAME"},
		{"ANTHROPIC_API_KEY", "sk ant", "space or control character"},
		{"ANTHROPIC_BASE_URL", "file:///etc/passwd", "want an http(s) URL"},
		{"ANTHROPIC_BASE_URL", "https://user:pw@example.com", "no user info"},
		{"NANOCLAW_RUNTIME", "lxc", "use auto, docker, podman or container"},
		{"NANOCLAW_IMAGE", "--privileged", "not an image reference"},
		{"NANOCLAW_IMAGE", "img;rm -rf /", "not an image reference"},
		{"NANOCLAW_BROWSER_IMAGE", "--privileged", "NANOCLAW_BROWSER_IMAGE (from environment)"},
		{"NANOCLAW_BROWSER_IMAGE", "Browser Image", "not an image reference"},
		{"MAX_CONCURRENT_CONTAINERS", "0", "outside 1..64"},
		{"MAX_CONCURRENT_CONTAINERS", "3; echo", "not a whole number"},
		{"CONTAINER_TIMEOUT", "1s", "outside"},
		{"CONTAINER_TIMEOUT", "forever", "not a duration"},
		{"IDLE_TIMEOUT", "-5m", "outside"},
		{"EGRESS_ASK_TIMEOUT", "0", "outside"},
		{"EGRESS_ASK_TIMEOUT", "2h", "outside"},
		{"CONTAINER_CPUS", "NaN", "outside"},
		{"TASK_MAX_ACTIVE", "0", "outside 1..10000"},
		{"TASK_MIN_INTERVAL", "30s", "outside"},
		{"TZ", "Mars/Olympus", "unknown time zone"},
		{"TZ", "../../etc/passwd", "unknown time zone"},
		{"LOG_LEVEL", "loud", "unknown log level"},
		{"NANOCLAW_HOME", "relative/dir", "not an absolute path"},
		{"NANOCLAW_HOME", "~other/x", "only ~/"},
		{"NANOCLAW_DB_KEY_FILE", "key", "not an absolute path"},
	}
	for _, tc := range cases {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			getenv, _ := env(t, tc.key, tc.value)
			_, err := Load(getenv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadReportsAllErrorsAtOnce(t *testing.T) {
	getenv, _ := env(t, "NANOCLAW_RUNTIME", "lxc", "LOG_LEVEL", "loud")
	_, err := Load(getenv)
	if err == nil || !strings.Contains(err.Error(), "NANOCLAW_RUNTIME") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("want both errors, got %v", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"unknown key", "ASISTANT_NAME=Bob\n", "config: unknown setting ASISTANT_NAME"},
		{"config dir in file", "NANOCLAW_CONFIG_DIR=/tmp\n", "cannot be set in the config file"},
		{"malformed", "ASSISTANT_NAME=Bob\nnonsense\n", "config:2: expected KEY=VALUE"},
		{"invalid value names file", "MAX_CONCURRENT_CONTAINERS=lots\n", "MAX_CONCURRENT_CONTAINERS (from "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv, home := env(t)
			writeConfig(t, home, tc.content, 0o600)
			_, err := Load(getenv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadKeepsQuotedSecretLiterally(t *testing.T) {
	getenv, home := env(t)
	writeConfig(t, home, "ANTHROPIC_API_KEY='sk-ant-$(whoami)#x'\n", 0o600)
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != "sk-ant-$(whoami)#x" {
		t.Errorf("key = %q", c.APIKey.Reveal())
	}
	if len(c.Warnings) != 0 {
		t.Errorf("a 0600 file should not warn: %v", c.Warnings)
	}
}

func TestLoadWarnsAboutReadableSecrets(t *testing.T) {
	getenv, home := env(t)
	writeConfig(t, home, "ANTHROPIC_API_KEY=sk-ant-x\n", 0o644)
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "chmod 600") {
		t.Errorf("warnings = %q, want one telling to chmod 600", c.Warnings)
	}
}

func TestConfigDirInsideHomeIsRefused(t *testing.T) {
	getenv, home := env(t, "NANOCLAW_HOME", "/srv/nc", "NANOCLAW_CONFIG_DIR", "/srv/nc/conf")
	_ = home
	_, err := Load(getenv)
	if err == nil || !strings.Contains(err.Error(), "inside NANOCLAW_HOME") {
		t.Fatalf("error = %v", err)
	}
}

func TestXDGConfigHome(t *testing.T) {
	getenv, _ := env(t, "XDG_CONFIG_HOME", "/xdg")
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.ConfigDir != "/xdg/nanoclaw" {
		t.Errorf("ConfigDir = %q", c.ConfigDir)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	const key = "sk-ant-api03-VERYSECRET"
	const token = "sk-ant-oat01-ALSOSECRET"
	getenv, _ := env(t, "ANTHROPIC_API_KEY", key, "CLAUDE_CODE_OAUTH_TOKEN", token)
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Print(&out)
	fmt.Fprintf(&out, "%v %s %+v", c.APIKey, c.OAuthToken, *c)
	j, _ := json.Marshal(c)
	out.Write(j)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "key", c.APIKey, "cfg", c)
	slog.New(slog.NewTextHandler(&out, nil)).Info("x", "key", c.APIKey)
	for _, s := range []string{"VERYSECRET", "ALSOSECRET"} {
		if strings.Contains(out.String(), s) {
			t.Fatalf("secret %s leaked:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), "ANTHROPIC_API_KEY=(set, 23 characters)") {
		t.Errorf("print-config should say the key is set:\n%s", out.String())
	}
}

func TestPrintCoversEverySetting(t *testing.T) {
	getenv, _ := env(t)
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Print(&out) // panics on a setting without show
	for _, s := range settings {
		if !strings.Contains(out.String(), "\n"+s.Name+"=") {
			t.Errorf("%s missing from print-config", s.Name)
		}
	}
	// What print-config prints must read back through the same parser.
	if _, err := parseEnvFile("printed", out.Bytes()); err != nil {
		t.Errorf("printed config does not parse: %v", err)
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add("A=1\nB='x y'\n# c\n")
	f.Add("A=\"$(x)\"\nexport B==\n")
	f.Fuzz(func(t *testing.T, s string) {
		values, err := parseEnvFile("fuzz", []byte(s))
		if err != nil {
			return
		}
		for k, v := range values {
			if !envKey.MatchString(k) {
				t.Fatalf("accepted bad key %q", k)
			}
			if strings.ContainsAny(v, "\n\x00") {
				t.Fatalf("value of %s spans lines or holds NUL: %q", k, v)
			}
		}
	})
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"": slog.LevelInfo, "debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "Error": slog.LevelError} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), "unknown log level") {
		t.Errorf("ParseLevel(loud) = %v", err)
	}
}

// An assistant's name may be any letters and digits, in any script, with
// spaces and a few joiners between them.
func TestAssistantNamesAccepted(t *testing.T) {
	for _, name := range []string{"Andy", "Jörg 2", "アンディ", "R2-D2.b_c", "٣ Andy", strings.Repeat("é", 50)} {
		if err := validName(name); err != nil {
			t.Errorf("validName(%q) = %v", name, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"25MB", 25e6}, {"26214400", 26214400}, {"1 MiB", 1 << 20}, {"2GiB", 2 << 30}, {"512kB", 512e3}} {
		if got, err := parseSize(tc.in, 1<<10, 2<<30); err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MB", "25 mb", "-1MB", "3GiB", "1", "9999999999999999999GB", "25MB5"} {
		if got, err := parseSize(bad, 1<<10, 2<<30); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

// A transcription key sent over plain http to another machine is warned
// about; to loopback (a local whisper server) it is not.
func TestTranscribeOverHTTPWarns(t *testing.T) {
	for url, warn := range map[string]bool{"http://192.168.1.5:8000/v1/audio/transcriptions": true,
		"http://127.0.0.1:8000/v1/audio/transcriptions": false, "https://api.openai.com/v1/audio/transcriptions": false} {
		getenv, _ := env(t, "TRANSCRIBE_URL", url, "TRANSCRIBE_API_KEY", "sk-x")
		c, err := Load(getenv)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.ContainsFunc(c.Warnings, func(w string) bool { return strings.Contains(w, "unencrypted") }); got != warn {
			t.Errorf("%s: warned %v, want %v (%q)", url, got, warn, c.Warnings)
		}
	}
}
