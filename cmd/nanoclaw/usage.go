package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

const usageHelp = `Show model usage as the gateway counted it: requests, input, output and
cache tokens and dollars, per group and day, and their total. Days are UTC,
as usage is counted and budgets reset.

  --since DAY      from that day (YYYY-MM-DD) to today
  --since 7d       the last 7 days, today included (1d is today)
  --since month    this month so far (the default)

It reads the database, so it works whether or not the daemon runs.`

// usageRow is one group's usage on one day, as usage prints it.
type usageRow struct {
	Day          string `json:"day,omitempty"`
	Folder       string `json:"folder,omitempty"`
	Requests     int64  `json:"requests"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	CacheRead    int64  `json:"cache_read_tokens"`
	CacheWrite   int64  `json:"cache_write_tokens"`
	// CostMicro is millionths of a dollar, by the host's price table
	// (PRICES) when each call was counted; USD is the same in dollars.
	CostMicro int64   `json:"cost_micro"`
	USD       float64 `json:"usd"`
}

// add counts u into r.
func (r *usageRow) add(u usageRow) {
	r.Requests += u.Requests
	r.InputTokens += u.InputTokens
	r.OutputTokens += u.OutputTokens
	r.CacheRead += u.CacheRead
	r.CacheWrite += u.CacheWrite
	r.CostMicro += u.CostMicro
	r.USD = float64(r.CostMicro) / 1e6
}

// usageReport is what usage --json prints.
type usageReport struct {
	From  string     `json:"from"`
	To    string     `json:"to"`
	Group string     `json:"group,omitempty"`
	Days  []usageRow `json:"days"`
	Total usageRow   `json:"total"`
}

func (m *Main) runUsage(ctx context.Context, args []string) error {
	flags := m.flagSet("usage", "[--group FOLDER] [--since DAY|Nd|month] [--json]", usageHelp)
	group := flags.String("group", "", "one group's usage")
	since := flags.String("since", "month", "from when: YYYY-MM-DD, Nd (the last N days) or month")
	asJSON := flags.Bool("json", false, "print the table as JSON")
	if err := m.parseNoArgs(flags, args); err != nil {
		return err
	}
	if err := optionalGroup(*group); err != nil {
		return err
	}
	today := time.Now().UTC()
	from, err := parseSince(*since, today)
	if err != nil {
		return usagef("--since: %v", err)
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.DBPath()); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("nanoclaw has not run with data home %s yet: no usage to show", cfg.Home)
	}
	st, err := daemon.OpenStore(ctx, cfg, m.Logger)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := collectUsage(ctx, st, *group, from, today.Format(store.DayLayout))
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(m.Stdout, rep)
	}
	m.printUsage(rep)
	return nil
}

// parseSince is the first day --since names, as YYYY-MM-DD (UTC).
func parseSince(s string, today time.Time) (string, error) {
	switch {
	case s == "month":
		return today.Format("2006-01") + "-01", nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 1 || n > 3660 {
			return "", fmt.Errorf("%q: want Nd with N from 1 to 3660 (the last N days, today included)", s)
		}
		return today.AddDate(0, 0, 1-n).Format(store.DayLayout), nil
	}
	if err := store.ValidateDay(s); err != nil {
		return "", fmt.Errorf("%q: want a day (YYYY-MM-DD), Nd or month", s)
	}
	if s > today.Format(store.DayLayout) {
		return "", fmt.Errorf("%q is after today (%s, UTC)", s, today.Format(store.DayLayout))
	}
	return s, nil
}

// collectUsage reads the usage of group ("" = every group) from day from
// to day to, and its total.
func collectUsage(ctx context.Context, st *store.Store, group, from, to string) (usageReport, error) {
	days, err := st.Usage(ctx, group, from, to)
	if err != nil {
		return usageReport{}, err
	}
	rep := usageReport{From: from, To: to, Group: group, Days: []usageRow{}}
	for _, u := range days {
		row := usageRow{Day: u.Day, Folder: u.Folder, Requests: u.Requests, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
			CacheRead: u.CacheReadTokens, CacheWrite: u.CacheWriteTokens, CostMicro: u.CostMicro, USD: float64(u.CostMicro) / 1e6}
		rep.Days = append(rep.Days, row)
		rep.Total.add(row)
	}
	return rep, nil
}

func (m *Main) printUsage(r usageReport) {
	what := "every group"
	if r.Group != "" {
		what = "group " + r.Group
	}
	fmt.Fprintf(m.Stdout, "model usage of %s, %s to %s (UTC days)\n", what, r.From, r.To)
	if len(r.Days) == 0 {
		fmt.Fprintln(m.Stdout, "none")
		return
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "DAY\tGROUP\tREQUESTS\tINPUT\tOUTPUT\tCACHE READ\tCACHE WRITE\tUSD\t")
	line := func(day, folder string, u usageRow) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", day, folder, u.Requests, u.InputTokens, u.OutputTokens, u.CacheRead, u.CacheWrite, dollars(u.CostMicro))
	}
	for _, u := range r.Days {
		line(u.Day, u.Folder, u)
	}
	line("total", "", r.Total)
	tw.Flush()
}

// dollars is micro-dollars as dollars and cents, rounded to the nearest
// cent in integers (a float's 1.275 prints as 1.27).
func dollars(micro int64) string {
	cents := (micro + 5_000) / 10_000
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}
