package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nobody owns the directories another user could change.
const nobody = 65534

// TestCheckReplaceable: the service refuses a binary or a PATH entry that
// someone other than this user or root could replace, naming the path.
func TestCheckReplaceable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("building the bad cases needs chown: run as root (make test does)")
	}
	base := t.TempDir()
	mk := func(rel string, mode os.FileMode, uid int) string {
		t.Helper()
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := func(dir string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, "nanoclaw")
		if err := os.WriteFile(p, []byte("ELF"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := mk("good", 0o755, 0)
	goodExe := exe(good, 0o755)
	open := mk("open", 0o777, 0)
	sticky := mk("sticky", 0o777|os.ModeSticky, 0)
	nobodys := mk("nobodys", 0o755, nobody)
	underSticky := mk("sticky/owned/bin", 0o755, 0)
	link := filepath.Join(good, "link-to-open")
	if err := os.Symlink(open, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		unit Unit
		euid int
		bad  string // the path the error must name; "" passes
	}{
		{"this machine's standard PATH", Unit{Exe: goodExe, Path: standardPath}, 0, ""},
		{"a sticky directory above", Unit{Exe: exe(underSticky, 0o755), Path: underSticky}, 0, ""},
		{"a missing PATH entry in a good directory", Unit{Exe: goodExe, Path: filepath.Join(good, "none/bin")}, 0, ""},
		{"the user's own directory in a user unit", Unit{Exe: exe(nobodys, 0o755), Path: nobodys}, nobody, ""},
		{"a binary in a world-writable directory", Unit{Exe: exe(open, 0o755), Path: standardPath}, 0, open},
		{"a binary others may write", Unit{Exe: exe(mk("loose", 0o755, 0), 0o775), Path: standardPath}, 0, filepath.Join(base, "loose/nanoclaw")},
		{"a binary in nobody's directory, for root", Unit{Exe: exe(nobodys, 0o755), Path: standardPath}, 0, nobodys},
		{"a binary in nobody's directory, for another user", Unit{Exe: exe(nobodys, 0o755), Path: standardPath}, 1000, nobodys},
		{"a world-writable PATH entry first", Unit{Exe: goodExe, Path: open + ":" + standardPath}, 0, open},
		{"a sticky PATH entry", Unit{Exe: goodExe, Path: sticky}, 0, sticky},
		{"nobody's PATH entry", Unit{Exe: goodExe, Path: "/usr/bin:" + nobodys}, 0, nobodys},
		{"a missing PATH entry in a world-writable directory", Unit{Exe: goodExe, Path: filepath.Join(open, "bin")}, 0, open},
		{"a PATH entry linking to a world-writable directory", Unit{Exe: goodExe, Path: link}, 0, open},
	}
	for _, c := range cases {
		err := c.unit.CheckReplaceable(c.euid)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%s: %v, want it accepted", c.name, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad+" can be changed by another user") ||
			!strings.Contains(err.Error(), "chmod go-w "+c.bad) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: %v, want one line naming %s and its fix", c.name, err, c.bad)
		}
	}
	if err := (Unit{Exe: filepath.Join(good, "missing"), Path: standardPath}).CheckReplaceable(0); err == nil {
		t.Error("a missing binary was accepted")
	}
}
