package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/skills"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

const groupsHelp = `List, add, remove and configure groups (the owner's rights, like the main group's tools).

  nanoclaw groups list                          registered groups
  nanoclaw groups available [--refresh]         every chat the channels know, registered or not
  nanoclaw groups show FOLDER                   one group's settings
  nanoclaw groups add FOLDER [--jid JID] [--name NAME] [--trigger WORD] [--no-trigger]
                                                register a chat (default local:FOLDER) as a group
  nanoclaw groups remove FOLDER                 unregister; the folder and its files are kept
  nanoclaw groups set FOLDER KEY=VALUE...       change settings: name, trigger, requires_trigger (on|off),
                                                timeout (seconds), memory_mb, cpus, pids_limit,
                                                egress (none|allowlist|ask|public), allow (comma list),
                                                approved (comma list of host:port your "always"
                                                answers added under egress ask; empty: none),
                                                mounts (JSON list of {host_path, container_path, readonly}),
                                                reactions (on|off: 👀 ✅ ❌ on the message answered),
                                                mentions (on|off: an @-mention of the account asks
                                                for an answer; on WhatsApp that is your own account),
                                                trigger_senders (comma list of sender ids who may
                                                start a run; empty: anyone in the chat),
                                                model (a Claude model id, checked with the upstream's
                                                list; default: MODEL, or Claude Code's own),
                                                day_tokens, month_tokens, day_usd, month_usd (the
                                                group's budget, UTC days and months; 0: no cap),
                                                browser (on|off: Chromium and agent-browser in
                                                its runs; build the image with
                                                'nanoclaw image build --browser')
  nanoclaw groups reset-session FOLDER          forget the group's Claude Code session: its next
                                                container starts a new conversation

Folder names: lowercase letters, digits and '-', at most 63, not "global".
Skills: put a folder with SKILL.md (and any files) in groups/global/skills/
(every group) or groups/FOLDER/skills/ under the data home; each run gets a
read-only copy, and 'groups show' lists them.
Chat ids: local:FOLDER, or WhatsApp's NUMBER@s.whatsapp.net, NUMBER@lid, ID@g.us.
Only here can a sandbox be widened (egress rules, mounts, limits above the
defaults, the browser): the main group's tools may only narrow one. Each mount is checked
against the mount allowlist when it is set, and again at every run.
It talks to the running daemon; when the daemon is down it uses the database directly.`

func (m *Main) runGroups(ctx context.Context, args []string) error {
	fs := m.flagSet("groups", "list|available|show|add|remove|set|reset-session [FOLDER] [options]", groupsHelp)
	jid := fs.String("jid", "", "add: the chat to register (default local:FOLDER)")
	name := fs.String("name", "", "add: display name (default: the folder)")
	trigger := fs.String("trigger", "", "add: trigger word (default @NAME of the assistant)")
	noTrigger := fs.Bool("no-trigger", false, "add: answer every message, not only those with the trigger")
	refresh := fs.Bool("refresh", false, "available: ask the channels for their chats first")
	var rest []string
	for remaining := args; ; {
		if err := m.parse(fs, remaining); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		remaining = fs.Args()[1:]
	}
	if len(rest) == 0 {
		return usagef("which groups command? list, available, show, add, remove, set or reset-session")
	}
	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}
	verb, rest := rest[0], rest[1:]
	folder := ""
	switch verb {
	case "show", "add", "remove", "set", "reset-session":
		if len(rest) == 0 {
			return usagef("%s needs a group folder", verb)
		}
		folder = rest[0]
	}
	switch verb {
	case "list":
		var groups []ipc.GroupInfo
		if err := m.ownerTool(ctx, cfg, "list_groups", ipc.NoArgs{}, &groups); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FOLDER\tNAME\tTRIGGER\tCHATS")
		for _, g := range groups {
			trig := g.Trigger
			if g.IsMain {
				trig = "(main: every message)"
			} else if !g.RequiresTrigger {
				trig = "(every message)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Folder, sanitize.Name(g.Name), sanitize.Name(trig), strings.Join(g.Chats, ", "))
		}
		return tw.Flush()
	case "available":
		tool := "list_available_groups"
		if *refresh {
			tool = "refresh_groups"
		}
		var chats []ipc.AvailableChat
		if err := m.ownerTool(ctx, cfg, tool, ipc.NoArgs{}, &chats); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHAT\tNAME\tCHANNEL\tLAST ACTIVITY\tGROUP")
		for _, c := range chats {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", sanitize.Name(c.JID), sanitize.Name(c.Name), c.Channel, c.LastActivity.In(cfg.Timezone).Format("2006-01-02 15:04"), c.Folder)
		}
		return tw.Flush()
	case "show":
		var g ipc.GroupInfo
		if err := m.ownerTool(ctx, cfg, "get_group", ipc.FolderArgs{Folder: folder}, &g); err != nil {
			return err
		}
		m.printGroup(g)
		// Each extra mount's verdict, as the next run will see it.
		if len(g.AdditionalMounts) > 0 {
			al, err := mounts.LoadAllowlist(cfg.AllowlistPath())
			if err != nil {
				return err
			}
			for _, mt := range g.AdditionalMounts {
				v := al.Check(store.Mount{HostPath: mt.HostPath, ContainerPath: mt.ContainerPath, ReadOnly: mt.ReadOnly}, g.IsMain, protectedPaths(cfg)...)
				fmt.Fprintf(m.Stdout, "verdict:   %s\n", mounts.Describe(v))
			}
		}
		return m.printSkills(cfg, g.Folder)
	case "add":
		a := ipc.RegisterGroupArgs{JID: cmp.Or(*jid, "local:"+folder), Name: *name, Folder: folder, Trigger: *trigger}
		if *noTrigger {
			f := false
			a.RequiresTrigger = &f
		}
		var g ipc.GroupInfo
		if err := m.ownerTool(ctx, cfg, "register_group", a, &g); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "registered %s (%s) as group %q\n", a.JID, g.Name, g.Folder)
		return nil
	case "remove":
		var g ipc.GroupInfo
		if err := m.ownerTool(ctx, cfg, "unregister_group", ipc.FolderArgs{Folder: folder}, &g); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "group %q %s\n", folder, g.Note)
		return nil
	case "set":
		if len(rest) < 2 {
			return usagef("set needs KEY=VALUE settings after the folder")
		}
		a, err := parseSettings(folder, rest[1:])
		if err != nil {
			return err
		}
		if a.Model != nil && *a.Model != "" {
			if err := m.checkModel(ctx, cfg, *a.Model); err != nil {
				return err
			}
		}
		var g ipc.GroupInfo
		if err := m.ownerTool(ctx, cfg, "configure_group", a, &g); err != nil {
			return err
		}
		m.printGroup(g)
		return nil
	case "reset-session":
		var g ipc.GroupInfo
		if err := m.ownerTool(ctx, cfg, "reset_session", ipc.FolderArgs{Folder: folder}, &g); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "group %q: %s\n", folder, g.Note)
		return nil
	}
	return usagef("unknown groups command %q (list, available, show, add, remove, set, reset-session)", verb)
}

