package tools

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
	"github.com/nanoclaw/nanoclaw/internal/router"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// groupWorld is the tools with a main group, a group "family" whose owner
// gave it more than the defaults, and a mount allowlist allowing one
// directory read-write.
type groupWorld struct {
	ctx     context.Context
	st      *store.Store
	r       *Set
	allowed string // an allowed root, read-write
	home    string // the data home (protected)
	conf    string // the config dir (protected)
}

var testDefaults = store.ContainerConfig{TimeoutSeconds: 1800, MemoryMB: 2048, CPUs: 2, PidsLimit: 512}

func newGroupWorld(t *testing.T) *groupWorld {
	t.Helper()
	ctx := context.Background()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := &groupWorld{ctx: ctx, st: openStore(t), allowed: filepath.Join(base, "projects"),
		home: filepath.Join(base, "home", ".nanoclaw"), conf: filepath.Join(base, "home", ".config", "nanoclaw")}
	for _, d := range []string{w.allowed + "/code", w.allowed + "/notes", w.home + "/groups", w.conf} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	allowlist := filepath.Join(w.conf, "mount-allowlist.json")
	body := `{"allowedRoots": [{"path": "` + w.allowed + `", "allowReadWrite": true}, {"path": "` + base + `/home", "allowReadWrite": true}]}`
	if err := os.WriteFile(allowlist, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, g := range []store.Group{
		{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()},
		{Folder: "family", Name: "Family", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now(),
			Config: store.ContainerConfig{MemoryMB: 1024, CPUs: 1, PidsLimit: 256, TimeoutSeconds: 600,
				Egress:           store.Egress{Mode: store.EgressPublic, Allow: []string{"192.168.1.10:8080"}},
				AdditionalMounts: []store.Mount{{HostPath: w.allowed + "/code", ContainerPath: "code", ReadOnly: true}}}},
	} {
		if err := w.st.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := w.st.BindChat(ctx, "local:"+g.Folder, g.Folder); err != nil {
			t.Fatal(err)
		}
	}
	chats := router.NewChannels(w.st, "", nil)
	chats.Add(&fakeChannel{})
	w.r = New(Options{Store: w.st, Chats: chats, GroupsDir: filepath.Join(w.home, "groups"),
		SessionsDir: filepath.Join(w.home, "sessions"), Defaults: testDefaults,
		Mounts: mounts.Guard{AllowlistPath: allowlist, Protected: mounts.OwnDirs(w.home, w.conf, "")}})
	return w
}

// model calls a tool as main's model does: through Call, from main's socket.
func (w *groupWorld) model(tool string, args any) (any, error) {
	raw, _ := json.Marshal(args)
	return w.r.Call(w.ctx, gateway.Caller{Folder: "main", IsMain: true}, tool, raw)
}

// owner calls a tool as the CLI does.
func (w *groupWorld) owner(tool string, args any) (any, error) {
	raw, _ := json.Marshal(args)
	return w.r.OwnerCall(w.ctx, tool, raw)
}

func (w *groupWorld) group(t *testing.T, folder string) store.Group {
	t.Helper()
	g, found, err := w.st.GetGroup(w.ctx, folder)
	if err != nil || !found {
		t.Fatalf("group %q: found=%v, %v", folder, found, err)
	}
	return g
}

func ptr[T any](v T) *T { return &v }

// R6: main's model may not widen any group's sandbox, its own included;
// each attempt is refused with the owner's command line and stores
// nothing. The same change from the owner is made.
func TestMainModelCannotWidenSandboxes(t *testing.T) {
	w := newGroupWorld(t)
	mount := func(host, container string, ro bool) *[]ipc.ExtraMount {
		return &[]ipc.ExtraMount{{HostPath: host, ContainerPath: container, ReadOnly: ro}}
	}
	cases := []struct {
		name string
		args ipc.ConfigureGroupArgs
		want string // in the refusal, besides "not permitted"
	}{
		{"loopback egress rule", ipc.ConfigureGroupArgs{Folder: "family", EgressAllow: &[]string{"192.168.1.10:8080", "127.0.0.1:*"}}, `egress rule "127.0.0.1:*"`},
		{"LAN range", ipc.ConfigureGroupArgs{Folder: "family", EgressAllow: &[]string{"192.168.0.0/16"}}, `egress rule "192.168.0.0/16"`},
		{"main's own LAN egress", ipc.ConfigureGroupArgs{Folder: "main", EgressMode: ptr("public"), EgressAllow: &[]string{"10.0.0.0/8:*"}}, `egress mode "public"`},
		{"allowlist with a private-capable name rule", ipc.ConfigureGroupArgs{Folder: "main", EgressMode: ptr("allowlist"), EgressAllow: &[]string{"nas.lan:5000"}}, `egress rule "nas.lan:5000"`},
		{"memory above the owner's", ipc.ConfigureGroupArgs{Folder: "family", MemoryMB: ptr(1536)}, "memory_mb 1536 is above the 1024 in force"},
		{"memory back to the larger default", ipc.ConfigureGroupArgs{Folder: "family", MemoryMB: ptr(0)}, "memory_mb 0 means the default 2048"},
		{"memory above the default", ipc.ConfigureGroupArgs{Folder: "main", MemoryMB: ptr(4096)}, "memory_mb 4096 is above the 2048 in force"},
		{"cpus", ipc.ConfigureGroupArgs{Folder: "main", CPUs: ptr(8.0)}, "cpus 8 is above the 2 in force"},
		{"pids", ipc.ConfigureGroupArgs{Folder: "main", PidsLimit: ptr(4096)}, "pids_limit 4096"},
		{"timeout", ipc.ConfigureGroupArgs{Folder: "family", TimeoutSeconds: ptr(7200)}, "timeout_seconds 7200"},
		{"a new mount", ipc.ConfigureGroupArgs{Folder: "main", AdditionalMounts: mount(w.allowed+"/notes", "notes", true)}, "is new"},
		{"a read-only mount made read-write", ipc.ConfigureGroupArgs{Folder: "family", AdditionalMounts: mount(w.allowed+"/code", "code", false)}, "would become read-write"},
		{"the browser turned on", ipc.ConfigureGroupArgs{Folder: "family", Browser: ptr(true)}, "the browser is not on"},
		{"a mount moved to a new host path", ipc.ConfigureGroupArgs{Folder: "family", AdditionalMounts: mount(w.allowed+"/notes", "code", true)}, "is new"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := w.group(t, c.args.Folder)
			_, err := w.model("configure_group", c.args)
			if err == nil {
				t.Fatal("main's model widened a sandbox")
			}
			msg := err.Error()
			for _, want := range []string{"not permitted", c.want, "only the owner", "nanoclaw groups set " + c.args.Folder + " "} {
				if !strings.Contains(msg, want) {
					t.Errorf("refusal %q does not say %q", msg, want)
				}
			}
			if after := w.group(t, c.args.Folder); !reflect.DeepEqual(before, after) {
				t.Errorf("the refused change was stored:\nbefore %+v\nafter  %+v", before, after)
			}
			// The owner may, with the same arguments.
			if _, err := w.owner("configure_group", c.args); err != nil {
				t.Errorf("the owner's same change was refused: %v", err)
			}
			w.st.PutGroup(w.ctx, before) // as it was, for the next case
		})
	}
}

