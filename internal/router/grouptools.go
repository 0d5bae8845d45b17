package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/templates"
)

// groupTools are main's powers over groups. Every other caller gets "not
// permitted", whatever the arguments say.
var groupTools = map[string]bool{
	"register_group": true, "list_available_groups": true, "refresh_groups": true,
	"list_groups": true, "get_group": true, "configure_group": true, "unregister_group": true,
}

// ownerOnlyTools are commands of the owner that no model may call, not even
// main's.
var ownerOnlyTools = map[string]bool{"reset_session": true}

// OwnerCall answers the owner's commands — the CLI, through the control
// socket or on the database when the daemon is down: every tool with the
// main group's rights, and besides what no model may do (R6): widen a
// group's sandbox, bind a chat no channel has reported, reset a group's
// session. No gateway socket leads here; a container's calls come in
// through Call.
func (r *Router) OwnerCall(ctx context.Context, name string, args json.RawMessage) (any, error) {
	main, found, err := r.st.MainGroup(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errors.New("no main group yet: start nanoclaw once ('nanoclaw run')")
	}
	caller := gateway.Caller{Folder: main.Folder, IsMain: true}
	if groupTools[name] || ownerOnlyTools[name] {
		return r.groupToolBy(ctx, caller, true, name, args)
	}
	if taskTools[name] { // R20: the owner's pauses are the owner's
		return r.taskToolBy(ctx, caller, store.ActorOwner, name, args)
	}
	return r.Call(ctx, caller, name, args)
}

// groupTool is a model's group tool call, from the group of caller.
func (r *Router) groupTool(ctx context.Context, caller gateway.Caller, name string, args json.RawMessage) (any, error) {
	return r.groupToolBy(ctx, caller, false, name, args)
}

// groupToolBy runs a group tool for main's model, or for the owner when
// owner is set.
func (r *Router) groupToolBy(ctx context.Context, caller gateway.Caller, owner bool, name string, args json.RawMessage) (any, error) {
	if !caller.IsMain {
		return nil, errors.New("not permitted: only the main group manages groups")
	}
	if ownerOnlyTools[name] && !owner {
		return nil, fmt.Errorf("unknown tool %q", name)
	}
	switch name {
	case "register_group":
		var a ipc.RegisterGroupArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		return r.registerGroup(ctx, a, owner)
	case "list_available_groups":
		if err := decodeArgs(args, &ipc.NoArgs{}); err != nil {
			return nil, err
		}
		return r.availableChats(ctx)
	case "refresh_groups":
		if err := decodeArgs(args, &ipc.NoArgs{}); err != nil {
			return nil, err
		}
		r.refreshChats(ctx)
		return r.availableChats(ctx)
	case "list_groups":
		if err := decodeArgs(args, &ipc.NoArgs{}); err != nil {
			return nil, err
		}
		groups, err := r.st.ListGroups(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]ipc.GroupInfo, 0, len(groups))
		for _, g := range groups {
			out = append(out, r.groupInfo(ctx, g))
		}
		return out, nil
	}
	var a ipc.FolderArgs
	var c ipc.ConfigureGroupArgs
	if name == "configure_group" {
		if err := decodeArgs(args, &c); err != nil {
			return nil, err
		}
		a.Folder = c.Folder
	} else if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	g, found, err := r.st.GetGroup(ctx, a.Folder)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no registered group %q (list_groups, or 'nanoclaw groups list', shows them)", a.Folder)
	}
	switch name {
	case "get_group":
		return r.groupInfo(ctx, g), nil
	case "configure_group":
		before := g.Config
		if err := applyConfig(&g, c); err != nil {
			return nil, err
		}
		if !owner {
			// R6: main's model acts within sandboxes; it may tighten
			// one, never loosen it.
			if what := widening(before, g.Config, r.opt.Defaults); what != "" {
				return nil, fmt.Errorf("not permitted: %s, which would widen the sandbox of group %q; only the owner can do that, on the host: %s",
					what, g.Folder, setCommand(c))
			}
		}
		if c.AdditionalMounts != nil {
			// R14: a mount is judged when it is set, as a run would judge
			// it, so nothing is stored that the next run refuses.
			if _, err := r.opt.Mounts.CheckAll(g.Config.AdditionalMounts, g.IsMain); err != nil {
				return nil, fmt.Errorf("group %q not changed: %w", g.Folder, err)
			}
		}
		if err := r.st.PutGroup(ctx, g); err != nil {
			return nil, err
		}
		r.log.Info("group configured", "group", g.Folder, "by", by(owner))
		return r.groupInfo(ctx, g), nil
	case "reset_session":
		if err := r.st.ClearSession(ctx, g.Folder); err != nil {
			return nil, err
		}
		info := r.groupInfo(ctx, g)
		info.Note = "session cleared: the group's next container starts a new Claude Code conversation (a container still running keeps its own until it ends)"
		r.log.Info("group session reset", "group", g.Folder, "by", by(owner))
		return info, nil
	case "unregister_group":
		if g.IsMain {
			return nil, errors.New("the main group cannot be unregistered")
		}
		if !owner && !reflect.DeepEqual(g.Config, store.ContainerConfig{}) {
			// R6: registering the chat again would give it the default
			// sandbox, undoing the group's own settings.
			return nil, fmt.Errorf("not permitted: group %q has its own sandbox settings, which registering its chat again would drop; only the owner can unregister it, on the host: nanoclaw groups remove %s",
				g.Folder, shellWord(g.Folder))
		}
		if err := r.st.DeleteGroup(ctx, g.Folder); err != nil {
			return nil, err
		}
		info := r.groupInfo(ctx, g)
		info.Note = fmt.Sprintf("unregistered; its folder %s is kept, and only the owner can register a chat to it again", filepath.Join(r.opt.GroupsDir, g.Folder))
		r.log.Info("group unregistered", "group", g.Folder)
		return info, nil
	}
	return nil, fmt.Errorf("unknown tool %q", name)
}