// parseSettings turns KEY=VALUE words into configure_group's arguments.
func parseSettings(folder string, words []string) (ipc.ConfigureGroupArgs, error) {
	a := ipc.ConfigureGroupArgs{Folder: folder}
	for _, w := range words {
		key, value, ok := strings.Cut(w, "=")
		if !ok {
			return a, usagef("setting %q is not KEY=VALUE", w)
		}
		switch key {
		case "name":
			a.Name = &value
		case "trigger":
			a.Trigger = &value
		case "requires_trigger", "browser", "reactions", "mentions":
			on, ok := map[string]bool{"on": true, "off": false}[strings.ToLower(value)]
			if !ok {
				var err error
				if on, err = strconv.ParseBool(value); err != nil { // true, false, 1, 0, …
					return a, usagef("%s: %q is not on or off (or true, false)", key, value)
				}
			}
			*map[string]**bool{"requires_trigger": &a.RequiresTrigger, "browser": &a.Browser,
				"reactions": &a.Reactions, "mentions": &a.Mentions}[key] = &on
		case "timeout", "memory_mb", "pids_limit":
			n, err := strconv.Atoi(value)
			if err != nil {
				return a, usagef("%s: %q is not a whole number", key, value)
			}
			*map[string]**int{"timeout": &a.TimeoutSeconds, "memory_mb": &a.MemoryMB, "pids_limit": &a.PidsLimit}[key] = &n
		case "cpus":
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return a, usagef("cpus: %q is not a number", value)
			}
			a.CPUs = &f
		case "egress":
			a.EgressMode = &value
		case "allow":
			a.EgressAllow = new(commaList(value))
		case "approved":
			a.ApprovedAllow = new(commaList(value))
		case "trigger_senders":
			a.TriggerSenders = new(commaList(value))
		case "model":
			if value == "default" {
				value = ""
			} else if err := ipc.ValidateModel(value); err != nil {
				return a, usagef("%v", err)
			}
			a.Model = &value
		case "day_tokens", "month_tokens":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return a, usagef("%s: %q is not a whole number of tokens (0: no cap)", key, value)
			}
			a.Budget = cmp.Or(a.Budget, &ipc.BudgetArgs{})
			*map[string]**int64{"day_tokens": &a.Budget.DayTokens, "month_tokens": &a.Budget.MonthTokens}[key] = &n
		case "day_usd", "month_usd":
			f, err := strconv.ParseFloat(value, 64)
			if err != nil || !(f >= 0) || math.IsInf(f, 0) {
				return a, usagef("%s: %q is not an amount of dollars (0: no cap)", key, value)
			}
			a.Budget = cmp.Or(a.Budget, &ipc.BudgetArgs{})
			*map[string]**float64{"day_usd": &a.Budget.DayUSD, "month_usd": &a.Budget.MonthUSD}[key] = &f
		case "mounts":
			var mounts []ipc.ExtraMount
			if err := ipc.DecodeStrict([]byte(value), &mounts); err != nil { // R14: nothing may follow the list
				return a, usagef("mounts: want a JSON list of {host_path, container_path, readonly}: %v", err)
			}
			a.AdditionalMounts = &mounts
		default:
			return a, usagef("unknown setting %q (name, trigger, requires_trigger, timeout, memory_mb, cpus, pids_limit, egress, allow, mounts, reactions, mentions, trigger_senders, model, day_tokens, month_tokens, day_usd, month_usd, approved, browser)", key)
		}
	}
	return a, nil
}