// R6: narrowing stays a tool main's model can use.
func TestMainModelMayNarrowSandboxes(t *testing.T) {
	w := newGroupWorld(t)
	cases := []struct {
		name  string
		args  ipc.ConfigureGroupArgs
		check func(store.ContainerConfig) bool
	}{
		{"egress off", ipc.ConfigureGroupArgs{Folder: "family", EgressMode: ptr("none"), EgressAllow: &[]string{}},
			func(c store.ContainerConfig) bool { return c.Egress.Mode == store.EgressNone }},
		{"a rule removed", ipc.ConfigureGroupArgs{Folder: "family", EgressAllow: &[]string{}},
			func(c store.ContainerConfig) bool { return len(c.Egress.Allow) == 0 }},
		{"the default narrowed to an allowlist of web hosts", ipc.ConfigureGroupArgs{Folder: "main", EgressMode: ptr("allowlist"), EgressAllow: &[]string{"github.com", "*.example.org"}},
			func(c store.ContainerConfig) bool { return c.Egress.Mode == store.EgressAllowlist }},
		{"lower memory", ipc.ConfigureGroupArgs{Folder: "family", MemoryMB: ptr(512)},
			func(c store.ContainerConfig) bool { return c.MemoryMB == 512 }},
		{"lower limits below the defaults", ipc.ConfigureGroupArgs{Folder: "main", MemoryMB: ptr(1024), CPUs: ptr(0.5), PidsLimit: ptr(128), TimeoutSeconds: ptr(60)},
			func(c store.ContainerConfig) bool {
				return c.MemoryMB == 1024 && c.CPUs == 0.5 && c.PidsLimit == 128 && c.TimeoutSeconds == 60
			}},
		{"mounts removed", ipc.ConfigureGroupArgs{Folder: "family", AdditionalMounts: &[]ipc.ExtraMount{}},
			func(c store.ContainerConfig) bool { return len(c.AdditionalMounts) == 0 }},
		{"unchanged values repeated", ipc.ConfigureGroupArgs{Folder: "family", MemoryMB: ptr(1024), Name: ptr("Family!")},
			func(c store.ContainerConfig) bool { return c.MemoryMB == 1024 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := w.group(t, c.args.Folder)
			if _, err := w.model("configure_group", c.args); err != nil {
				t.Fatalf("narrowing refused: %v", err)
			}
			if got := w.group(t, c.args.Folder).Config; !c.check(got) {
				t.Errorf("stored config %+v", got)
			}
			w.st.PutGroup(w.ctx, before)
		})
	}
}

