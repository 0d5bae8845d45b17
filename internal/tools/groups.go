package tools

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/templates"
)

// The group tools are main's powers over groups, and the owner's; the
// registry gives them to no other group (call refuses it).

// listGroups answers the group tools without arguments.
func (s *Set) listGroups(ctx context.Context, name string) (any, error) {
	switch name {
	case "list_available_groups":
		return s.availableChats(ctx)
	case "refresh_groups":
		s.opt.Chats.Refresh(ctx)
		return s.availableChats(ctx)
	case "list_groups":
		groups, err := s.st.ListGroups(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]ipc.GroupInfo, 0, len(groups))
		for _, g := range groups {
			out = append(out, s.groupInfo(ctx, g))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown tool %q", name)
}

// changeGroup answers the group tools that name a group: for main's model,
// or for the owner. c holds configure_group's settings.
func (s *Set) changeGroup(ctx context.Context, by store.TaskActor, name, folder string, c *ipc.ConfigureGroupArgs) (any, error) {
	owner := by == store.ActorOwner
	g, found, err := s.st.GetGroup(ctx, folder)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no registered group %q (list_groups, or 'nanoclaw groups list', shows them)", folder)
	}
	switch name {
	case "get_group":
		return s.groupInfo(ctx, g), nil
	case "configure_group":
		before := g.Config
		if err := applyConfig(&g, *c); err != nil {
			return nil, err
		}
		// R6: main's model acts within sandboxes; it may tighten one, never
		// loosen it.
		// A budget bounds what the owner pays: main's model, which a
		// prompt may steer, neither raises nor lowers it.
		if g.Config.Budget != before.Budget && !owner {
			return nil, fmt.Errorf("not permitted: group %q's budget is the owner's to set, on the host: %s", g.Folder, budgetCommand(g.Folder, g.Config.Budget))
		}
		if what := widening(before, g.Config, s.opt.Defaults); what != "" && !owner {
			return nil, fmt.Errorf("not permitted: %s, which would widen the sandbox of group %q; only the owner can do that, on the host: %s",
				what, g.Folder, setCommand(*c))
		}
		if c.AdditionalMounts != nil {
			// R14: a mount is judged when it is set, as a run would judge
			// it, so nothing is stored that the next run refuses.
			if _, err := s.opt.Mounts.CheckAll(g.Config.AdditionalMounts, g.IsMain); err != nil {
				return nil, fmt.Errorf("group %q not changed: %w", g.Folder, err)
			}
		}
		if err := s.st.PutGroup(ctx, g); err != nil {
			return nil, err
		}
		s.log.Info("group configured", "group", g.Folder, "by", by)
		return s.groupInfo(ctx, g), nil
	case "reset_session":
		if err := s.st.ClearSession(ctx, g.Folder); err != nil {
			return nil, err
		}
		info := s.groupInfo(ctx, g)
		info.Note = "session cleared: the group's next container starts a new Claude Code conversation (a container still running keeps its own until it ends)"
		s.log.Info("group session reset", "group", g.Folder, "by", by)
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
		if err := s.st.DeleteGroup(ctx, g.Folder); err != nil {
			return nil, err
		}
		info := s.groupInfo(ctx, g)
		info.Note = fmt.Sprintf("unregistered; its folder %s is kept, and only the owner can register a chat to it again", filepath.Join(s.opt.GroupsDir, g.Folder))
		s.log.Info("group unregistered", "group", g.Folder)
		return info, nil
	}
	return nil, fmt.Errorf("unknown tool %q", name)
}

