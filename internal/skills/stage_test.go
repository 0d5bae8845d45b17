package skills

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// daemonUmask runs the test under the daemon's umask (077), which Stage's
// modes must not depend on.
func daemonUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
}

// files lists dir's tree as path → mode (directories end in '/') and
// content.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out[rel+"/"] = info.Mode().Perm().String()
		case info.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			out[rel] = info.Mode().Perm().String() + " " + string(data)
		default:
			out[rel] = info.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStageTreesAndModes(t *testing.T) {
	daemonUmask(t)
	global, group := tree(t)
	put(t, global, "notes", "Global notes", map[string]string{"tpl/a.txt": "global a"})
	put(t, global, "weather", "Weather", nil)
	at := put(t, group, "notes", "Family notes", map[string]string{"run.sh": "#!/bin/sh\necho hi\n"})
	os.Chmod(filepath.Join(at, "run.sh"), 0o700) // any execute bit makes it 0755
	os.Mkdir(filepath.Join(at, "empty"), 0o700)
	os.Symlink("/etc", filepath.Join(group, "skills", "etc"))
	put(t, group, "broken", "x", map[string]string{"link": ""})
	os.Remove(filepath.Join(group, "skills", "broken", "link"))
	os.Symlink("/etc/shadow", filepath.Join(group, "skills", "broken", "link"))

	dst := filepath.Join(t.TempDir(), "skills")
	list, err := Stage(global, group, dst)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := List(global, group)
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Fatalf("Stage = %+v\nList = %+v", list, want)
	}
	gmd := "-rw-r--r-- ---\nname: notes\ndescription: Global notes\n---\nDo it well.\n"
	fmd := "-rw-r--r-- ---\nname: notes\ndescription: Family notes\n---\nDo it well.\n"
	wmd := "-rw-r--r-- ---\nname: weather\ndescription: Weather\n---\nDo it well.\n"
	script := "-rwxr-xr-x #!/bin/sh\necho hi\n"
	dirMode := "-rwxr-xr-x"
	wantTree := map[string]string{
		"./": dirMode, "merged/": dirMode, "global/": dirMode, "group/": dirMode,
		"merged/notes/": dirMode, "merged/notes/SKILL.md": fmd, "merged/notes/run.sh": script, "merged/notes/empty/": dirMode,
		"merged/weather/": dirMode, "merged/weather/SKILL.md": wmd,
		"global/notes/": dirMode, "global/notes/SKILL.md": gmd, "global/notes/tpl/": dirMode, "global/notes/tpl/a.txt": "-rw-r--r-- global a",
		"global/weather/": dirMode, "global/weather/SKILL.md": wmd,
		"group/notes/": dirMode, "group/notes/SKILL.md": fmd, "group/notes/run.sh": script, "group/notes/empty/": dirMode,
	}
	got := files(t, dst)
	for k, v := range wantTree {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := wantTree[k]; !ok {
			t.Errorf("unexpected %s in the staged tree", k)
		}
	}

	// A copy, not a link: changing the source later changes nothing staged.
	os.WriteFile(filepath.Join(at, "run.sh"), []byte("rm -rf /"), 0o755)
	if data, _ := os.ReadFile(filepath.Join(dst, "merged", "notes", "run.sh")); string(data) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("staged run.sh follows the source: %q", data)
	}
}

func TestStageReplacesWhole(t *testing.T) {
	global, group := tree(t)
	put(t, group, "old", "Old", nil)
	dst := filepath.Join(t.TempDir(), "skills")
	if _, err := Stage(global, group, dst); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, "merged", "stray"), nil, 0o644) // anything in dst goes with the swap

	for _, way := range []string{"exchange", "two renames"} {
		t.Run(way, func(t *testing.T) {
			if way == "two renames" {
				swap = func(a, b string) error { return errNoExchange }
				t.Cleanup(func() { swap = exchange })
			}
			os.RemoveAll(filepath.Join(group, "skills"))
			put(t, group, "new", way, nil)
			if _, err := Stage(global, group, dst); err != nil {
				t.Fatal(err)
			}
			got := files(t, dst)
			if got["merged/new/SKILL.md"] == "" || !strings.Contains(got["group/new/SKILL.md"], way) {
				t.Fatalf("new skill not staged: %v", got)
			}
			for k := range got {
				if strings.Contains(k, "old") || strings.Contains(k, "stray") {
					t.Fatalf("previous content %s still there", k)
				}
			}
			for _, left := range []string{dst + ".new", dst + ".old"} {
				if _, err := os.Lstat(left); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s left behind: %v", left, err)
				}
			}
		})
	}
}

