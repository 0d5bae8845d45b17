package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// recorder is a Runner that records every argv and answers with reply
// (by default: success, and systemd 252 for systemctl --version).
type recorder struct {
	calls [][]string
	reply func(argv []string) (string, int)
}

func (r *recorder) run(_ context.Context, argv ...string) (string, int, error) {
	r.calls = append(r.calls, argv)
	if r.reply != nil {
		out, code := r.reply(argv)
		return out, code, nil
	}
	if strings.Join(argv, " ") == "systemctl --version" {
		return "systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT\n", 0, nil
	}
	return "", 0, nil
}

// argvs is the recorded calls, one string each, for comparison.
func (r *recorder) argvs() []string {
	var s []string
	for _, c := range r.calls {
		s = append(s, strings.Join(c, " "))
	}
	r.calls = nil
	return s
}

// testHost is a host whose file system is a temporary directory with
// systemd running, and whose programs are recorded.
func testHost(t *testing.T, goos string, uid int) (Host, *recorder) {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(root, "home/alice")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	return Host{GOOS: goos, UID: uid, User: "alice", HomeDir: home, Root: root, Run: r.run}, r
}

func testUnit(h Host) Unit {
	return Unit{Exe: "/usr/local/bin/nanoclaw", HomeDir: h.HomeDir, DataHome: filepath.Join(h.HomeDir, ".nanoclaw"),
		ConfigDir: filepath.Join(h.HomeDir, ".config/nanoclaw"), Path: standardPath, LogsDir: filepath.Join(h.HomeDir, ".nanoclaw/logs")}
}

func TestNewPicksTheServiceManager(t *testing.T) {
	cases := []struct {
		goos string
		uid  int
		kind Kind
		file string // under the host's root, or its home (~)
		err  string
	}{
		{"linux", 0, SystemdSystem, "/etc/systemd/system/nanoclaw.service", ""},
		{"linux", 1000, SystemdUser, "~/.config/systemd/user/nanoclaw.service", ""},
		{"darwin", 501, Launchd, "~/Library/LaunchAgents/com.nanoclaw.plist", ""},
		{"darwin", 0, "", "", "run this as yourself, not as root"},
		{"freebsd", 1000, "", "", "no service manager nanoclaw knows on freebsd"},
	}
	for _, tc := range cases {
		h, _ := testHost(t, tc.goos, tc.uid)
		s, err := New(h)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s uid %d: err %v, want %q", tc.goos, tc.uid, err, tc.err)
			}
			continue
		}
		want := filepath.Join(h.Root, tc.file)
		if rest, ok := strings.CutPrefix(tc.file, "~/"); ok {
			want = filepath.Join(h.HomeDir, rest)
		}
		if err != nil || s.Kind != tc.kind || s.File != want {
			t.Errorf("%s uid %d: %v %q, err %v; want %v %q", tc.goos, tc.uid, s.Kind, s.File, err, tc.kind, want)
		}
	}
}

// Without systemd running (PID 1 is something else, as in a container)
// nothing is written and nothing is run.
func TestNothingWithoutSystemd(t *testing.T) {
	h, rec := testHost(t, "linux", 1000)
	os.RemoveAll(filepath.Join(h.Root, "run"))
	s, _ := New(h)
	ctx := context.Background()
	if _, err := s.Install(ctx, testUnit(h), false, false); err == nil || !strings.Contains(err.Error(), "systemd is not running on this machine") {
		t.Errorf("Install: %v", err)
	}
	if _, err := os.Stat(s.File); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Install wrote %s without systemd: %v", s.File, err)
	}
	for name, f := range map[string]func() error{"Start": func() error { return s.Start(ctx) }, "Stop": func() error { return s.Stop(ctx) },
		"Status": func() error { _, err := s.Status(ctx); return err }, "Uninstall": func() error { _, err := s.Uninstall(ctx, false); return err }} {
		if err := f(); err == nil || !strings.Contains(err.Error(), "systemd is not running") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if calls := rec.argvs(); len(calls) != 0 {
		t.Errorf("ran %q without systemd", calls)
	}
	// The unit can still be looked at.
	if data, err := s.Render(ctx, testUnit(h)); err != nil || !strings.Contains(string(data), "ExecStart=") {
		t.Errorf("Render: %v\n%s", err, data)
	}
}

