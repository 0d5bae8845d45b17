package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// setupHome is an empty home for `nanoclaw setup` with the test image, the
// agent binary and the fake upstream; run runs setup in it.
type setupHome struct {
	env  []string
	home string
}

func newSetupHome(t *testing.T, upstream string) *setupHome {
	t.Helper()
	env, home := homeEnv(t)
	env = slices.Concat(env, []string{"NANOCLAW_IMAGE=" + testenv.AgentImage,
		"NANOCLAW_AGENT_BINARY=" + testenv.AgentBinary(t), "ANTHROPIC_BASE_URL=" + upstream})
	return &setupHome{env: env, home: home}
}

func (h *setupHome) run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"setup"}, args...)...)
	cmd.Env = h.env
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}

func (h *setupHome) keyFile() string { return filepath.Join(h.home, ".config", "nanoclaw", "db.key") }

func (h *setupHome) dbPath() string {
	return filepath.Join(h.home, ".nanoclaw", "store", "nanoclaw.db")
}

var hexKeyLine = regexp.MustCompile(`^[0-9a-f]{64}\n?$`)

// setup --yes --encrypt on an empty home makes a private 64-hex-digit
// db.key with a loud warning to keep a copy, and the daemon the proof
// starts runs on the encrypted database. Run again, the key is kept as it
// is. On a home whose database already exists unencrypted, --encrypt is
// skipped and no key is made. (Subtest names are short: the gateway socket
// path under t.TempDir must fit a unix socket.)
func TestSetupEncryptNewHomeOnly(t *testing.T) {
	bin := testenv.Runtime(t, "podman")
	testenv.Image(t, bin, testenv.AgentImage)
	fake := fakeapi.New()
	defer fake.Close()
	const credential = "sk-ant-encrypt-test-key"
	fake.RequireCredential(credential)
	credFile := filepath.Join(t.TempDir(), "credential")
	if err := os.WriteFile(credFile, []byte(credential+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--yes", "--runtime", "podman", "--encrypt", "--credential-file", credFile, "--skip-whatsapp", "--no-service"}

	t.Run("fresh", func(t *testing.T) {
		h := newSetupHome(t, fake.URL())
		fake.Script(fakeapi.Text("Encrypted and here."))
		code, out := h.run(t, args...)
		if code != 0 {
			t.Fatalf("setup --encrypt: exit %d\n%s", code, out)
		}
		for _, want := range []string{"✓ 3. encryption at rest: created " + h.keyFile() + " (mode 600). KEEP A COPY",
			"✓ 7. proof: reply received: Andy: Encrypted and here."} {
			if !strings.Contains(out, want) {
				t.Errorf("setup output lacks %q:\n%s", want, out)
			}
		}
		info, err := os.Stat(h.keyFile())
		if err != nil {
			t.Fatal(err)
		}
		key, _ := os.ReadFile(h.keyFile())
		if info.Mode().Perm() != 0o600 || !hexKeyLine.Match(key) {
			t.Errorf("db.key: mode %04o, content of %d bytes (64 hex digits: %v); want 0600 and 64 hex digits",
				info.Mode().Perm(), len(key), hexKeyLine.Match(key))
		}
		if strings.Contains(out, strings.TrimSpace(string(key))) {
			t.Error("setup printed the database key")
		}

		// The database the proof's daemon used is encrypted with that key,
		// and cannot be read without it.
		cfg, err := config.Load(envGetenv(h.env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DBPath() != h.dbPath() {
			t.Fatalf("database at %s, want %s", cfg.DBPath(), h.dbPath())
		}
		if _, err := os.Stat(h.dbPath()); err != nil {
			t.Fatalf("the proof's daemon made no database: %v", err)
		}
		st, err := daemon.OpenStore(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("open the database with db.key: %v", err)
		}
		encrypted := st.Encrypted()
		st.Close()
		if !encrypted {
			t.Error("the database setup made is not encrypted")
		}
		if st, err := store.Open(context.Background(), h.dbPath(), store.Options{Logger: slog.New(slog.DiscardHandler)}); err == nil {
			st.Close()
			t.Error("the database opens without its key")
		}

		fake.Script(fakeapi.Text("Still here."))
		code, out = h.run(t, args...)
		if code != 0 || !strings.Contains(out, "✓ 3. encryption at rest: the database key is "+h.keyFile()) ||
			strings.Contains(out, "created "+h.keyFile()) || !strings.Contains(out, "✓ 7. proof: reply received") {
			t.Errorf("setup --encrypt again: exit %d; want the existing key named and the proof:\n%s", code, out)
		}
		if again, _ := os.ReadFile(h.keyFile()); string(again) != string(key) {
			t.Error("setup --encrypt again replaced db.key")
		}
	})

	t.Run("plain", func(t *testing.T) {
		h := newSetupHome(t, fake.URL())
		plain := slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--encrypt" })
		code, out := h.run(t, plain...)
		if code != 0 || !strings.Contains(out, "– 3. encryption at rest: not encrypted") {
			t.Fatalf("setup without --encrypt: exit %d\n%s", code, out)
		}
		if _, err := os.Stat(h.dbPath()); err != nil {
			t.Fatalf("the first setup made no database: %v", err)
		}

		code, out = h.run(t, args...)
		if code != 0 || !strings.Contains(out, "– 3. encryption at rest: the database exists unencrypted; encryption applies to a new data home only") {
			t.Errorf("setup --encrypt on an unencrypted database: exit %d; want step 3 skipped:\n%s", code, out)
		}
		if _, err := os.Stat(h.keyFile()); err == nil {
			t.Error("setup --encrypt made db.key for a database that exists unencrypted")
		}
		st, err := store.Open(context.Background(), h.dbPath(), store.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("the database no longer opens without a key: %v", err)
		}
		st.Close()
	})
}
