package store

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// ContainerConfig is a group's container settings, kept as JSON in
// groups.container_config. A zero field means "use the default".
type ContainerConfig struct {
	// TimeoutSeconds bounds one agent run: 0 = default, else 10..86400.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
	// MemoryMB caps the container's memory: 0 = default, else 64..65536.
	MemoryMB int `json:"memory_mb,omitempty"`
	// CPUs caps the container's CPU share: 0 = default, else 0.1..64.
	CPUs float64 `json:"cpus,omitempty"`
	// PidsLimit caps the number of processes: 0 = default, else 16..65536.
	PidsLimit int `json:"pids_limit,omitempty"`
	// Egress says where the container may connect to.
	Egress Egress `json:"egress,omitzero"`
	// ApprovedAllow are the destinations ("host:port") the owner answered
	// "always" to under egress mode ask, kept apart from Egress.Allow so
	// they can be listed and removed as such. They open only public
	// addresses, and only under mode ask (approvals.go).
	ApprovedAllow []string `json:"approved_allow,omitempty"`
	// AdditionalMounts are extra host directories the group asks for; the
	// mount allowlist still decides whether each is granted.
	AdditionalMounts []Mount `json:"additional_mounts,omitempty"`

	// Model is the Claude model the group's agent runs on; "" means the
	// host's default (MODEL).
	Model string `json:"model,omitempty"`
	// Budget caps the group's model usage; zero fields mean no cap.
	Budget Budget `json:"budget,omitzero"`
	// Browser runs the group on the browser image (Chromium and
	// agent-browser, NANOCLAW_BROWSER_IMAGE). Only the owner turns it on:
	// it is more to attack and more memory, though no more network (the
	// browser goes through the same egress policy).
	Browser bool `json:"browser,omitempty"`

	// Reactions says whether the assistant reacts to the message it
	// answers (👀 working, ✅ answered, ❌ failed); nil means yes.
	Reactions *bool `json:"reactions,omitempty"`
	// Mentions says whether an @-mention of the channel's account asks
	// for an answer as the trigger word does; nil means yes. On WhatsApp
	// that account is the owner's own, so a mention of the owner counts.
	Mentions *bool `json:"mentions,omitempty"`
	// TriggerSenders, when set, are the only senders (ids as the channel
	// gives them, like "4915112345678@s.whatsapp.net") whose messages start
	// a run; the owner's always do. Others' messages still go along as
	// context.
	TriggerSenders []string `json:"trigger_senders,omitempty"`
}

// Budget caps model usage per day and per month (UTC, as usage is
// counted), in tokens (input, output and cache together) and in dollars
// (by the host's price table); 0 means no cap.
type Budget struct {
	DayTokens   int64   `json:"day_tokens,omitempty"`
	MonthTokens int64   `json:"month_tokens,omitempty"`
	DayUSD      float64 `json:"day_usd,omitempty"`
	MonthUSD    float64 `json:"month_usd,omitempty"`
}

// MaxTriggerSenders bounds a group's trigger_senders.
const MaxTriggerSenders = 100

// ReactionsOn reports whether the group reacts to the messages it answers.
func (c ContainerConfig) ReactionsOn() bool { return c.Reactions == nil || *c.Reactions }

// MentionsOn reports whether an @-mention of the account asks for an answer.
func (c ContainerConfig) MentionsOn() bool { return c.Mentions == nil || *c.Mentions }

// MayTrigger reports whether a message of sender (fromOwner: the owner's
// own) may start a run.
func (c ContainerConfig) MayTrigger(sender string, fromOwner bool) bool {
	return fromOwner || len(c.TriggerSenders) == 0 || slices.Contains(c.TriggerSenders, sender)
}

// EgressMode is a container's network policy.
type EgressMode string

// The egress modes.
const (
	EgressDefault   EgressMode = ""          // the host's default policy
	EgressNone      EgressMode = "none"      // no network at all
	EgressAllowlist EgressMode = "allowlist" // only what Allow names
	EgressPublic    EgressMode = "public"    // the public internet, plus what Allow names
	EgressAsk       EgressMode = "ask"       // what Allow names; anything else public is asked of the owner
)

// Egress is a container's network policy.
type Egress struct {
	Mode EgressMode `json:"mode,omitempty"`
	// Allow lists egress rules (grammar: egress.ParseRule): in mode
	// allowlist the only reachable destinations, in mode public the private
	// ones reachable besides the public internet ("192.168.1.10:8080").
	Allow []string `json:"allow,omitempty"`
}

// Mount is an extra host directory requested for a group's container.
type Mount struct {
	HostPath      string `json:"host_path"`
	ContainerPath string `json:"container_path"` // relative, under /workspace/extra
	ReadOnly      bool   `json:"readonly,omitempty"`
}

// Limits of ContainerConfig's numeric fields (0 always means default).
const (
	MinTimeoutSeconds = 10
	MaxTimeoutSeconds = 86400
	MinMemoryMB       = 64
	MaxMemoryMB       = 65536
	MinCPUs           = 0.1
	MaxCPUs           = 64
	MinPidsLimit      = 16
	MaxPidsLimit      = 65536
)