// R6: main's model registers only chats a channel has reported; the owner
// may register any chat a channel serves.
func TestRegisterGroupOnlyReportedChatsForTheModel(t *testing.T) {
	w := newGroupWorld(t)
	_, err := w.model("register_group", ipc.RegisterGroupArgs{JID: "120363000000000001@g.us", Folder: "stranger", Name: "S"})
	if err == nil || !strings.Contains(err.Error(), "not permitted") || !strings.Contains(err.Error(), "nanoclaw groups add stranger --jid 120363000000000001@g.us") {
		t.Fatalf("an unreported chat: %v", err)
	}
	if _, found, _ := w.st.GetGroup(w.ctx, "stranger"); found {
		t.Fatal("the refused registration was stored")
	}
	if err := w.st.UpsertChat(w.ctx, store.Chat{JID: "120363000000000001@g.us", Channel: "whatsapp", IsGroup: true, LastActivity: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.model("register_group", ipc.RegisterGroupArgs{JID: "120363000000000001@g.us", Folder: "stranger", Name: "S"}); err != nil {
		t.Fatalf("a reported chat: %v", err)
	}
	if _, err := w.owner("register_group", ipc.RegisterGroupArgs{JID: "local:work", Folder: "work"}); err != nil {
		t.Fatalf("the owner's registration of a local chat: %v", err)
	}
}

// R6: main's model cannot drop a group's own sandbox by unregistering it and
// registering its chat again; a group with the defaults it may unregister.
func TestModelCannotUnregisterARestrictedGroup(t *testing.T) {
	w := newGroupWorld(t)
	_, err := w.model("unregister_group", ipc.FolderArgs{Folder: "family"})
	if err == nil || !strings.Contains(err.Error(), "not permitted") || !strings.Contains(err.Error(), "nanoclaw groups remove family") {
		t.Fatalf("unregistering a group with its own settings: %v", err)
	}
	w.group(t, "family") // still there
	if _, err := w.owner("register_group", ipc.RegisterGroupArgs{JID: "local:plain", Folder: "plain"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.model("unregister_group", ipc.FolderArgs{Folder: "plain"}); err != nil {
		t.Errorf("unregistering a group with the defaults: %v", err)
	}
	if _, err := w.owner("unregister_group", ipc.FolderArgs{Folder: "family"}); err != nil {
		t.Errorf("the owner unregistering family: %v", err)
	}
}

// R6: main's model cannot hand an unregistered group's folder — its files,
// its Claude state, its container user — to another chat: a folder that
// groups/ or sessions/ still holds is refused, naming the owner's command;
// the owner may reuse it.
func TestModelCannotReuseAnOldGroupsFolder(t *testing.T) {
	w := newGroupWorld(t)
	groupDir, claudeDir := filepath.Join(w.home, "groups", "old"), filepath.Join(w.home, "sessions", "old", ".claude")
	if _, err := w.owner("register_group", ipc.RegisterGroupArgs{JID: "local:old", Folder: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(claudeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(groupDir, "secrets.txt"), []byte("the old group's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w.model("unregister_group", ipc.FolderArgs{Folder: "old"}); err != nil {
		t.Fatal(err)
	}
	const stranger = "120363000000000002@g.us"
	if err := w.st.UpsertChat(w.ctx, store.Chat{JID: stranger, Channel: "whatsapp", IsGroup: true, LastActivity: time.Now()}); err != nil {
		t.Fatal(err)
	}
	refused := func(what, path string) {
		t.Helper()
		_, err := w.model("register_group", ipc.RegisterGroupArgs{JID: stranger, Folder: "old", Name: "Strangers"})
		for _, want := range []string{"not permitted", `folder "old"`, path, "nanoclaw groups add old --jid " + stranger} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: %v, want a refusal saying %q", what, err, want)
			}
		}
		if _, found, _ := w.st.GetGroup(w.ctx, "old"); found {
			t.Fatalf("%s: the refused registration was stored", what)
		}
		if _, bound, _ := w.st.GroupForChat(w.ctx, stranger); bound {
			t.Fatalf("%s: the refused chat was bound", what)
		}
	}
	refused("the old folder", groupDir)
	if err := os.RemoveAll(groupDir); err != nil {
		t.Fatal(err)
	}
	refused("the old Claude state alone", filepath.Join(w.home, "sessions", "old"))
	if err := os.RemoveAll(filepath.Join(w.home, "sessions", "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", groupDir); err != nil {
		t.Fatal(err)
	}
	refused("a dangling link in its place", groupDir)
	if err := os.Remove(groupDir); err != nil {
		t.Fatal(err)
	}

	// A folder never used is the model's to register.
	if _, err := w.model("register_group", ipc.RegisterGroupArgs{JID: stranger, Folder: "strangers", Name: "Strangers"}); err != nil {
		t.Fatalf("a fresh folder: %v", err)
	}
	// The owner may reuse a folder, files and all.
	if err := os.MkdirAll(groupDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := w.owner("register_group", ipc.RegisterGroupArgs{JID: "local:again", Folder: "old"}); err != nil {
		t.Fatalf("the owner reusing the folder: %v", err)
	}
}

// R14: chat ids are checked by their channel's grammar when registered.
func TestRegisterGroupRejectsBadChatIDs(t *testing.T) {
	w := newGroupWorld(t)
	for _, jid := range []string{"local:../x", "local:", "local:Work", "work@g.us", "123@broadcast", "123:4@s.whatsapp.net"} {
		_, err := w.owner("register_group", ipc.RegisterGroupArgs{JID: jid, Folder: "work"})
		if err == nil {
			t.Errorf("chat id %q accepted", jid)
			continue
		}
		if !strings.Contains(err.Error(), jid) {
			t.Errorf("chat id %q: the error %q does not name it", jid, err)
		}
		if _, found, _ := w.st.GetGroup(w.ctx, "work"); found {
			t.Fatalf("chat id %q: a group was stored", jid)
		}
	}
}

// R14: a mount is judged by the allowlist when it is set, through the same
// path the CLI and the control socket take; a refused one stores nothing.
func TestMountSettingsJudgedWhenSet(t *testing.T) {
	w := newGroupWorld(t)
	home, _ := os.UserHomeDir()
	bad := map[string]ipc.ExtraMount{
		"/":                        {HostPath: "/", ContainerPath: "root"},
		"/etc":                     {HostPath: "/etc", ContainerPath: "etc"},
		"~/.ssh":                   {HostPath: "~/.ssh", ContainerPath: "ssh"},
		"an allowed .ssh":          {HostPath: filepath.Join(w.allowed, ".ssh"), ContainerPath: "ssh"},
		"the data home":            {HostPath: w.home, ContainerPath: "data"},
		"inside the data home":     {HostPath: w.home + "/groups", ContainerPath: "data"},
		"the config dir":           {HostPath: w.conf, ContainerPath: "conf"},
		"a parent of both":         {HostPath: filepath.Dir(w.home), ContainerPath: "home"},
		"relative":                 {HostPath: "projects/code", ContainerPath: "code"},
		"~user":                    {HostPath: "~root/code", ContainerPath: "code"},
		"container path .":         {HostPath: w.allowed + "/code", ContainerPath: "."},
		"container path a:b":       {HostPath: w.allowed + "/code", ContainerPath: "a:b"},
		"not under a root":         {HostPath: home, ContainerPath: "home"},
		"missing":                  {HostPath: w.allowed + "/gone", ContainerPath: "gone"},
		"second of two is refused": {HostPath: "/etc", ContainerPath: "etc2"},
	}
	os.MkdirAll(filepath.Join(w.allowed, ".ssh"), 0o700)
	for name, m := range bad {
		t.Run(name, func(t *testing.T) {
			before := w.group(t, "family")
			list := []ipc.ExtraMount{m}
			if name == "second of two is refused" {
				list = []ipc.ExtraMount{{HostPath: w.allowed + "/notes", ContainerPath: "notes"}, m}
			}
			_, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", AdditionalMounts: &list, MemoryMB: ptr(4096)})
			if err == nil {
				t.Fatalf("mount %+v stored", m)
			}
			if after := w.group(t, "family"); !reflect.DeepEqual(before, after) {
				t.Errorf("the refused setting changed the group (memory too: nothing is half-applied): %+v", after.Config)
			}
		})
	}
	// The control: an allowed mount is stored.
	ok := []ipc.ExtraMount{{HostPath: w.allowed + "/notes", ContainerPath: "notes"}}
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", AdditionalMounts: &ok}); err != nil {
		t.Fatalf("an allowed mount: %v", err)
	}
	if got := w.group(t, "family").Config.AdditionalMounts; len(got) != 1 || got[0].ContainerPath != "notes" {
		t.Errorf("stored mounts %+v", got)
	}
}

// R17: the owner resets a group's session; the model cannot; an unknown
// folder is refused by name.
func TestResetSession(t *testing.T) {
	w := newGroupWorld(t)
	if err := w.st.SetSession(w.ctx, "family", "sess-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.model("reset_session", ipc.FolderArgs{Folder: "family"}); err == nil || !strings.Contains(err.Error(), "unknown tool") {
		t.Errorf("main's model reset a session: %v", err)
	}
	if id, _ := w.st.Session(w.ctx, "family"); id != "sess-1" {
		t.Fatalf("session after the model's attempt: %q", id)
	}
	res, err := w.owner("reset_session", ipc.FolderArgs{Folder: "family"})
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := res.(ipc.GroupInfo); !ok || !strings.Contains(info.Note, "session cleared") {
		t.Errorf("result %+v", res)
	}
	if id, _ := w.st.Session(w.ctx, "family"); id != "" {
		t.Errorf("session after the reset: %q", id)
	}
	if _, err := w.owner("reset_session", ipc.FolderArgs{Folder: "nobody"}); err == nil || !strings.Contains(err.Error(), `no registered group "nobody"`) {
		t.Errorf("unknown folder: %v", err)
	}
}

func TestSetCommandQuotes(t *testing.T) {
	got := setCommand(ipc.ConfigureGroupArgs{Folder: "family", Name: ptr("Bob's group"), CPUs: ptr(1.5), EgressAllow: &[]string{"a.com", "10.0.0.0/8:*"},
		AdditionalMounts: &[]ipc.ExtraMount{{HostPath: "/srv/x", ContainerPath: "x", ReadOnly: true}}})
	want := `nanoclaw groups set family 'name=Bob'\''s group' cpus=1.5 'allow=a.com,10.0.0.0/8:*' 'mounts=[{"host_path":"/srv/x","container_path":"x","readonly":true}]'`
	if got != want {
		t.Errorf("setCommand =\n%s\nwant\n%s", got, want)
	}
}

// Reactions and trigger_senders are set and shown; reactions on is stored
// as the default, and a bad sender id changes nothing.
func TestChatSettings(t *testing.T) {
	w := newGroupWorld(t)
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Reactions: ptr(false),
		TriggerSenders: &[]string{"491511@s.whatsapp.net", "491512@s.whatsapp.net"}}); err != nil {
		t.Fatal(err)
	}
	g := w.group(t, "family")
	if g.Config.ReactionsOn() || !slices.Equal(g.Config.TriggerSenders, []string{"491511@s.whatsapp.net", "491512@s.whatsapp.net"}) {
		t.Fatalf("config = %+v", g.Config)
	}
	info, err := w.model("get_group", ipc.FolderArgs{Folder: "family"})
	if gi := info.(ipc.GroupInfo); err != nil || gi.Reactions || len(gi.TriggerSenders) != 2 {
		t.Errorf("get_group = %+v, %v", info, err)
	}
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", TriggerSenders: &[]string{"a b"}}); err == nil {
		t.Error("a sender id with a space was taken")
	}
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Reactions: ptr(true), TriggerSenders: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	if g := w.group(t, "family"); g.Config.Reactions != nil || len(g.Config.TriggerSenders) != 0 {
		t.Errorf("config after turning both back = %+v", g.Config)
	}
}

// trigger_senders is the owner's access control: main's model may narrow
// the list, never clear it or add to it.
func TestMainModelCannotWidenTriggerSenders(t *testing.T) {
	w := newGroupWorld(t)
	list := []string{"491511@s.whatsapp.net", "491512@s.whatsapp.net"}
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", TriggerSenders: &list}); err != nil {
		t.Fatal(err)
	}
	for _, widen := range [][]string{{}, {"491511@s.whatsapp.net", "4917@s.whatsapp.net"}} {
		_, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", TriggerSenders: &widen})
		if err == nil || !strings.Contains(err.Error(), "only the owner") || !strings.Contains(err.Error(), "trigger_senders=") {
			t.Errorf("main's model set trigger_senders %q: %v", widen, err)
		}
	}
	if _, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", TriggerSenders: &[]string{"491512@s.whatsapp.net"}}); err != nil {
		t.Errorf("main's model may narrow trigger_senders: %v", err)
	}
	if g := w.group(t, "family"); !slices.Equal(g.Config.TriggerSenders, []string{"491512@s.whatsapp.net"}) {
		t.Errorf("trigger_senders = %q", g.Config.TriggerSenders)
	}
}
