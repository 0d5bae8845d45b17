package tools

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// widening says what in next gives a group more than cur does, "" when
// nothing (R6): a limit above the one in force (0 is defaults'), an egress
// mode or rule that reaches more, a mount that is new or newly
// read-write, a trigger_senders list that lets more senders start runs. Whatever cannot be shown to narrow counts as widening.
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
		inForce := func(v float64) float64 { return cmp.Or(v, l.def) }
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
	// Approved destinations are the owner's answers from main: the model
	// may drop one, never add one.
	for _, s := range next.ApprovedAllow {
		if !slices.Contains(cur.ApprovedAllow, s) {
			return fmt.Sprintf("approved destination %q is not in the group's current policy", s)
		}
	}
	// trigger_senders is the owner's access control: an empty list lets
	// anyone in the chat start runs, so only a narrower list may come from
	// main's model.
	if len(cur.TriggerSenders) > 0 {
		if len(next.TriggerSenders) == 0 {
			return "an empty trigger_senders lets anyone in the chat start a run"
		}
		for _, s := range next.TriggerSenders {
			if !slices.Contains(cur.TriggerSenders, s) {
				return fmt.Sprintf("trigger_senders would let %s start runs", s)
			}
		}
	}
	// The browser reaches no further than curl (the same egress policy),
	// but it is more to attack from a page and more memory: the owner's.
	if next.Browser && !cur.Browser {
		return "the browser is not on for this group"
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
	store.EgressNone: 0, store.EgressAllowlist: 1, store.EgressAsk: 2, store.EgressDefault: 3, store.EgressPublic: 4,
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

func modeName(m store.EgressMode) string { return cmp.Or(string(m), "default") }

// setCommand is the owner's command line that asks for the settings c
// (the inverse of the CLI's parser), for a refusal to show.
func setCommand(c ipc.ConfigureGroupArgs) string {
	var allow, approved, mounts, senders, reactions, mentions, browser *string
	if c.EgressAllow != nil {
		allow = new(strings.Join(*c.EgressAllow, ","))
	}
	if c.ApprovedAllow != nil {
		approved = new(strings.Join(*c.ApprovedAllow, ","))
	}
	if c.TriggerSenders != nil {
		senders = new(strings.Join(*c.TriggerSenders, ","))
	}
	if c.Reactions != nil {
		reactions = new(map[bool]string{true: "on", false: "off"}[*c.Reactions])
	}
	if c.Mentions != nil {
		mentions = new(map[bool]string{true: "on", false: "off"}[*c.Mentions])
	}
	if c.Browser != nil {
		browser = new(strconv.FormatBool(*c.Browser))
	}
	if c.AdditionalMounts != nil {
		b, _ := json.Marshal(*c.AdditionalMounts)
		mounts = new(string(b))
	}
	words := []string{"nanoclaw", "groups", "set", shellWord(c.Folder), setting("name", c.Name), setting("trigger", c.Trigger),
		setting("requires_trigger", c.RequiresTrigger), setting("timeout", c.TimeoutSeconds), setting("memory_mb", c.MemoryMB),
		setting("cpus", c.CPUs), setting("pids_limit", c.PidsLimit), setting("egress", c.EgressMode),
		setting("allow", allow), setting("approved", approved), setting("mounts", mounts), setting("trigger_senders", senders), setting("reactions", reactions), setting("mentions", mentions), setting("browser", browser)}
	return strings.Join(slices.DeleteFunc(words, func(w string) bool { return w == "" }), " ")
}

// setting is the word key=v of setCommand, "" when v is not given. A
// number prints as the CLI reads it (cpus=1.5).
func setting[T any](key string, v *T) string {
	if v == nil {
		return ""
	}
	return shellWord(key + "=" + fmt.Sprint(*v))
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.,:/@%+-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