// registerGroup registers a chat as a new group with its own folder, or
// changes nothing (never half-applied). Main's model may bind only a chat
// a channel has reported (R6); the owner any chat a channel serves.
func (r *Router) registerGroup(ctx context.Context, a ipc.RegisterGroupArgs, owner bool) (ipc.GroupInfo, error) {
	if err := r.checkFolder(a.Folder); err != nil {
		return ipc.GroupInfo{}, err
	}
	if err := store.ValidateChatID(a.JID); err != nil { // R14
		return ipc.GroupInfo{}, err
	}
	if r.channelFor(a.JID) == nil {
		return ipc.GroupInfo{}, fmt.Errorf("no channel serves chat %q (list_available_groups shows the chats there are)", a.JID)
	}
	if !owner {
		_, reported, err := r.st.GetChat(ctx, a.JID)
		if err != nil {
			return ipc.GroupInfo{}, err
		}
		if !reported {
			return ipc.GroupInfo{}, fmt.Errorf("not permitted: no channel has reported chat %q (list_available_groups shows the chats there are); the owner can register any chat, on the host: nanoclaw groups add %s --jid %s",
				a.JID, shellWord(a.Folder), shellWord(a.JID))
		}
	}
	if _, found, _ := r.st.GetGroup(ctx, a.Folder); found {
		return ipc.GroupInfo{}, fmt.Errorf("folder %q is already a registered group", a.Folder)
	}
	if !owner {
		if err := r.unusedFolder(a.Folder, a.JID); err != nil {
			return ipc.GroupInfo{}, err
		}
	}
	if g, bound, _ := r.st.GroupForChat(ctx, a.JID); bound {
		return ipc.GroupInfo{}, fmt.Errorf("chat %s already reaches group %q", a.JID, g.Folder)
	}
	trigger := a.Trigger
	if trigger == "" {
		trigger = "@" + r.opt.AssistantName
	}
	requires := true
	if a.RequiresTrigger != nil {
		requires = *a.RequiresTrigger
	}
	name := strings.TrimSpace(a.Name)
	if name == "" {
		name = a.Folder
	}
	g := store.Group{Folder: a.Folder, Name: name, Trigger: trigger, RequiresTrigger: requires, AddedAt: time.Now()}
	if err := g.Validate(); err != nil {
		return ipc.GroupInfo{}, err
	}
	if err := r.st.PutGroup(ctx, g); err != nil {
		return ipc.GroupInfo{}, err
	}
	if err := r.st.BindChat(ctx, a.JID, a.Folder); err != nil {
		r.st.DeleteGroup(context.WithoutCancel(ctx), a.Folder) // nothing half-applied
		return ipc.GroupInfo{}, err
	}
	if r.opt.GroupsDir != "" {
		if err := templates.WriteMemory(r.opt.GroupsDir, a.Folder, templates.Group, r.opt.AssistantName, trigger); err != nil {
			r.log.Warn("write the new group's CLAUDE.md", "group", a.Folder, "err", err)
		}
	}
	r.log.Info("group registered", "group", a.Folder, "chat", a.JID, "by", by(owner))
	return r.groupInfo(ctx, g), nil
}

