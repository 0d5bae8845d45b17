package ipc

import "time"

// The group tools: main only. Their arguments never decide who may call
// them; the socket does.

// RegisterGroupArgs are the arguments of register_group.
type RegisterGroupArgs struct {
	JID             string `json:"jid"`
	Name            string `json:"name"`
	Folder          string `json:"folder"`
	Trigger         string `json:"trigger,omitempty"`
	RequiresTrigger *bool  `json:"requires_trigger,omitempty"`
}

// FolderArgs name one group (get_group, unregister_group).
type FolderArgs struct {
	Folder string `json:"folder"`
}

// NoArgs is the argument object of tools that take none.
type NoArgs struct{}

// ExtraMount is an additional host directory asked for a group.
type ExtraMount struct {
	HostPath      string `json:"host_path"`
	ContainerPath string `json:"container_path"`
	ReadOnly      bool   `json:"readonly,omitempty"`
}

// ConfigureGroupArgs change a group's settings; absent fields stay.
type ConfigureGroupArgs struct {
	Folder           string        `json:"folder"`
	Name             *string       `json:"name,omitempty"`
	Trigger          *string       `json:"trigger,omitempty"`
	RequiresTrigger  *bool         `json:"requires_trigger,omitempty"`
	TimeoutSeconds   *int          `json:"timeout_seconds,omitempty"`
	MemoryMB         *int          `json:"memory_mb,omitempty"`
	CPUs             *float64      `json:"cpus,omitempty"`
	PidsLimit        *int          `json:"pids_limit,omitempty"`
	EgressMode       *string       `json:"egress_mode,omitempty"`
	EgressAllow      *[]string     `json:"egress_allow,omitempty"`
	ApprovedAllow    *[]string     `json:"approved_allow,omitempty"` // replaces what the owner's "always" answers added; only the owner adds
	AdditionalMounts *[]ExtraMount `json:"additional_mounts,omitempty"`
	Reactions        *bool         `json:"reactions,omitempty"`
	Mentions         *bool         `json:"mentions,omitempty"`
	TriggerSenders   *[]string     `json:"trigger_senders,omitempty"`
	// Model is the Claude model of the group's runs; "" means the host's
	// default (MODEL).
	Model *string `json:"model,omitempty"`
	// Budget changes the caps given; the owner's alone.
	Budget *BudgetArgs `json:"budget,omitempty"`
	// Browser runs the group on the browser image; only the owner turns
	// it on.
	Browser *bool `json:"browser,omitempty"`
}

// BudgetArgs change a group's budget caps; absent fields stay, 0 removes
// a cap.
type BudgetArgs struct {
	DayTokens   *int64   `json:"day_tokens,omitempty"`
	MonthTokens *int64   `json:"month_tokens,omitempty"`
	DayUSD      *float64 `json:"day_usd,omitempty"`
	MonthUSD    *float64 `json:"month_usd,omitempty"`
}

// Budget caps a group's model usage per day and per month (UTC), in tokens
// (input, output and cache together) and in dollars; 0 means no cap. It
// mirrors store.Budget, which validates it.
type Budget struct {
	DayTokens   int64   `json:"day_tokens,omitempty"`
	MonthTokens int64   `json:"month_tokens,omitempty"`
	DayUSD      float64 `json:"day_usd,omitempty"`
	MonthUSD    float64 `json:"month_usd,omitempty"`
}

// GroupInfo is a registered group as the tools show it.
type GroupInfo struct {
	Folder           string       `json:"folder"`
	Name             string       `json:"name"`
	Trigger          string       `json:"trigger"`
	RequiresTrigger  bool         `json:"requires_trigger"`
	IsMain           bool         `json:"is_main"`
	Chats            []string     `json:"chats"`
	AddedAt          time.Time    `json:"added_at"`
	TimeoutSeconds   int          `json:"timeout_seconds,omitempty"`
	MemoryMB         int          `json:"memory_mb,omitempty"`
	CPUs             float64      `json:"cpus,omitempty"`
	PidsLimit        int          `json:"pids_limit,omitempty"`
	EgressMode       string       `json:"egress_mode,omitempty"`
	EgressAllow      []string     `json:"egress_allow,omitempty"`
	ApprovedAllow    []string     `json:"approved_allow,omitempty"` // added by the owner's "always" answers (egress mode ask)
	AdditionalMounts []ExtraMount `json:"additional_mounts,omitempty"`
	Reactions        bool         `json:"reactions"`
	Mentions         bool         `json:"mentions"`
	TriggerSenders   []string     `json:"trigger_senders,omitempty"`
	Model            string       `json:"model,omitempty"` // "" = the host's default
	Budget           Budget       `json:"budget,omitzero"`
	Browser          bool         `json:"browser,omitempty"`
	Note             string       `json:"note,omitempty"`
}

// AvailableChat is a chat a channel knows, for registration.
type AvailableChat struct {
	JID          string    `json:"jid"`
	Name         string    `json:"name"`
	Channel      string    `json:"channel"`
	IsGroup      bool      `json:"is_group"`
	LastActivity time.Time `json:"last_activity"`
	Registered   bool      `json:"registered"`
	Folder       string    `json:"folder,omitempty"`
}