// ParseContainerConfig decodes and validates the JSON of a container config,
// as read from the database (finding 12) or from a registration request.
// Unknown fields are an error, so a typo ("memory": 512) is not silently
// ignored.
func ParseContainerConfig(data []byte) (ContainerConfig, error) {
	var c ContainerConfig
	if err := ipc.DecodeStrict(data, &c); err != nil {
		return ContainerConfig{}, fmt.Errorf("container config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return ContainerConfig{}, err
	}
	return c, nil
}

// Validate checks every field's range and form.
func (c ContainerConfig) Validate() error {
	if err := cmp.Or(checkRange("timeout_seconds", c.TimeoutSeconds, MinTimeoutSeconds, MaxTimeoutSeconds),
		checkRange("memory_mb", c.MemoryMB, MinMemoryMB, MaxMemoryMB), checkRange("cpus", c.CPUs, MinCPUs, MaxCPUs),
		checkRange("pids_limit", c.PidsLimit, MinPidsLimit, MaxPidsLimit), c.Egress.validate(), c.Budget.validate(),
		validateApproved(c.ApprovedAllow)); err != nil {
		return err
	}
	if c.Model != "" {
		if err := ipc.ValidateModel(c.Model); err != nil {
			return fmt.Errorf("container config: %w", err)
		}
	}
	if len(c.TriggerSenders) > MaxTriggerSenders {
		return fmt.Errorf("container config: trigger_senders: %d senders, at most %d", len(c.TriggerSenders), MaxTriggerSenders)
	}
	for i, s := range c.TriggerSenders {
		if s == "" || len(s) > 200 || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r == ',' }) {
			return fmt.Errorf("container config: trigger_senders[%d] %q: want a sender id like 4915112345678@s.whatsapp.net", i, s)
		}
	}
	seen := map[string]bool{}
	for i, m := range c.AdditionalMounts {
		if err := cmp.Or(ValidateHostPath(m.HostPath), ValidateContainerPath(m.ContainerPath)); err != nil {
			return fmt.Errorf("container config: additional_mounts[%d]: %w", i, err)
		}
		if seen[m.ContainerPath] {
			return fmt.Errorf("container config: additional_mounts[%d]: container_path %q used twice", i, m.ContainerPath)
		}
		seen[m.ContainerPath] = true
	}
	return nil
}

// checkRange accepts 0 (the default) or lo..hi; written so that NaN fails.
func checkRange[T int | float64](name string, v, lo, hi T) error {
	if v != 0 && !(v >= lo && v <= hi) {
		return fmt.Errorf("container config: %s %v out of range (0 = default, or %v..%v)", name, v, lo, hi)
	}
	return nil
}

// validate checks the policy with the egress package's parser, the one the
// gateway enforces, so a stored policy is exactly what will be applied.
func (e Egress) validate() error {
	if e.Mode == EgressDefault {
		// The host's default policy applies; rules here would be ignored.
		if len(e.Allow) > 0 {
			return fmt.Errorf("container config: egress.allow needs a mode (%q or %q); with no mode the host's default policy applies", EgressAllowlist, EgressPublic)
		}
		return nil
	}
	if _, err := egress.ParsePolicy(string(e.Mode), e.Allow); err != nil {
		return fmt.Errorf("container config: %w", err)
	}
	return nil
}

// ValidateHostPath checks the form of a mount's host path: absolute, or
// "~" / "~/..." for the host user's home; not "~user", nothing relative,
// nothing the runtimes' mount syntax cannot carry (R14). Whether the path
// may be mounted is the mount allowlist's decision (package mounts).
func ValidateHostPath(p string) error {
	switch {
	case p == "":
		return errors.New("host_path is empty")
	case strings.ContainsRune(p, 0):
		return errors.New("host_path contains a NUL byte")
	case p == "~" || strings.HasPrefix(p, "~/"):
	case strings.HasPrefix(p, "~"):
		return fmt.Errorf("host_path %q: only ~ and ~/ are expanded, not ~user; write the absolute path", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("host_path %q is relative; write an absolute path (or ~/...)", p)
	}
	if err := mountable(p); err != nil {
		return fmt.Errorf("host_path %q: %w", p, err)
	}
	return nil
}

// ValidateContainerPath checks a mount's container path: relative (it is
// mounted under /workspace/extra), clean, no '..', nothing the runtimes'
// mount syntax cannot carry. It is the one rule of the store and of the
// run-time check (R14), so a stored path is one a run accepts.
func ValidateContainerPath(p string) error {
	switch {
	case p == "":
		return errors.New("container_path is empty")
	case strings.ContainsRune(p, 0):
		return errors.New("container_path contains a NUL byte")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("container_path %q is absolute; it must be relative (it is mounted under /workspace/extra)", p)
	case strings.Contains(p, `\`):
		return fmt.Errorf("container_path %q contains a backslash", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Errorf("container_path %q contains a '..' component", p)
	}
	if c := path.Clean(p); c != p || c == "." {
		return fmt.Errorf("container_path %q is not clean (no '.', '//' or trailing '/')", p)
	}
	if err := mountable(p); err != nil {
		return fmt.Errorf("container_path %q: %w", p, err)
	}
	return nil
}

// mountable refuses what the runtimes' --mount syntax cannot carry: invalid
// UTF-8, control characters and the syntax's own separators (the runtime
// package would refuse the whole container otherwise).
func mountable(p string) error {
	if !utf8.ValidString(p) {
		return errors.New("not valid UTF-8")
	}
	for i, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("control character at byte %d", i)
		}
		if strings.ContainsRune(`,:="\`, r) {
			return fmt.Errorf("%q at byte %d cannot be mounted", r, i)
		}
	}
	return nil
}
