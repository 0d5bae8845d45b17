package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// ownerWorld is a data home with a main group and a group "family" that
// has a session, a mount allowlist allowing base/root read-write, and no
// daemon: the CLI works on the database itself.
func ownerWorld(t *testing.T) (base string, env map[string]string, open func() *store.Store) {
	t.Helper()
	base, _ = filepath.EvalSymlinks(t.TempDir())
	env = map[string]string{"NANOCLAW_CONFIG_DIR": filepath.Join(base, "conf"), "NANOCLAW_HOME": filepath.Join(base, "home")}
	for _, d := range []string{"conf", "home/store", "root/proj"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	allowlist := `{"allowedRoots":[{"path":"` + base + `/root","allowReadWrite":true}]}`
	if err := os.WriteFile(filepath.Join(base, "conf", "mount-allowlist.json"), []byte(allowlist), 0o600); err != nil {
		t.Fatal(err)
	}
	open = func() *store.Store {
		t.Helper()
		st, err := store.Open(context.Background(), filepath.Join(base, "home", "store", "nanoclaw.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	ctx := context.Background()
	st := open()
	defer st.Close()
	for _, g := range []store.Group{
		{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()},
		{Folder: "family", Name: "Family", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()},
	} {
		if err := st.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := st.BindChat(ctx, "local:"+g.Folder, g.Folder); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetSession(ctx, "family", "sess-1"); err != nil {
		t.Fatal(err)
	}
	return base, env, open
}

// R17: the owner clears a group's session from the CLI; an unknown folder
// is refused by name. (With the daemon running, the same command goes
// through the control socket: TestMainRegistersGroupsAndOwnsGlobalMemory.)
func TestGroupsResetSession(t *testing.T) {
	_, env, open := ownerWorld(t)
	code, out, errOut := run(t, env, "groups", "reset-session", "family")
	if code != cli.ExitOK || !strings.Contains(out, "session cleared") {
		t.Fatalf("reset-session: exit %d, %q %q", code, out, errOut)
	}
	st := open()
	id, err := st.Session(context.Background(), "family")
	st.Close()
	if err != nil || id != "" {
		t.Fatalf("session after the reset: %q, %v", id, err)
	}
	code, _, errOut = run(t, env, "groups", "reset-session", "nobody")
	if code == cli.ExitOK || !strings.Contains(errOut, `no registered group "nobody"`) || !strings.Contains(errOut, "nanoclaw groups list") {
		t.Errorf("reset-session of an unknown folder: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, env, "groups", "reset-session"); code != cli.ExitUsage {
		t.Errorf("reset-session without a folder: exit %d, %q", code, errOut)
	}
}

// R6: the owner's CLI still widens a sandbox, which main's model cannot.
func TestGroupsSetWidensForTheOwner(t *testing.T) {
	base, env, open := ownerWorld(t)
	code, out, errOut := run(t, env, "groups", "set", "family", "memory_mb=8192", "cpus=8", "egress=public", "allow=192.168.1.0/24:*",
		`mounts=[{"host_path":"`+base+`/root/proj","container_path":"proj"}]`)
	if code != cli.ExitOK {
		t.Fatalf("groups set: exit %d, %s", code, errOut)
	}
	if !strings.Contains(out, "memory:    8192 MiB") {
		t.Errorf("output:\n%s", out)
	}
	st := open()
	defer st.Close()
	g, _, _ := st.GetGroup(context.Background(), "family")
	if c := g.Config; c.MemoryMB != 8192 || c.CPUs != 8 || len(c.Egress.Allow) != 1 || len(c.AdditionalMounts) != 1 {
		t.Errorf("stored config %+v", c)
	}
}

// R14: bad settings are refused when they are made, with the reason, and
// nothing is stored.
func TestGroupsBadSettingsRefusedWhenMade(t *testing.T) {
	base, env, open := ownerWorld(t)
	home, _ := os.UserHomeDir()
	mount := func(host, container string) string {
		return `mounts=[{"host_path":"` + host + `","container_path":"` + container + `"}]`
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"set", "family", mount("/", "root")}, "overlaps nanoclaw's own"},
		{[]string{"set", "family", mount("/etc", "etc")}, "not under any allowed root"},
		{[]string{"set", "family", mount("~/.ssh", "ssh")}, "blocked pattern"},
		{[]string{"set", "family", mount(home+"/.ssh", "ssh")}, "blocked pattern"},
		{[]string{"set", "family", mount(base+"/home", "data")}, "overlaps nanoclaw's own"},
		{[]string{"set", "family", mount(base+"/conf", "conf")}, "overlaps nanoclaw's own"},
		{[]string{"set", "family", mount("root/proj", "p")}, "is relative"},
		{[]string{"set", "family", mount("~root/proj", "p")}, "not ~user"},
		{[]string{"set", "family", mount(base+"/root/proj", ".")}, "not clean"},
		{[]string{"set", "family", mount(base+"/root/proj", "a:b")}, "cannot be mounted"},
		{[]string{"set", "family", mount(base+"/root/proj", "p") + "junk"}, "data after the JSON list"},
		{[]string{"set", "family", mount(base+"/root/proj", "p") + `[]`}, "data after the JSON list"},
		{[]string{"add", "x", "--jid", "local:../x"}, `"local:../x"`},
		{[]string{"add", "x", "--jid", "local:"}, `"local:"`},
		{[]string{"add", "x", "--jid", "x@g.us"}, "not a group id"},
	}
	for _, c := range cases {
		code, _, errOut := run(t, env, append([]string{"groups"}, c.args...)...)
		if code == cli.ExitOK || !strings.Contains(errOut, c.want) {
			t.Errorf("groups %q: exit %d, stderr %q; want a refusal saying %q", c.args, code, errOut, c.want)
		}
	}
	st := open()
	defer st.Close()
	groups, _ := st.ListGroups(context.Background())
	if len(groups) != 2 {
		t.Errorf("%d groups after the refusals, want main and family", len(groups))
	}
	for _, g := range groups {
		if len(g.Config.AdditionalMounts) != 0 {
			t.Errorf("group %s has stored mounts %+v", g.Folder, g.Config.AdditionalMounts)
		}
	}
}

// Issue 15: the owner turns the browser on for one group, and `groups show`
// lists the skills its next run gets — global and its own, the group's
// replacing a global one of the same name — and the ones left out, with why.
func TestGroupsBrowserAndSkills(t *testing.T) {
	base, env, open := ownerWorld(t)
	groups := filepath.Join(base, "home", "groups")
	for path, body := range map[string]string{
		"global/skills/table-booking/SKILL.md": "---\nname: table-booking\ndescription: Book a table\n---\nsteps\n",
		"global/skills/house-rules/SKILL.md":   "---\nname: house-rules\ndescription: The global rules\n---\n",
		"family/skills/house-rules/SKILL.md":   "---\nname: house-rules\ndescription: The family's rules\n---\n",
		"family/skills/broken/notes.txt":       "no SKILL.md here\n",
	} {
		p := filepath.Join(groups, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, env, "groups", "set", "family", "browser=true")
	if code != cli.ExitOK || !strings.Contains(out, "browser:   on") {
		t.Fatalf("groups set browser=true: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = run(t, env, "groups", "show", "family"); code != cli.ExitOK {
		t.Fatalf("groups show: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"skill:     house-rules (group, replaces the global one): The family's rules",
		"skill:     table-booking (global): Book a table",
		"skill:     broken (group) LEFT OUT: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("groups show lacks %q:\n%s", want, out)
		}
	}
	st := open()
	g, _, _ := st.GetGroup(context.Background(), "family")
	st.Close()
	if !g.Config.Browser {
		t.Errorf("browser not stored: %+v", g.Config)
	}
	if code, _, errOut := run(t, env, "groups", "set", "family", "browser=maybe"); code != cli.ExitUsage || !strings.Contains(errOut, `browser: "maybe" is not on or off (or true, false)`) {
		t.Errorf("browser=maybe: exit %d, %q", code, errOut)
	}
	if code, out, errOut := run(t, env, "groups", "set", "family", "browser=off"); code != cli.ExitOK || !strings.Contains(out, "browser:   off") {
		t.Errorf("browser=off: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := run(t, env, "groups", "show", "main"); code != cli.ExitOK || !strings.Contains(out, "browser:   off") ||
		!strings.Contains(out, "skill:     table-booking (global)") || strings.Contains(out, "house-rules (group") {
		t.Errorf("groups show main: exit %d\n%s", code, out)
	}
}
