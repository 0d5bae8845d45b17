package skills

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tree makes groups/global and groups/fam in a new temporary data home.
func tree(t testing.TB) (global, group string) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "groups")
	global, group = filepath.Join(home, "global"), filepath.Join(home, "fam")
	for _, d := range []string{global, group} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return global, group
}

// put writes a skill with that description (and extra files: path to
// content) under dir/skills/name.
func put(t testing.TB, dir, name, description string, extra map[string]string) string {
	t.Helper()
	at := filepath.Join(dir, "skills", name)
	files := map[string]string{"SKILL.md": "---\nname: " + name + "\ndescription: " + description + "\n---\nDo it well.\n"}
	for k, v := range extra {
		files[k] = v
	}
	for rel, content := range files {
		p := filepath.Join(at, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return at
}

// find returns the entry of that name and source.
func find(t *testing.T, list []Skill, name, from string) Skill {
	t.Helper()
	for _, s := range list {
		if s.Name == name && s.From == from {
			return s
		}
	}
	t.Fatalf("no %s skill %q in %+v", from, name, list)
	return Skill{}
}

// listSoon is List that fails the test instead of hanging (a FIFO read
// naively would).
func listSoon(t *testing.T, global, group string) []Skill {
	t.Helper()
	type result struct {
		list []Skill
		err  error
	}
	done := make(chan result, 1)
	go func() {
		l, err := List(global, group)
		done <- result{l, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("List: %v", r.err)
		}
		return r.list
	case <-time.After(10 * time.Second):
		t.Fatal("List hangs")
	}
	return nil
}

func TestListReportsBothSourcesSorted(t *testing.T) {
	global, group := tree(t)
	put(t, global, "weather", "Look up the weather", nil)
	put(t, group, "booking", "Book a table", map[string]string{"notes/menu.txt": "soup"})
	os.WriteFile(filepath.Join(group, "skills", "README.md"), []byte("my skills"), 0o644)

	list, err := List(global, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "booking" || list[1].Name != "weather" {
		t.Fatalf("list = %+v, want booking (group) then weather (global); README.md ignored", list)
	}
	b := list[0]
	md := "---\nname: booking\ndescription: Book a table\n---\nDo it well.\n"
	if b.From != FromGroup || b.Description != "Book a table" || b.Files != 2 || b.Bytes != int64(len(md)+len("soup")) || b.Problem != "" || b.Overrides {
		t.Fatalf("booking = %+v", b)
	}
	if w := list[1]; w.From != FromGlobal || w.Problem != "" || w.Description != "Look up the weather" {
		t.Fatalf("weather = %+v", w)
	}
}

func TestListWithoutSkills(t *testing.T) {
	global, group := tree(t)
	list, err := List(global, group)
	if err != nil || len(list) != 0 {
		t.Fatalf("no skills directories: %+v, %v", list, err)
	}
	list, err = List(filepath.Join(t.TempDir(), "missing"), group)
	if err != nil || len(list) != 0 {
		t.Fatalf("no global folder: %+v, %v", list, err)
	}
}

func TestGroupSkillOverridesGlobal(t *testing.T) {
	global, group := tree(t)
	put(t, global, "notes", "Global notes", nil)
	put(t, group, "notes", "The family's notes", nil)
	list := listSoon(t, global, group)
	g, m := find(t, list, "notes", FromGlobal), find(t, list, "notes", FromGroup)
	if !m.Overrides || m.Problem != "" {
		t.Fatalf("group's = %+v, want it used, overriding", m)
	}
	if g.Problem != "replaced by the group's own skill of that name (groups/fam/skills/notes)" || g.Overrides {
		t.Fatalf("global's = %+v, want it replaced", g)
	}

	// A group skill that is left out replaces nothing.
	os.Remove(filepath.Join(group, "skills", "notes", "SKILL.md"))
	list = listSoon(t, global, group)
	if g, m := find(t, list, "notes", FromGlobal), find(t, list, "notes", FromGroup); g.Problem != "" || m.Problem == "" || m.Overrides {
		t.Fatalf("broken group skill: global %+v, group %+v", g, m)
	}
}

func TestListLeavesOutHostileSkills(t *testing.T) {
	cases := []struct {
		name    string
		make    func(t *testing.T, skill string) // skill is groups/fam/skills/x, with a valid SKILL.md
		problem string
	}{
		{"symlink file", func(t *testing.T, skill string) {
			os.Symlink("/etc/passwd", filepath.Join(skill, "run.sh"))
		}, "groups/fam/skills/x/run.sh is a symbolic link: skills hold only files and directories"},
		{"symlink SKILL.md", func(t *testing.T, skill string) {
			os.Remove(filepath.Join(skill, "SKILL.md"))
			os.Symlink("/etc/passwd", filepath.Join(skill, "SKILL.md"))
		}, "groups/fam/skills/x/SKILL.md is a symbolic link: skills hold only files and directories"},
		{"symlink directory inside", func(t *testing.T, skill string) {
			os.Symlink("/etc", filepath.Join(skill, "conf"))
		}, "groups/fam/skills/x/conf is a symbolic link: skills hold only files and directories"},
		{"fifo", func(t *testing.T, skill string) {
			if err := syscall.Mkfifo(filepath.Join(skill, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "groups/fam/skills/x/pipe is a named pipe: skills hold only files and directories"},
		{"socket", func(t *testing.T, skill string) {
			l, err := net.Listen("unix", filepath.Join(skill, "s"))
			if err != nil {
				t.Skip("no unix socket here:", err)
			}
			t.Cleanup(func() { l.Close() })
		}, "groups/fam/skills/x/s is a socket: skills hold only files and directories"},
		{"device", func(t *testing.T, skill string) {
			// /dev/null's numbers: reading it would be harmless, /dev/zero's endless.
			if err := syscall.Mknod(filepath.Join(skill, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
				t.Skip("cannot make a device node here (not root):", err)
			}
		}, "groups/fam/skills/x/null is a device: skills hold only files and directories"},
		{"hard link", func(t *testing.T, skill string) {
			outside := filepath.Join(filepath.Dir(filepath.Dir(skill)), "secret.txt")
			os.WriteFile(outside, []byte("secret"), 0o600)
			if err := os.Link(outside, filepath.Join(skill, "copy.txt")); err != nil {
				t.Fatal(err)
			}
		}, "groups/fam/skills/x/copy.txt has 2 hard links: a skill's file must have one (copy it instead of linking)"},
		{"huge file", func(t *testing.T, skill string) {
			f, _ := os.Create(filepath.Join(skill, "big.bin"))
			f.Truncate(maxFileBytes + 1)
			f.Close()
		}, "groups/fam/skills/x/big.bin is larger than 4 MiB, the most a skill's file may be"},
		{"too many files", func(t *testing.T, skill string) {
			for i := range maxFiles {
				os.WriteFile(filepath.Join(skill, fmt.Sprintf("f%03d", i)), nil, 0o644)
			}
		}, "groups/fam/skills/x holds more than 256 files: a skill may hold at most that"},
		{"too many entries", func(t *testing.T, skill string) {
			for i := range maxFiles + maxDirs {
				os.WriteFile(filepath.Join(skill, fmt.Sprintf("f%03d", i)), nil, 0o644)
			}
		}, "groups/fam/skills/x holds more than 256 files and 64 directories: a skill may hold at most that"},
		{"too many directories", func(t *testing.T, skill string) {
			for i := range maxDirs + 1 {
				os.Mkdir(filepath.Join(skill, fmt.Sprintf("d%03d", i)), 0o755)
			}
		}, "groups/fam/skills/x holds more than 64 directories: a skill may hold at most that"},
		{"too deep", func(t *testing.T, skill string) {
			deep := filepath.Join(skill, "1", "2", "3", "4", "5", "6", "7", "8")
			os.MkdirAll(deep, 0o755)
			os.WriteFile(filepath.Join(deep, "f"), nil, 0o644)
		}, "groups/fam/skills/x/1/2/3/4/5/6/7/8/f is nested more than 8 deep below the skill's directory: flatten it"},
		{"control character in a name", func(t *testing.T, skill string) {
			os.WriteFile(filepath.Join(skill, "a\x1b[31mb"), nil, 0o644)
		}, `groups/fam/skills/x/"a\x1b[31mb": a name in a skill must be valid UTF-8 of at most 255 bytes without control characters`},
		{"bidi override in a name", func(t *testing.T, skill string) {
			os.WriteFile(filepath.Join(skill, "txt.\u202Ehs"), nil, 0o644)
		}, `groups/fam/skills/x/"txt.\u202ehs": a name in a skill must be valid UTF-8`},
		{"invalid UTF-8 in a name", func(t *testing.T, skill string) {
			os.WriteFile(filepath.Join(skill, "a\xffb"), nil, 0o644)
		}, `groups/fam/skills/x/"a\xffb": a name in a skill must be valid UTF-8`},
		{"no SKILL.md", func(t *testing.T, skill string) {
			os.Remove(filepath.Join(skill, "SKILL.md"))
			os.WriteFile(filepath.Join(skill, "skill.md"), []byte("---\ndescription: d\n---\n"), 0o644)
		}, "groups/fam/skills/x has no SKILL.md: a skill needs one, with a description in its front matter"},
		{"SKILL.md a directory", func(t *testing.T, skill string) {
			os.Remove(filepath.Join(skill, "SKILL.md"))
			os.Mkdir(filepath.Join(skill, "SKILL.md"), 0o755)
		}, "groups/fam/skills/x/SKILL.md is a directory: it must be a file whose front matter describes the skill"},
		{"no front matter", func(t *testing.T, skill string) {
			os.WriteFile(filepath.Join(skill, "SKILL.md"), []byte("# X\nDoes things.\n"), 0o644)
		}, `groups/fam/skills/x/SKILL.md: it does not start with a front matter line "---"`},
		{"no description", func(t *testing.T, skill string) {
			os.WriteFile(filepath.Join(skill, "SKILL.md"), []byte("---\nname: x\n---\n"), 0o644)
		}, `groups/fam/skills/x/SKILL.md: its front matter has no description: add a line "description: what the skill is for and when to use it"`},
		{"description only escapes", func(t *testing.T, skill string) {
			os.WriteFile(filepath.Join(skill, "SKILL.md"), []byte("---\ndescription: \x1b[2J\x07\n---\n"), 0o644)
		}, "groups/fam/skills/x/SKILL.md: its description is empty once cleaned: say in words what the skill is for"},
		{"other name", func(t *testing.T, skill string) {
			os.WriteFile(filepath.Join(skill, "SKILL.md"), []byte("---\nname: y\ndescription: d\n---\n"), 0o644)
		}, `groups/fam/skills/x/SKILL.md: its name "y" is not the directory's name "x": make them equal`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			global, group := tree(t)
			put(t, group, "ok", "Fine", nil)
			c.make(t, put(t, group, "x", "Hostile", nil))
			list := listSoon(t, global, group)
			x := find(t, list, "x", FromGroup)
			if !strings.HasPrefix(x.Problem, c.problem) {
				t.Fatalf("problem = %q, want %q", x.Problem, c.problem)
			}
			if ok := find(t, list, "ok", FromGroup); ok.Problem != "" {
				t.Fatalf("the good skill beside it: %+v", ok)
			}
		})
	}
}

func TestListSkillDirectories(t *testing.T) {
	global, group := tree(t)
	skills := filepath.Join(group, "skills")
	os.MkdirAll(skills, 0o755)
	os.Symlink("/etc", filepath.Join(skills, "etc"))
	syscall.Mkfifo(filepath.Join(skills, "pipe"), 0o644)
	os.Mkdir(filepath.Join(skills, "Bad_Name"), 0o755)
	os.Mkdir(filepath.Join(skills, "-x"), 0o755)
	os.Mkdir(filepath.Join(skills, strings.Repeat("a", 65)), 0o755)
	list := listSoon(t, global, group)
	want := map[string]string{
		"etc":                   "groups/fam/skills/etc is a symbolic link: skills hold only files and directories",
		"pipe":                  "groups/fam/skills/pipe is a named pipe: skills hold only files and directories",
		"Bad_Name":              "groups/fam/skills/Bad_Name: a skill's directory name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter or digit",
		"-x":                    "groups/fam/skills/-x: a skill's directory name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter or digit",
		strings.Repeat("a", 65): "groups/fam/skills/" + strings.Repeat("a", 65) + ": a skill's directory name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter or digit",
	}
	if len(list) != len(want) {
		t.Fatalf("list = %+v", list)
	}
	for name, problem := range want {
		if s := find(t, list, name, FromGroup); s.Problem != problem {
			t.Errorf("%s: problem = %q, want %q", name, s.Problem, problem)
		}
	}
}

func TestListSkillsDirectoryItself(t *testing.T) {
	for _, c := range []struct {
		name, problem string
		make          func(skills string)
	}{
		{"symlink", "groups/fam/skills is a symbolic link: skills must be a real directory; move the link away", func(skills string) {
			os.Mkdir(skills+".real", 0o755)
			os.Symlink(skills+".real", skills)
		}},
		{"file", "groups/fam/skills is a file, not a directory: move it away", func(skills string) {
			os.WriteFile(skills, nil, 0o644)
		}},
		{"too many entries", "groups/fam/skills holds more than 1024 entries: remove what is not a skill", func(skills string) {
			os.Mkdir(skills, 0o755)
			for i := range maxEntries + 1 {
				os.WriteFile(filepath.Join(skills, fmt.Sprint(i)), nil, 0o644)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			global, group := tree(t)
			put(t, global, "g", "Global", nil)
			c.make(filepath.Join(group, "skills"))
			list := listSoon(t, global, group)
			if len(list) != 2 || list[0].Name != "" || list[0].From != FromGroup || list[0].Problem != c.problem {
				t.Fatalf("list = %+v, want first the group's source problem %q", list, c.problem)
			}
			if list[1].Name != "g" || list[1].Problem != "" {
				t.Fatalf("the global skill: %+v", list[1])
			}
		})
	}
}

func TestListSourceBounds(t *testing.T) {
	t.Run("skills", func(t *testing.T) {
		global, group := tree(t)
		for i := range maxSkills + 1 {
			put(t, global, fmt.Sprintf("s%02d", i), "d", nil)
		}
		os.Mkdir(filepath.Join(global, "skills", "Bad"), 0o755) // left out: does not count
		list := listSoon(t, global, group)
		used := 0
		for _, s := range list {
			if s.Problem == "" {
				used++
			}
		}
		last := find(t, list, "s64", FromGlobal)
		if used != maxSkills || last.Problem != "groups/global/skills/s64 is left out: groups/global/skills holds more than 64 skills (the first 64 by name are used)" {
			t.Fatalf("used %d, the 65th: %+v", used, last)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		global, group := tree(t)
		for _, name := range []string{"a", "b", "c", "d", "e"} {
			at := put(t, group, name, "d", nil)
			f, _ := os.Create(filepath.Join(at, "data"))
			f.Truncate(maxFileBytes - 100)
			f.Close()
		}
		put(t, group, "f", "small", nil) // after the limit: out too
		list := listSoon(t, global, group)
		for _, name := range []string{"a", "b", "c", "d"} {
			if s := find(t, list, name, FromGroup); s.Problem != "" {
				t.Fatalf("%s: %+v", name, s)
			}
		}
		for _, name := range []string{"e", "f"} {
			want := "groups/fam/skills/" + name + " is left out: the skills of groups/fam/skills come to more than 16 MiB together (taken by name up to that)"
			if s := find(t, list, name, FromGroup); s.Problem != want {
				t.Fatalf("%s: problem %q, want %q", name, s.Problem, want)
			}
		}
	})
}

// A file swapped or changed between the walk's Lstat and its read is
// refused, and a FIFO swapped in does not hang the read.
func TestReadFileChanged(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	p := filepath.Join(dir, "f")
	lstat := func() os.FileInfo {
		os.WriteFile(p, []byte("hello"), 0o644)
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	st := lstat()
	if data, err := readFile(root, "f", st); err != nil || string(data) != "hello" {
		t.Fatalf("unchanged: %q, %v", data, err)
	}
	for name, change := range map[string]func(){
		"grew":    func() { os.WriteFile(p, []byte("hello, world"), 0o644) },
		"fifo":    func() { os.Remove(p); syscall.Mkfifo(p, 0o644) },
		"symlink": func() { os.Remove(p); os.Symlink("/etc/passwd", p) },
		"other":   func() { os.WriteFile(p+".new", []byte("hello"), 0o644); os.Rename(p+".new", p) },
		"linked":  func() { os.Link(p, p+".2"); t.Cleanup(func() { os.Remove(p + ".2") }) },
	} {
		os.Remove(p)
		st := lstat()
		change()
		done := make(chan error, 1)
		go func() { _, err := readFile(root, "f", st); done <- err }()
		select {
		case err := <-done:
			if err != errChanged {
				t.Errorf("%s: err = %v, want %v", name, err, errChanged)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the read hangs", name)
		}
		os.Remove(p + ".2")
	}
}

func TestDescriptionCleaned(t *testing.T) {
	global, group := tree(t)
	long := strings.Repeat("word ", 100)
	put(t, group, "a", "\"Quoted \x1b]0;title\x07\u202Etext\"", nil)
	put(t, group, "b", long, nil)
	list := listSoon(t, global, group)
	if d := find(t, list, "a", FromGroup).Description; d != "Quoted text" {
		t.Errorf("description = %q", d)
	}
	d := find(t, list, "b", FromGroup).Description
	if len(d) > maxDescription || !strings.HasSuffix(d, "…") || strings.Contains(d, "  ") {
		t.Errorf("long description = %q (%d bytes)", d, len(d))
	}
}