// commaList is the non-empty items of a comma-separated list.
func commaList(value string) []string {
	list := []string{}
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
	}
	return list
}

func (m *Main) printGroup(g ipc.GroupInfo) {
	w := m.Stdout
	fmt.Fprintf(w, "folder:    %s\nname:      %s\nmain:      %v\ntrigger:   %s (required: %v)\nchats:     %s\nadded:     %s\n",
		g.Folder, sanitize.Name(g.Name), g.IsMain, sanitize.Name(g.Trigger), g.RequiresTrigger, strings.Join(g.Chats, ", "), g.AddedAt.Format("2006-01-02"))
	orDefault := func(v any, zero bool) string {
		if zero {
			return "default"
		}
		return fmt.Sprint(v)
	}
	fmt.Fprintf(w, "timeout:   %s s\nmemory:    %s MiB\ncpus:      %s\npids:      %s\n",
		orDefault(g.TimeoutSeconds, g.TimeoutSeconds == 0), orDefault(g.MemoryMB, g.MemoryMB == 0),
		orDefault(g.CPUs, g.CPUs == 0), orDefault(g.PidsLimit, g.PidsLimit == 0))
	fmt.Fprintf(w, "egress:    %s %s\n", cmp.Or(g.EgressMode, "default (public)"), strings.Join(g.EgressAllow, ", "))
	if len(g.ApprovedAllow) > 0 {
		fmt.Fprintf(w, "approved:  %s (your \"always\" answers; mode ask only; remove with approved=)\n", strings.Join(g.ApprovedAllow, ", "))
	}
	for _, mt := range g.AdditionalMounts {
		fmt.Fprintf(w, "mount:     %s -> %s (readonly requested: %v)\n", mt.HostPath, mt.ContainerPath, mt.ReadOnly)
	}
	onOff := map[bool]string{true: "on", false: "off"}
	fmt.Fprintf(w, "reactions: %s\nmentions:  %s\ntriggers:  %s\n", onOff[g.Reactions], onOff[g.Mentions],
		cmp.Or(strings.Join(g.TriggerSenders, ", "), "anyone in the chat"))
	fmt.Fprintf(w, "model:     %s\nbudget:    %s\n", cmp.Or(g.Model, "default"), describeBudget(g.Budget))
	fmt.Fprintf(w, "browser:   %s\n", map[bool]string{true: "on (Chromium and agent-browser; image NANOCLAW_BROWSER_IMAGE)", false: "off"}[g.Browser])
}

// printSkills lists the skills the group's next run gets, as the host
// will copy them, and the ones it leaves out with why.
func (m *Main) printSkills(cfg *config.Config, folder string) error {
	list, err := skills.List(filepath.Join(cfg.GroupsDir(), "global"), filepath.Join(cfg.GroupsDir(), folder))
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintf(m.Stdout, "skills:    none (put SKILL.md folders in %s or %s)\n",
			filepath.Join(cfg.GroupsDir(), "global", "skills"), filepath.Join(cfg.GroupsDir(), folder, "skills"))
		return nil
	}
	for _, s := range list {
		from := s.From
		if s.Overrides {
			from += ", replaces the global one"
		}
		switch {
		case s.Problem != "" && s.Name == "":
			fmt.Fprintf(m.Stdout, "skills:    none from %s: %s\n", s.From, sanitize.Name(s.Problem))
		case s.Problem != "":
			fmt.Fprintf(m.Stdout, "skill:     %s (%s) LEFT OUT: %s\n", sanitize.Name(s.Name), from, sanitize.Name(s.Problem))
		default:
			fmt.Fprintf(m.Stdout, "skill:     %s (%s): %s\n", sanitize.Name(s.Name), from, sanitize.Name(s.Description))
		}
	}
	return nil
}