// registerGroup registers a chat as a new group with its own folder, or
// changes nothing (never half-applied). Main's model may bind only a chat
// a channel has reported (R6); the owner any chat a channel serves.
func (s *Set) registerGroup(ctx context.Context, a ipc.RegisterGroupArgs, by store.TaskActor) (ipc.GroupInfo, error) {
	owner := by == store.ActorOwner
	if err := s.checkFolder(a.Folder); err != nil {
		return ipc.GroupInfo{}, err
	}
	if err := store.ValidateChatID(a.JID); err != nil { // R14
		return ipc.GroupInfo{}, err
	}
	if !s.opt.Chats.Serves(a.JID) {
		return ipc.GroupInfo{}, fmt.Errorf("no channel serves chat %q (list_available_groups shows the chats there are)", a.JID)
	}
	if !owner {
		_, reported, err := s.st.GetChat(ctx, a.JID)
		if err != nil {
			return ipc.GroupInfo{}, err
		}
		if !reported {
			return ipc.GroupInfo{}, fmt.Errorf("not permitted: no channel has reported chat %q (list_available_groups shows the chats there are); the owner can register any chat, on the host: nanoclaw groups add %s --jid %s",
				a.JID, shellWord(a.Folder), shellWord(a.JID))
		}
	}
	if _, found, _ := s.st.GetGroup(ctx, a.Folder); found {
		return ipc.GroupInfo{}, fmt.Errorf("folder %q is already a registered group", a.Folder)
	}
	if !owner {
		if err := s.unusedFolder(a.Folder, a.JID); err != nil {
			return ipc.GroupInfo{}, err
		}
	}
	if g, bound, _ := s.st.GroupForChat(ctx, a.JID); bound {
		return ipc.GroupInfo{}, fmt.Errorf("chat %s already reaches group %q", a.JID, g.Folder)
	}
	trigger := cmp.Or(a.Trigger, "@"+s.opt.AssistantName)
	g := store.Group{Folder: a.Folder, Name: cmp.Or(strings.TrimSpace(a.Name), a.Folder), Trigger: trigger,
		RequiresTrigger: a.RequiresTrigger == nil || *a.RequiresTrigger, AddedAt: time.Now()}
	if err := s.st.PutGroup(ctx, g); err != nil {
		return ipc.GroupInfo{}, err
	}
	if err := s.st.BindChat(ctx, a.JID, a.Folder); err != nil {
		s.st.DeleteGroup(context.WithoutCancel(ctx), a.Folder) // nothing half-applied
		return ipc.GroupInfo{}, err
	}
	if s.opt.GroupsDir != "" {
		if err := templates.WriteMemory(s.opt.GroupsDir, a.Folder, templates.Group, s.opt.AssistantName, trigger); err != nil {
			s.log.Warn("write the new group's CLAUDE.md", "group", a.Folder, "err", err)
		}
	}
	s.log.Info("group registered", "group", a.Folder, "chat", a.JID, "by", by)
	return s.groupInfo(ctx, g), nil
}