func TestInstallAndUninstall(t *testing.T) {
	cases := []struct {
		goos string
		uid  int
		// argv sequences: a fresh install, a reinstall over our own file,
		// an install --no-start, and an uninstall.
		install, reinstall, noStart, uninstall []string
	}{
		{"linux", 0,
			[]string{"systemctl --version", "systemctl daemon-reload", "systemctl enable --now nanoclaw.service"},
			[]string{"systemctl --version", "systemctl daemon-reload", "systemctl try-restart nanoclaw.service", "systemctl enable --now nanoclaw.service"},
			[]string{"systemctl --version", "systemctl daemon-reload", "systemctl enable nanoclaw.service"},
			[]string{"systemctl disable --now nanoclaw.service", "systemctl daemon-reload"}},
		{"linux", 1000,
			[]string{"systemctl --version", "systemctl --user daemon-reload", "systemctl --user enable --now nanoclaw.service"},
			[]string{"systemctl --version", "systemctl --user daemon-reload", "systemctl --user try-restart nanoclaw.service", "systemctl --user enable --now nanoclaw.service"},
			[]string{"systemctl --version", "systemctl --user daemon-reload", "systemctl --user enable nanoclaw.service"},
			[]string{"systemctl --user disable --now nanoclaw.service", "systemctl --user daemon-reload"}},
		// The recorder's launchctl print succeeds: the job counts as loaded.
		{"darwin", 501,
			[]string{"launchctl enable gui/501/com.nanoclaw", "launchctl print gui/501/com.nanoclaw", "launchctl bootout gui/501/com.nanoclaw", "launchctl bootstrap gui/501 PLIST"},
			[]string{"launchctl enable gui/501/com.nanoclaw", "launchctl print gui/501/com.nanoclaw", "launchctl bootout gui/501/com.nanoclaw", "launchctl bootstrap gui/501 PLIST"},
			[]string{"launchctl enable gui/501/com.nanoclaw"},
			[]string{"launchctl print gui/501/com.nanoclaw", "launchctl bootout gui/501/com.nanoclaw"}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		h, rec := testHost(t, tc.goos, tc.uid)
		s, _ := New(h)
		u := testUnit(h)
		expand := func(argvs []string) []string {
			var out []string
			for _, a := range argvs {
				out = append(out, strings.ReplaceAll(a, "PLIST", s.File))
			}
			return out
		}
		want, _ := s.Render(ctx, u)
		rec.argvs()

		done, err := s.Install(ctx, u, false, false)
		if err != nil || done.Replaced || !done.Started {
			t.Fatalf("%s: Install = %+v, %v", s.Kind, done, err)
		}
		if got := rec.argvs(); !reflect.DeepEqual(got, expand(tc.install)) {
			t.Errorf("%s: install ran\n%q\nwant\n%q", s.Kind, got, expand(tc.install))
		}
		info, err := os.Stat(s.File)
		if err != nil || info.Mode().Perm() != 0o644 {
			t.Fatalf("%s: the file: %v, %v", s.Kind, info, err)
		}
		if data, _ := os.ReadFile(s.File); string(data) != string(want) {
			t.Errorf("%s: wrote\n%s\nwant what Render returns\n%s", s.Kind, data, want)
		}
		if entries, _ := os.ReadDir(filepath.Dir(s.File)); len(entries) != 1 {
			t.Errorf("%s: the directory holds %v, want only the file (no temporary left)", s.Kind, entries)
		}

		if done, err := s.Install(ctx, u, false, false); err != nil || !done.Replaced {
			t.Errorf("%s: reinstall = %+v, %v", s.Kind, done, err)
		}
		if got := rec.argvs(); !reflect.DeepEqual(got, expand(tc.reinstall)) {
			t.Errorf("%s: reinstall ran\n%q\nwant\n%q", s.Kind, got, expand(tc.reinstall))
		}
		if done, err := s.Install(ctx, u, false, true); err != nil || done.Started {
			t.Errorf("%s: install --no-start = %+v, %v", s.Kind, done, err)
		}
		if got := rec.argvs(); !reflect.DeepEqual(got, expand(tc.noStart)) {
			t.Errorf("%s: install --no-start ran\n%q\nwant\n%q", s.Kind, got, expand(tc.noStart))
		}

		if removed, err := s.Uninstall(ctx, false); err != nil || !removed {
			t.Errorf("%s: Uninstall = %v, %v", s.Kind, removed, err)
		}
		if got := rec.argvs(); !reflect.DeepEqual(got, expand(tc.uninstall)) {
			t.Errorf("%s: uninstall ran\n%q\nwant\n%q", s.Kind, got, expand(tc.uninstall))
		}
		if _, err := os.Stat(s.File); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the file is still there after Uninstall: %v", s.Kind, err)
		}
		if removed, err := s.Uninstall(ctx, false); err != nil || removed {
			t.Errorf("%s: a second Uninstall = %v, %v; want nothing to remove", s.Kind, removed, err)
		}
		if got := rec.argvs(); len(got) != 0 {
			t.Errorf("%s: uninstalling nothing ran %q", s.Kind, got)
		}
	}
}