func TestStageRemovesCrashLeftovers(t *testing.T) {
	global, group := tree(t)
	put(t, group, "a", "A", nil)
	dst := filepath.Join(t.TempDir(), "skills")
	for _, left := range []string{dst + ".new", dst + ".old"} {
		os.MkdirAll(filepath.Join(left, "merged", "ghost"), 0o755)
		os.WriteFile(filepath.Join(left, "merged", "ghost", "SKILL.md"), nil, 0o644)
	}
	if _, err := Stage(global, group, dst); err != nil {
		t.Fatal(err)
	}
	for _, left := range []string{dst + ".new", dst + ".old"} {
		if _, err := os.Lstat(left); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s left behind: %v", left, err)
		}
	}
	if got := files(t, dst); got["merged/a/SKILL.md"] == "" || got["merged/ghost/"] != "" {
		t.Fatalf("staged: %v", got)
	}
}

func TestStageRefusesBadDestination(t *testing.T) {
	global, group := tree(t)
	base := t.TempDir()
	if _, err := Stage(global, group, filepath.Join(base, "missing", "skills")); err == nil || !strings.Contains(err.Error(), "must be an existing directory") {
		t.Fatalf("missing parent: %v", err)
	}
	link := filepath.Join(base, "link")
	os.Symlink(t.TempDir(), link)
	if _, err := Stage(global, group, link); err == nil || !strings.Contains(err.Error(), "is a symbolic link, not a directory") {
		t.Fatalf("symlink dst: %v", err)
	}
}

func TestPrepare(t *testing.T) {
	daemonUmask(t)
	dir := t.TempDir()
	if moved, err := Prepare(dir); err != nil || moved != "" {
		t.Fatal(moved, err)
	}
	st, err := os.Lstat(filepath.Join(dir, "skills"))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
		t.Fatalf("skills: %v, %v", st.Mode(), err)
	}
	os.WriteFile(filepath.Join(dir, "skills", "keep"), nil, 0o644)
	if moved, err := Prepare(dir); err != nil || moved != "" {
		t.Fatal(moved, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "skills", "keep")); err != nil {
		t.Fatal("an existing skills directory was replaced")
	}

	// Anything else in its place is moved aside, never followed: the
	// mount point is a real directory and the link's target is untouched.
	target := t.TempDir()
	for name, plant := range map[string]func(string) error{
		"symlink":    func(p string) error { return os.Symlink(target, p) },
		"dangling":   func(p string) error { return os.Symlink("/nonexistent", p) },
		"file":       func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) },
		"named pipe": func(p string) error { return syscall.Mkfifo(p, 0o644) },
	} {
		dir := t.TempDir()
		if err := plant(filepath.Join(dir, "skills")); err != nil {
			t.Fatal(err)
		}
		moved, err := Prepare(dir)
		if err != nil || !strings.HasPrefix(moved, filepath.Join(dir, "skills.moved-")) {
			t.Errorf("%s: moved %q, %v", name, moved, err)
			continue
		}
		if st, err := os.Lstat(filepath.Join(dir, "skills")); err != nil || !st.IsDir() {
			t.Errorf("%s: skills is not a directory after Prepare: %v", name, err)
		}
		if _, err := os.Lstat(moved); err != nil {
			t.Errorf("%s: what was there is gone: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Errorf("Prepare wrote through a link: %v", entries)
	}
}

// BenchmarkStage stages 20 skills of 10 files (1 KiB each) from the group.
func BenchmarkStage(b *testing.B) {
	global, group := tree(b)
	for i := range 20 {
		extra := map[string]string{}
		for j := range 9 {
			extra[fmt.Sprintf("f%d.txt", j)] = strings.Repeat("x", 1024)
		}
		put(b, group, fmt.Sprintf("skill-%02d", i), "A benchmark skill", extra)
	}
	dst := filepath.Join(b.TempDir(), "skills")
	b.ResetTimer()
	for b.Loop() {
		if _, err := Stage(global, group, dst); err != nil {
			b.Fatal(err)
		}
	}
}
