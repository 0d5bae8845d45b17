// Package status answers the owner's "what is it doing, and why did (or
// didn't) it reply?": one Report, made by the running daemon (served on the
// control socket) or from the database alone when the daemon is down, and
// printed by `nanoclaw status`.
package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Report is everything `status` shows. Fields that only the running daemon
// knows are empty when Running is false.
type Report struct {
	Version  string    `json:"version"`
	Running  bool      `json:"running"` // false: read from the database, the daemon is down
	Started  time.Time `json:"started,omitzero"`
	Channels []Channel `json:"channels,omitempty"`
	Queue    *Queue    `json:"queue,omitempty"`
	Groups   []Group   `json:"groups"`
	// Total is what all groups spent together (without its caps: the
	// host's total budget is a setting, which the CLI adds); nil with
	// --group.
	Total   *Spend  `json:"total_spend,omitempty"`
	Tasks   []Task  `json:"next_tasks"`     // the soonest runs, of every group or of the one asked for
	Denials []Event `json:"egress_denials"` // the newest, of every group
	Errors  []Event `json:"errors"`         // the newest failures, of every group
	// Approvals are the newest questions of egress mode ask to the owner
	// and their answers (approvals.go).
	Approvals []Approval `json:"egress_approvals"`
	// Trace is the asked-for group's recent steps, oldest first (--group).
	Trace []Event `json:"trace"`
}

// Channel is one chat channel.
type Channel struct {
	Name      string    `json:"name"`
	Connected bool      `json:"connected"`
	Account   string    `json:"account,omitempty"`
	LastEvent time.Time `json:"last_event,omitzero"`
	Note      string    `json:"note,omitempty"` // e.g. what to do when it is not paired
}

// Queue is the agents' run queue.
type Queue struct {
	Running int      `json:"running"`
	Limit   int      `json:"limit"`
	Waiting []string `json:"waiting"` // folders, oldest first
}

// Group is one group and what it does.
type Group struct {
	Folder      string     `json:"folder"`
	Name        string     `json:"name"`
	Main        bool       `json:"main,omitempty"`
	State       string     `json:"state"` // idle, queued, running, warm; "" when the daemon is down
	Since       time.Time  `json:"since,omitzero"`
	LastMessage time.Time  `json:"last_message,omitzero"`
	LastReply   time.Time  `json:"last_reply,omitzero"`
	Tasks       int        `json:"tasks"` // active and paused
	NextRun     *time.Time `json:"next_run,omitempty"`
	Today       Usage      `json:"usage_today"`
	Month       Usage      `json:"usage_month"`
	Spend       Spend      `json:"spend"` // against the group's budget
}

// Spend is what was spent today and this month (UTC, as the gateway
// counts and budgets reset) against a budget.
type Spend struct {
	Today Amount `json:"today"`
	Month Amount `json:"month"`
}

// Amount is tokens (input, output and cache together, as budgets count
// them) and dollars (by the host's price table), each with its cap; a cap
// of 0 means none.
type Amount struct {
	Tokens    int64   `json:"tokens"`
	TokensCap int64   `json:"tokens_cap,omitempty"`
	USD       float64 `json:"usd"`
	USDCap    float64 `json:"usd_cap,omitempty"`
}