// unusedFolder refuses a folder that an unregistered group left on disk.
// R6: unregistering keeps a group's folder and Claude state, so main's
// model could otherwise hand an old group's files, conversations and
// container user to the participants of another chat. Only the owner reuses
// a folder. The paths checked are the host's own directories' entries:
// nothing inside the folder is opened, and a link counts as there.
func (r *Router) unusedFolder(folder, jid string) error {
	for _, dir := range []string{r.opt.GroupsDir, r.opt.SessionsDir} {
		if dir == "" {
			continue
		}
		path := filepath.Join(dir, folder)
		_, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("folder %q: %w", folder, err)
		}
		return fmt.Errorf("not permitted: folder %q was used before (%s exists, with what its group left there), and a new chat must not inherit it; choose another folder, or the owner can reuse this one, on the host: nanoclaw groups add %s --jid %s",
			folder, path, shellWord(folder), shellWord(jid))
	}
	return nil
}

// checkFolder is the one folder check of every entry point (finding 5): the
// name's shape, and — where the folder exists — that it resolves inside
// the groups directory (a symlink must not lead out).
func (r *Router) checkFolder(folder string) error {
	if err := store.ValidateFolder(folder); err != nil {
		return err
	}
	if r.opt.GroupsDir == "" {
		return nil
	}
	base, err := filepath.EvalSymlinks(r.opt.GroupsDir)
	if err != nil {
		return nil // no groups directory yet: nothing to escape through
	}
	real, err := filepath.EvalSymlinks(filepath.Join(r.opt.GroupsDir, folder))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("folder %q: %w", folder, err)
	}
	if rel, err := filepath.Rel(base, real); err != nil || rel != folder {
		return fmt.Errorf("folder %q resolves to %s, outside the groups directory", folder, real)
	}
	return nil
}

func (r *Router) availableChats(ctx context.Context) ([]ipc.AvailableChat, error) {
	chats, err := r.st.ListChats(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ipc.AvailableChat, 0, len(chats))
	for _, c := range chats {
		ac := ipc.AvailableChat{JID: c.JID, Name: c.Name, Channel: c.Channel, IsGroup: c.IsGroup, LastActivity: c.LastActivity}
		if g, bound, err := r.st.GroupForChat(ctx, c.JID); err == nil && bound {
			ac.Registered, ac.Folder = true, g.Folder
		}
		out = append(out, ac)
	}
	return out, nil
}

// refreshChats asks every channel for the chats the account is in.
func (r *Router) refreshChats(ctx context.Context) {
	r.mu.Lock()
	chs := append([]channel.Channel(nil), r.channels...)
	r.mu.Unlock()
	for _, ch := range chs {
		list, err := ch.Chats(ctx)
		if err != nil {
			r.log.Warn("list chats", "channel", ch.Name(), "err", err)
			continue
		}
		for _, c := range list {
			r.OnChat(ctx, ch, c)
		}
	}
}

