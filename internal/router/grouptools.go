package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
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

func (r *Router) groupTool(ctx context.Context, caller gateway.Caller, name string, args json.RawMessage) (any, error) {
	if !caller.IsMain {
		return nil, errors.New("not permitted: only the main group manages groups")
	}
	switch name {
	case "register_group":
		var a ipc.RegisterGroupArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		return r.registerGroup(ctx, a)
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
		return nil, fmt.Errorf("no registered group %q", a.Folder)
	}
	switch name {
	case "get_group":
		return r.groupInfo(ctx, g), nil
	case "configure_group":
		if err := applyConfig(&g, c); err != nil {
			return nil, err
		}
		if err := r.st.PutGroup(ctx, g); err != nil {
			return nil, err
		}
		r.log.Info("group configured", "group", g.Folder)
		return r.groupInfo(ctx, g), nil
	case "unregister_group":
		if g.IsMain {
			return nil, errors.New("the main group cannot be unregistered")
		}
		if err := r.st.DeleteGroup(ctx, g.Folder); err != nil {
			return nil, err
		}
		info := r.groupInfo(ctx, g)
		info.Note = fmt.Sprintf("unregistered; its folder %s is kept", filepath.Join(r.opt.GroupsDir, g.Folder))
		r.log.Info("group unregistered", "group", g.Folder)
		return info, nil
	}
	return nil, fmt.Errorf("unknown tool %q", name)
}

// registerGroup registers a chat as a new group with its own folder, or
// changes nothing (never half-applied).
func (r *Router) registerGroup(ctx context.Context, a ipc.RegisterGroupArgs) (ipc.GroupInfo, error) {
	if err := r.checkFolder(a.Folder); err != nil {
		return ipc.GroupInfo{}, err
	}
	if r.channelFor(a.JID) == nil {
		return ipc.GroupInfo{}, fmt.Errorf("no channel serves chat %q (list_available_groups shows the chats there are)", a.JID)
	}
	if _, found, _ := r.st.GetGroup(ctx, a.Folder); found {
		return ipc.GroupInfo{}, fmt.Errorf("folder %q is already a registered group", a.Folder)
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
		if err := templates.WriteMemory(filepath.Join(r.opt.GroupsDir, a.Folder), templates.Group, r.opt.AssistantName, trigger); err != nil {
			r.log.Warn("write the new group's CLAUDE.md", "group", a.Folder, "err", err)
		}
	}
	r.log.Info("group registered", "group", a.Folder, "chat", a.JID)
	return r.groupInfo(ctx, g), nil
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
