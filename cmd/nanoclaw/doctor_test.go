package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/config"
)

// doctor's service check: no service manager is no failure; where systemd
// runs, a missing service and a stopped one each fail with their fix.
func TestDoctorServiceCheck(t *testing.T) {
	m := &Main{Getenv: os.Getenv}
	base := t.TempDir()
	cfg := &config.Config{Home: filepath.Join(base, "data"), ConfigDir: filepath.Join(base, "conf")}
	fakeServiceHost(t, false, func([]string) (string, int) { return "", 0 })
	if c := m.serviceCheck(context.Background(), cfg); !c.OK || !strings.Contains(c.Detail, "systemd is not running") {
		t.Errorf("without systemd: %+v", c)
	}
	running := 3
	root, _ := fakeServiceHost(t, true, func(argv []string) (string, int) { return "Active: …", running })
	if c := m.serviceCheck(context.Background(), cfg); c.OK || c.Fix != "nanoclaw service install" {
		t.Errorf("not installed: %+v", c)
	}
	unit := filepath.Join(root, "home/alice/.config/systemd/user/nanoclaw.service")
	os.MkdirAll(filepath.Dir(unit), 0o755)
	os.WriteFile(unit, []byte("# Written by nanoclaw service install\n"), 0o644)
	if c := m.serviceCheck(context.Background(), cfg); c.OK || !strings.Contains(c.Fix, "nanoclaw service start") {
		t.Errorf("installed, stopped: %+v", c)
	}
	running = 0
	if c := m.serviceCheck(context.Background(), cfg); !c.OK || !strings.Contains(c.Detail, "running") {
		t.Errorf("installed, running: %+v", c)
	}
}