func (r *Router) groupInfo(ctx context.Context, g store.Group) ipc.GroupInfo {
	chats, _ := r.st.ChatsOfGroup(ctx, g.Folder)
	info := ipc.GroupInfo{Folder: g.Folder, Name: g.Name, Trigger: g.Trigger, RequiresTrigger: g.RequiresTrigger,
		IsMain: g.IsMain, Chats: chats, AddedAt: g.AddedAt, TimeoutSeconds: g.Config.TimeoutSeconds,
		MemoryMB: g.Config.MemoryMB, CPUs: g.Config.CPUs, PidsLimit: g.Config.PidsLimit,
		EgressMode: string(g.Config.Egress.Mode), EgressAllow: g.Config.Egress.Allow}
	for _, m := range g.Config.AdditionalMounts {
		info.AdditionalMounts = append(info.AdditionalMounts, ipc.ExtraMount{HostPath: m.HostPath, ContainerPath: m.ContainerPath, ReadOnly: m.ReadOnly})
	}
	return info
}

// applyConfig changes g by c; PutGroup validates the result whole.
func applyConfig(g *store.Group, c ipc.ConfigureGroupArgs) error {
	if c.Name != nil {
		g.Name = strings.TrimSpace(*c.Name)
	}
	if c.Trigger != nil {
		g.Trigger = *c.Trigger
	}
	if c.RequiresTrigger != nil {
		if g.IsMain && *c.RequiresTrigger {
			return errors.New("the main group answers every message; it cannot require a trigger")
		}
		g.RequiresTrigger = *c.RequiresTrigger
	}
	if c.TimeoutSeconds != nil {
		g.Config.TimeoutSeconds = *c.TimeoutSeconds
	}
	if c.MemoryMB != nil {
		g.Config.MemoryMB = *c.MemoryMB
	}
	if c.CPUs != nil {
		g.Config.CPUs = *c.CPUs
	}
	if c.PidsLimit != nil {
		g.Config.PidsLimit = *c.PidsLimit
	}
	if c.EgressMode != nil {
		g.Config.Egress.Mode = store.EgressMode(*c.EgressMode)
	}
	if c.EgressAllow != nil {
		g.Config.Egress.Allow = *c.EgressAllow
	}
	if c.AdditionalMounts != nil {
		g.Config.AdditionalMounts = nil
		for _, m := range *c.AdditionalMounts {
			g.Config.AdditionalMounts = append(g.Config.AdditionalMounts, store.Mount{HostPath: m.HostPath, ContainerPath: m.ContainerPath, ReadOnly: m.ReadOnly})
		}
	}
	return g.Validate()
}

// by names who made a change, for the log.
func by(owner bool) string {
	if owner {
		return "owner"
	}
	return "main"
}

// widening says what in next gives a group more than cur does, "" when
// nothing (R6): a limit above the one in force (0 is defaults'), an egress
// mode or rule that reaches more, a mount that is new or newly
// read-write. Whatever cannot be shown to narrow counts as widening.
func widening(cur, next, defaults store.ContainerConfig) string {
	limits := []struct {
		name           string
		cur, next, def float64
	}{
		{"timeout_seconds", float64(cur.TimeoutSeconds), float64(next.TimeoutSeconds), float64(defaults.TimeoutSeconds)},
		{"memory_mb", float64(cur.MemoryMB), float64(next.MemoryMB), float64(defaults.MemoryMB)},
		{"cpus", cur.CPUs, next.CPUs, defaults.CPUs},
		{"pids_limit", float64(cur.PidsLimit), float64(next.PidsLimit), float64(defaults.PidsLimit)},
	}
	for _, l := range limits {
		if l.next == l.cur {
			continue
		}
		inForce := func(v float64) float64 {
			if v == 0 {
				return l.def
			}
			return v
		}
		switch {
		case inForce(l.next) == 0 || inForce(l.cur) == 0:
			return fmt.Sprintf("%s %v cannot be compared with the default in force", l.name, l.next)
		case l.next == 0 && inForce(l.next) > l.cur:
			return fmt.Sprintf("%s 0 means the default %v, above the %v in force", l.name, l.def, l.cur)
		case inForce(l.next) > inForce(l.cur):
			return fmt.Sprintf("%s %v is above the %v in force", l.name, l.next, inForce(l.cur))
		}
	}
	if what := egressWidening(cur.Egress, next.Egress); what != "" {
		return what
	}
	for _, m := range next.AdditionalMounts {
		i := slices.IndexFunc(cur.AdditionalMounts, func(c store.Mount) bool {
			return c.HostPath == m.HostPath && c.ContainerPath == m.ContainerPath
		})
		switch {
		case i < 0:
			return fmt.Sprintf("mount %s -> %s is new", m.HostPath, m.ContainerPath)
		case cur.AdditionalMounts[i].ReadOnly && !m.ReadOnly:
			return fmt.Sprintf("mount %s -> %s would become read-write", m.HostPath, m.ContainerPath)
		}
	}
	return ""
}