// A file nanoclaw did not write is neither replaced nor removed, unless
// forced; nothing runs when it is refused.
func TestForeignFileIsKept(t *testing.T) {
	ctx := context.Background()
	for _, goos := range []string{"linux", "darwin"} {
		h, rec := testHost(t, goos, 1000)
		s, _ := New(h)
		mine := "# my own unit, by hand\n[Service]\nExecStart=/usr/bin/mine\n"
		os.MkdirAll(filepath.Dir(s.File), 0o755)
		os.WriteFile(s.File, []byte(mine), 0o600)

		if _, err := s.Install(ctx, testUnit(h), false, false); err == nil || !strings.Contains(err.Error(), "was not written by nanoclaw") || !strings.Contains(err.Error(), "--force") {
			t.Errorf("%s: Install over a foreign file: %v", goos, err)
		}
		if _, err := s.Uninstall(ctx, false); err == nil || !strings.Contains(err.Error(), "was not written by nanoclaw") {
			t.Errorf("%s: Uninstall of a foreign file: %v", goos, err)
		}
		if data, _ := os.ReadFile(s.File); string(data) != mine {
			t.Errorf("%s: the foreign file became %q", goos, data)
		}
		if got := rec.argvs(); len(got) != 0 {
			t.Errorf("%s: a refusal ran %q", goos, got)
		}
		if done, err := s.Install(ctx, testUnit(h), true, true); err != nil || !done.Replaced {
			t.Errorf("%s: Install --force = %+v, %v", goos, done, err)
		}
		if data, _ := os.ReadFile(s.File); !strings.Contains(string(data), marker) {
			t.Errorf("%s: --force did not replace the file: %q", goos, data)
		}
	}
}

func TestStartStopStatus(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		goos              string
		uid               int
		start, stop, stat []string
	}{
		{"linux", 0, []string{"systemctl start nanoclaw.service"}, []string{"systemctl stop nanoclaw.service"}, []string{"systemctl status --no-pager nanoclaw.service"}},
		{"linux", 1000, []string{"systemctl --user start nanoclaw.service"}, []string{"systemctl --user stop nanoclaw.service"}, []string{"systemctl --user status --no-pager nanoclaw.service"}},
		{"darwin", 501, []string{"launchctl print gui/501/com.nanoclaw", "launchctl kickstart gui/501/com.nanoclaw"},
			[]string{"launchctl print gui/501/com.nanoclaw", "launchctl bootout gui/501/com.nanoclaw"}, []string{"launchctl print gui/501/com.nanoclaw"}},
	}
	for _, tc := range cases {
		h, rec := testHost(t, tc.goos, tc.uid)
		s, _ := New(h)
		for name, f := range map[string]func() error{"Start": func() error { return s.Start(ctx) }, "Stop": func() error { return s.Stop(ctx) },
			"Status": func() error { _, err := s.Status(ctx); return err }} {
			if err := f(); err == nil || !strings.Contains(err.Error(), "not installed") || !strings.Contains(err.Error(), "nanoclaw service install") {
				t.Errorf("%s: %s before install: %v", s.Kind, name, err)
			}
		}
		if _, err := s.Install(ctx, testUnit(h), false, true); err != nil {
			t.Fatal(err)
		}
		rec.argvs()
		if err := s.Start(ctx); err != nil {
			t.Errorf("%s: Start: %v", s.Kind, err)
		}
		if got := rec.argvs(); !reflect.DeepEqual(got, tc.start) {
			t.Errorf("%s: start ran %q, want %q", s.Kind, got, tc.start)
		}
		if err := s.Stop(ctx); err != nil {
			t.Errorf("%s: Stop: %v", s.Kind, err)
		}
		if got := rec.argvs(); !reflect.DeepEqual(got, tc.stop) {
			t.Errorf("%s: stop ran %q, want %q", s.Kind, got, tc.stop)
		}
		if _, err := s.Status(ctx); err != nil {
			t.Errorf("%s: Status: %v", s.Kind, err)
		}
		if got := rec.argvs(); !reflect.DeepEqual(got, tc.stat) {
			t.Errorf("%s: status ran %q, want %q", s.Kind, got, tc.stat)
		}
	}
}

