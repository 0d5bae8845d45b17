package main

import (
	"context"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

// envGetenv looks a name up in env as a process would see it (the last
// NAME=value wins), for config.Load.
func envGetenv(env []string) func(string) string {
	return func(name string) string {
		v := ""
		for _, kv := range env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == name {
				v = val
			}
		}
		return v
	}
}

// failedCheck finds the line doctor printed for the failed check name whose
// detail contains detail, and returns the fix on the line under it.
func failedCheck(out, name, detail string) (fix string, found bool) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "✗ "+name+": ") || !strings.Contains(l, detail) || i+1 == len(lines) {
			continue
		}
		if f, ok := strings.CutPrefix(strings.TrimSpace(lines[i+1]), "fix: "); ok {
			return f, true
		}
	}
	return "", false
}

// A private installation: the config directory (0700) with the config file
// (0600, holding a credential the fake upstream takes) and the data home
// (0700). No daemon runs, so "daemon" fails; the checks under test are
// about files only.
func privateInstallation(t *testing.T, upstream string) (env []string, configDir, dataHome string) {
	t.Helper()
	env, home := homeEnv(t)
	env = slices.Concat(env, []string{"ANTHROPIC_BASE_URL=" + upstream})
	configDir = filepath.Join(home, ".config", "nanoclaw")
	dataHome = filepath.Join(home, ".nanoclaw")
	for _, dir := range []string{configDir, dataHome} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(configDir, "config"), []byte("ANTHROPIC_API_KEY=sk-ant-good\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return env, configDir, dataHome
}

// writeDBKey writes a 64-hex-digit database key made of b into file, mode 0600.
func writeDBKey(t *testing.T, file string, b byte) {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = b + byte(i)
	}
	if err := os.WriteFile(file, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// doctor fails its "config files" check with the exact chmod for each
// secret file or directory other users could reach, and its "database"
// check when db.key is not the key the database was encrypted with; exit 1
// each time.
func TestDoctorNamesOpenSecretsAndAWrongDatabaseKey(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	fake.RequireCredential("sk-ant-good")

	t.Run("private", func(t *testing.T) {
		env, configDir, _ := privateInstallation(t, fake.URL())
		writeDBKey(t, filepath.Join(configDir, "db.key"), 1)
		_, out := doctorRun(t, env)
		if !strings.Contains(out, "✓ config files: "+configDir+" and the files in it are private") {
			t.Errorf("a private installation: want ✓ config files:\n%s", out)
		}
		if _, found := failedCheck(out, "credential", ""); found {
			t.Errorf("the credential should pass against the fake upstream:\n%s", out)
		}
	})

	for _, tc := range []struct {
		name   string
		breaks func(t *testing.T, configDir string) (detail, fix string)
	}{
		{name: "config file readable by others", breaks: func(t *testing.T, configDir string) (string, string) {
			f := filepath.Join(configDir, "config")
			if err := os.Chmod(f, 0o644); err != nil {
				t.Fatal(err)
			}
			return f + " is readable by other users (mode 0644)", "chmod 600 " + f
		}},
		{name: "db.key readable by others", breaks: func(t *testing.T, configDir string) (string, string) {
			f := filepath.Join(configDir, "db.key")
			writeDBKey(t, f, 1)
			if err := os.Chmod(f, 0o644); err != nil {
				t.Fatal(err)
			}
			return f + " is readable by other users (mode 0644)", "chmod 600 " + f
		}},
		{name: "config directory writable by others", breaks: func(t *testing.T, configDir string) (string, string) {
			if err := os.Chmod(configDir, 0o777); err != nil {
				t.Fatal(err)
			}
			return configDir + " is writable by other users (mode 0777)", "chmod 700 " + configDir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, configDir, _ := privateInstallation(t, fake.URL())
			detail, wantFix := tc.breaks(t, configDir)
			code, out := doctorRun(t, env)
			fix, found := failedCheck(out, "config files", detail)
			if code != 1 || !found || fix != wantFix {
				t.Errorf("exit %d, fix %q (found %v); want exit 1, \"✗ config files: %s\" and fix %q:\n%s", code, fix, found, detail, wantFix, out)
			}
			if n := strings.Count(out, "✗ config files:"); n != 1 {
				t.Errorf("%d config files checks failed; want 1:\n%s", n, out)
			}
		})
	}

	t.Run("wrong database key", func(t *testing.T) {
		env, configDir, _ := privateInstallation(t, fake.URL())
		keyFile := filepath.Join(configDir, "db.key")
		writeDBKey(t, keyFile, 1)
		// The database, encrypted with that key, as the daemon makes it.
		cfg, err := config.Load(envGetenv(env))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(cfg.StoreDir(), 0o700); err != nil {
			t.Fatal(err)
		}
		st, err := daemon.OpenStore(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		encrypted := st.Encrypted()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if !encrypted {
			t.Fatal("the store made with db.key is not encrypted")
		}
		_, out := doctorRun(t, env)
		if !strings.Contains(out, "✓ database: "+cfg.DBPath()+" opens with its key (encrypted)") {
			t.Fatalf("with the right key: want ✓ database, encrypted:\n%s", out)
		}

		writeDBKey(t, keyFile, 101) // another valid key
		code, out := doctorRun(t, env)
		fix, found := failedCheck(out, "database", "")
		if code != 1 || !found || !strings.Contains(fix, "restore db.key") {
			t.Errorf("exit %d, fix %q (found %v); want exit 1, \"✗ database:\" and a fix to restore db.key:\n%s", code, fix, found, out)
		}
		if _, found := failedCheck(out, "config files", ""); found {
			t.Errorf("the key file is private; config files should pass:\n%s", out)
		}
	})
}