// egressReach orders the egress modes by how much they reach; the default
// policy counts below an explicit public one, so a change between them
// is judged the careful way.
var egressReach = map[store.EgressMode]int{
	store.EgressNone: 0, store.EgressAllowlist: 1, store.EgressDefault: 2, store.EgressPublic: 3,
}

// egressWidening says what in next reaches more than cur, "" when nothing.
// Mode none always narrows. Otherwise the mode may not reach further, and
// every rule must be one cur has already — or, when an allowlist replaces
// the public internet, a name rule on the web ports, which opens only
// public addresses (egress.Decide) that cur reaches anyway.
func egressWidening(cur, next store.Egress) string {
	if next.Mode == store.EgressNone {
		return ""
	}
	if egressReach[next.Mode] > egressReach[cur.Mode] {
		return fmt.Sprintf("egress mode %q reaches more than %q", modeName(next.Mode), modeName(cur.Mode))
	}
	have := map[string]bool{}
	for _, s := range cur.Allow {
		if r, err := egress.ParseRule(s); err == nil {
			have[r.String()] = true
		}
	}
	for _, s := range next.Allow {
		r, err := egress.ParseRule(s)
		if err != nil {
			return fmt.Sprintf("egress rule %q: %v", s, err)
		}
		if have[r.String()] {
			continue
		}
		publicWeb := (r.Kind == egress.Domain || r.Kind == egress.Suffix) && r.Port == egress.WebPorts
		if next.Mode == store.EgressAllowlist && egressReach[cur.Mode] >= egressReach[store.EgressDefault] && publicWeb {
			continue
		}
		return fmt.Sprintf("egress rule %q is not in the group's current policy", s)
	}
	return ""
}

func modeName(m store.EgressMode) string {
	if m == store.EgressDefault {
		return "default"
	}
	return string(m)
}

// setCommand is the owner's command line that asks for the settings c
// (the inverse of the CLI's parser), for a refusal to show.
func setCommand(c ipc.ConfigureGroupArgs) string {
	words := []string{"nanoclaw", "groups", "set", shellWord(c.Folder)}
	add := func(key string, v any) { words = append(words, shellWord(key+"="+fmt.Sprint(v))) }
	if c.Name != nil {
		add("name", *c.Name)
	}
	if c.Trigger != nil {
		add("trigger", *c.Trigger)
	}
	if c.RequiresTrigger != nil {
		add("requires_trigger", *c.RequiresTrigger)
	}
	if c.TimeoutSeconds != nil {
		add("timeout", *c.TimeoutSeconds)
	}
	if c.MemoryMB != nil {
		add("memory_mb", *c.MemoryMB)
	}
	if c.CPUs != nil {
		add("cpus", strconv.FormatFloat(*c.CPUs, 'f', -1, 64))
	}
	if c.PidsLimit != nil {
		add("pids_limit", *c.PidsLimit)
	}
	if c.EgressMode != nil {
		add("egress", *c.EgressMode)
	}
	if c.EgressAllow != nil {
		add("allow", strings.Join(*c.EgressAllow, ","))
	}
	if c.AdditionalMounts != nil {
		b, _ := json.Marshal(*c.AdditionalMounts)
		add("mounts", string(b))
	}
	return strings.Join(words, " ")
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.,:/@%+-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