// Usage is model usage as the gateway counted it.
type Usage struct {
	Requests     int64 `json:"requests"`
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

// Task is a scheduled task's next run and last result.
type Task struct {
	ID         string     `json:"id"`
	Folder     string     `json:"folder"`
	NextRun    *time.Time `json:"next_run,omitempty"`
	LastRun    *time.Time `json:"last_run,omitempty"`
	LastResult string     `json:"last_result,omitempty"`
}

// Event is one step of a group's trace.
type Event struct {
	At     time.Time `json:"at"`
	Folder string    `json:"folder"`
	Chat   string    `json:"chat,omitempty"`
	Seq    int64     `json:"seq,omitempty"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
}

// GroupState is a busy group's state, as the running daemon knows it.
type GroupState struct {
	State string
	Since time.Time
}

// Live is what only the running daemon knows.
type Live struct {
	Version  string
	Started  time.Time
	Channels []Channel
	Queue    Queue
	States   map[string]GroupState // busy groups; the others are idle
}

// How much of each list a report carries.
const (
	maxTasks     = 20
	maxEvents    = 10
	maxTrace     = 50
	maxTaskValue = 200
)

// ErrNoGroup is the error of Collect for a folder that is no group.
var ErrNoGroup = errors.New("no group")

// Collect makes the report from the store, at now, with what the running
// daemon knows (nil when it is down). With folder set, the report is that
// group's alone, with its trace.
func Collect(ctx context.Context, st *store.Store, folder string, now time.Time, live *Live) (*Report, error) {
	// Usage days are UTC, as the gateway counts them.
	today := now.UTC().Format(store.DayLayout)
	acts, err := st.Activity(ctx, folder, today)
	if err != nil {
		return nil, err
	}
	if folder != "" && len(acts) == 0 {
		return nil, fmt.Errorf("%w %q: 'nanoclaw groups list' shows the groups", ErrNoGroup, folder)
	}
	budgets, err := groupBudgets(ctx, st, folder)
	if err != nil {
		return nil, err
	}
	r := &Report{Running: live != nil, Groups: []Group{}}
	for _, a := range acts {
		row := Group{Folder: a.Folder, Name: a.Name, Main: a.Main, LastMessage: a.LastMessage, LastReply: a.LastReply,
			Tasks: a.Tasks, NextRun: a.NextRun, Today: Usage(a.Day), Month: Usage(a.Month)}
		if row.Spend, err = spend(ctx, st, a.Folder, today, budgets[a.Folder]); err != nil {
			return nil, err
		}
		if live != nil {
			s := live.States[a.Folder]
			row.State, row.Since = cmp.Or(s.State, "idle"), s.Since
		}
		r.Groups = append(r.Groups, row)
	}
	if folder == "" {
		total, err := spend(ctx, st, "", today, store.Budget{})
		if err != nil {
			return nil, err
		}
		r.Total = &total
	}
	tasks, err := st.NextTasks(ctx, folder, maxTasks)
	if err != nil {
		return nil, err
	}
	r.Tasks = []Task{}
	for _, t := range tasks {
		r.Tasks = append(r.Tasks, Task{ID: t.ID, Folder: t.Folder, NextRun: t.NextRun, LastRun: t.LastRun,
			LastResult: sanitize.FirstLine(t.LastResult, maxTaskValue)})
	}
	if r.Denials, err = events(ctx, st, folder, maxEvents, store.EventDenied); err != nil {
		return nil, err
	}
	if r.Errors, err = events(ctx, st, folder, maxEvents, store.EventFailed); err != nil {
		return nil, err
	}
	if r.Approvals, err = approvals(ctx, st, folder); err != nil {
		return nil, err
	}
	if folder != "" {
		if r.Trace, err = events(ctx, st, folder, maxTrace); err != nil {
			return nil, err
		}
	}
	if live != nil {
		r.Version, r.Started, r.Channels = live.Version, live.Started, live.Channels
		r.Queue = &live.Queue
	}
	return r, nil
}

func events(ctx context.Context, st *store.Store, folder string, limit int, kinds ...store.EventKind) ([]Event, error) {
	evs, err := st.Events(ctx, folder, limit, kinds...)
	out := []Event{}
	for _, e := range evs {
		out = append(out, Event{At: e.At, Folder: e.Folder, Chat: e.Chat, Seq: e.Seq, Kind: string(e.Kind), Detail: e.Detail})
	}
	return out, err
}

// groupBudgets is each group's budget by folder (of the one group, with
// folder set).
func groupBudgets(ctx context.Context, st *store.Store, folder string) (map[string]store.Budget, error) {
	budgets := map[string]store.Budget{}
	if folder != "" {
		g, _, err := st.GetGroup(ctx, folder)
		budgets[folder] = g.Config.Budget
		return budgets, err
	}
	groups, err := st.ListGroups(ctx)
	for _, g := range groups {
		budgets[g.Folder] = g.Config.Budget
	}
	return budgets, err
}

// spend is what folder ("" = all groups) spent on day and in its month,
// against b.
func spend(ctx context.Context, st *store.Store, folder, day string, b store.Budget) (Spend, error) {
	onDay, inMonth, err := st.Spent(ctx, folder, day)
	return Spend{
		Today: Amount{Tokens: onDay.Tokens(), TokensCap: b.DayTokens, USD: float64(onDay.CostMicro) / 1e6, USDCap: b.DayUSD},
		Month: Amount{Tokens: inMonth.Tokens(), TokensCap: b.MonthTokens, USD: float64(inMonth.CostMicro) / 1e6, USDCap: b.MonthUSD},
	}, err
}