func TestStatusReadsTheManagersAnswer(t *testing.T) {
	ctx := context.Background()
	h, rec := testHost(t, "linux", 0)
	s, _ := New(h)
	if _, err := s.Install(ctx, testUnit(h), false, true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		code    int
		out     string
		running bool
		err     string
	}{
		{0, "● nanoclaw.service - nanoclaw\n     Active: active (running)\n", true, ""},
		{3, "○ nanoclaw.service - nanoclaw\n     Active: inactive (dead)\n", false, ""},
		{4, "Unit nanoclaw.service could not be found.\n", false, "systemctl status --no-pager nanoclaw.service failed (exit 4): Unit nanoclaw.service could not be found."},
	}
	for _, tc := range cases {
		rec.reply = func([]string) (string, int) { return tc.out, tc.code }
		st, err := s.Status(ctx)
		if st.Running != tc.running || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("exit %d: %+v, %v", tc.code, st, err)
		}
		if err == nil && st.Report != tc.out {
			t.Errorf("exit %d: report %q, want systemctl's %q", tc.code, st.Report, tc.out)
		}
	}

	h, rec = testHost(t, "darwin", 501)
	s, _ = New(h)
	if _, err := s.Install(ctx, testUnit(h), false, true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code    int
		out     string
		running bool
	}{
		{0, "gui/501/com.nanoclaw = {\n\tstate = running\n", true},
		{0, "gui/501/com.nanoclaw = {\n\tstate = not running\n", false},
		{113, "Could not find service \"com.nanoclaw\" in domain for user gui: 501\n", false},
	} {
		rec.reply = func([]string) (string, int) { return tc.out, tc.code }
		if st, err := s.Status(ctx); err != nil || st.Running != tc.running {
			t.Errorf("launchctl print exit %d: %+v, %v", tc.code, st, err)
		}
	}
}

// systemctl's failures come back with what to do.
func TestSystemctlErrorsSayTheFix(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		uid  int
		out  string
		want string
	}{
		{1000, "Failed to connect to bus: No medium found\n", "no systemd user instance for this login: log in with a session of your own (not su or sudo), or run as root for a system unit"},
		{1000, "Failed to connect to bus: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR not defined (consider using --machine=<user>@.host --user to connect to bus of other user)\n", "no systemd user instance"},
		{0, "Failed to enable unit: Access denied\n", "systemctl daemon-reload failed (exit 1): Failed to enable unit: Access denied: run it as root"},
		{0, "Job for nanoclaw.service failed because the control process exited with error code.\n",
			"systemctl daemon-reload failed (exit 1): Job for nanoclaw.service failed because the control process exited with error code.: see systemctl status nanoclaw.service and journalctl -u nanoclaw.service"},
	}
	for _, tc := range cases {
		h, rec := testHost(t, "linux", tc.uid)
		s, _ := New(h)
		rec.reply = func(argv []string) (string, int) {
			if argv[len(argv)-1] == "--version" {
				return "systemd 252\n", 0
			}
			return tc.out, 1
		}
		_, err := s.Install(ctx, testUnit(h), false, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("systemctl said %q: %v\nwant %q", tc.out, err, tc.want)
		}
	}
}

// A user unit without lingering stops at logout: Install says the one
// command that keeps it.
func TestInstallSaysHowToLinger(t *testing.T) {
	ctx := context.Background()
	h, _ := testHost(t, "linux", 1000)
	s, _ := New(h)
	done, err := s.Install(ctx, testUnit(h), false, false)
	if err != nil || done.Linger != "loginctl enable-linger alice" {
		t.Errorf("lingering off: %+v, %v", done, err)
	}
	os.MkdirAll(filepath.Join(h.Root, "var/lib/systemd/linger"), 0o755)
	os.WriteFile(filepath.Join(h.Root, "var/lib/systemd/linger/alice"), nil, 0o644)
	if done, err := s.Install(ctx, testUnit(h), false, false); err != nil || done.Linger != "" {
		t.Errorf("lingering on: %+v, %v", done, err)
	}
	h, _ = testHost(t, "linux", 0) // a system unit needs no session
	s, _ = New(h)
	if done, err := s.Install(ctx, testUnit(h), false, false); err != nil || done.Linger != "" {
		t.Errorf("system unit: %+v, %v", done, err)
	}
}