// unusedFolder refuses a folder that an unregistered group left on disk.
// R6: unregistering keeps a group's folder and Claude state, so main's
// model could otherwise hand an old group's files, conversations and
// container user to the participants of another chat. Only the owner reuses
// a folder. The paths checked are the host's own directories' entries:
// nothing inside the folder is opened, and a link counts as there.
func (s *Set) unusedFolder(folder, jid string) error {
	for _, dir := range []string{s.opt.GroupsDir, s.opt.SessionsDir} {
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
func (s *Set) checkFolder(folder string) error {
	if err := store.ValidateFolder(folder); err != nil {
		return err
	}
	if s.opt.GroupsDir == "" {
		return nil
	}
	base, err := filepath.EvalSymlinks(s.opt.GroupsDir)
	if err != nil {
		return nil // no groups directory yet: nothing to escape through
	}
	real, err := filepath.EvalSymlinks(filepath.Join(s.opt.GroupsDir, folder))
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

func (s *Set) availableChats(ctx context.Context) ([]ipc.AvailableChat, error) {
	chats, err := s.st.ListChats(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ipc.AvailableChat, 0, len(chats))
	for _, c := range chats {
		ac := ipc.AvailableChat{JID: c.JID, Name: c.Name, Channel: c.Channel, IsGroup: c.IsGroup, LastActivity: c.LastActivity}
		if g, bound, err := s.st.GroupForChat(ctx, c.JID); err == nil && bound {
			ac.Registered, ac.Folder = true, g.Folder
		}
		out = append(out, ac)
	}
	return out, nil
}

func (s *Set) groupInfo(ctx context.Context, g store.Group) ipc.GroupInfo {
	chats, _ := s.st.ChatsOfGroup(ctx, g.Folder)
	info := ipc.GroupInfo{Folder: g.Folder, Name: g.Name, Trigger: g.Trigger, RequiresTrigger: g.RequiresTrigger,
		IsMain: g.IsMain, Chats: chats, AddedAt: g.AddedAt, TimeoutSeconds: g.Config.TimeoutSeconds,
		MemoryMB: g.Config.MemoryMB, CPUs: g.Config.CPUs, PidsLimit: g.Config.PidsLimit,
		EgressMode: string(g.Config.Egress.Mode), EgressAllow: g.Config.Egress.Allow, ApprovedAllow: g.Config.ApprovedAllow,
		Reactions: g.Config.ReactionsOn(), Mentions: g.Config.MentionsOn(), TriggerSenders: g.Config.TriggerSenders,
		Model: g.Config.Model, Budget: ipc.Budget(g.Config.Budget), Browser: g.Config.Browser}
	for _, m := range g.Config.AdditionalMounts {
		info.AdditionalMounts = append(info.AdditionalMounts, ipc.ExtraMount(m))
	}
	return info
}

// applyConfig changes g by c; PutGroup validates the result whole.
func applyConfig(g *store.Group, c ipc.ConfigureGroupArgs) error {
	if g.IsMain && c.RequiresTrigger != nil && *c.RequiresTrigger {
		return errors.New("the main group answers every message; it cannot require a trigger")
	}
	if c.Name != nil {
		g.Name = strings.TrimSpace(*c.Name)
	}
	if c.EgressMode != nil {
		g.Config.Egress.Mode = store.EgressMode(*c.EgressMode)
	}
	if c.AdditionalMounts != nil {
		g.Config.AdditionalMounts = nil
		for _, m := range *c.AdditionalMounts {
			g.Config.AdditionalMounts = append(g.Config.AdditionalMounts, store.Mount(m))
		}
	}
	set(&g.Trigger, c.Trigger)
	set(&g.RequiresTrigger, c.RequiresTrigger)
	set(&g.Config.TimeoutSeconds, c.TimeoutSeconds)
	set(&g.Config.MemoryMB, c.MemoryMB)
	set(&g.Config.CPUs, c.CPUs)
	set(&g.Config.PidsLimit, c.PidsLimit)
	set(&g.Config.Egress.Allow, c.EgressAllow)
	set(&g.Config.ApprovedAllow, c.ApprovedAllow)
	if c.Reactions != nil {
		g.Config.Reactions = nil // on is the default, and is stored as such
		if !*c.Reactions {
			g.Config.Reactions = c.Reactions
		}
	}
	if c.Mentions != nil {
		g.Config.Mentions = nil
		if !*c.Mentions {
			g.Config.Mentions = c.Mentions
		}
	}
	set(&g.Config.TriggerSenders, c.TriggerSenders)
	set(&g.Config.Browser, c.Browser)
	if c.Model != nil {
		// A model changes what the group's runs cost, not what they reach:
		// main's model may choose it. Its form is checked here; whether the
		// upstream knows it, by the owner's CLI, which holds the credential.
		if *c.Model != "" {
			if err := ipc.ValidateModel(*c.Model); err != nil {
				return err
			}
		}
		g.Config.Model = *c.Model
	}
	if b := c.Budget; b != nil {
		set(&g.Config.Budget.DayTokens, b.DayTokens)
		set(&g.Config.Budget.MonthTokens, b.MonthTokens)
		set(&g.Config.Budget.DayUSD, b.DayUSD)
		set(&g.Config.Budget.MonthUSD, b.MonthUSD)
	}
	return g.Validate()
}

// set copies *v to *dst when v is given.
func set[T any](dst, v *T) {
	if v != nil {
		*dst = *v
	}
}

// budgetCommand is the owner's command that sets budget b on folder.
func budgetCommand(folder string, b store.Budget) string {
	return fmt.Sprintf("nanoclaw groups set %s day_tokens=%d month_tokens=%d day_usd=%v month_usd=%v",
		shellWord(folder), b.DayTokens, b.MonthTokens, b.DayUSD, b.MonthUSD)
}
