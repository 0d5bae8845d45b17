package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

func TestParseSince(t *testing.T) {
	today := time.Date(2026, 3, 15, 23, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{"month": "2026-03-01", "1d": "2026-03-15", "7d": "2026-03-09", "30d": "2026-02-14", "2026-01-31": "2026-01-31"} {
		if got, err := parseSince(in, today); err != nil || got != want {
			t.Errorf("parseSince(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"0d", "-3d", "d", "lastweek", "2026-02-30", "2026-03-16", "7"} {
		if got, err := parseSince(bad, today); err == nil {
			t.Errorf("parseSince(%q) = %q, want an error", bad, got)
		}
	}
}

// usage prints the rows the store counted, per group and day, and their
// total, as a table and as JSON, from the database with no daemon.
func TestUsageTableAndJSON(t *testing.T) {
	_, env, open := ownerWorld(t)
	ctx := context.Background()
	now := time.Now().UTC()
	today, yesterday, old := now.Format(store.DayLayout), now.AddDate(0, 0, -1).Format(store.DayLayout), now.AddDate(0, 0, -40).Format(store.DayLayout)
	st := open()
	for _, u := range []struct {
		folder, day                  string
		in, out, read, write, micros int64
	}{{"family", today, 100, 20, 1000, 200, 1_250_000}, {"family", today, 50, 10, 0, 0, 5_000}, {"main", today, 7, 3, 0, 0, 0},
		{"family", yesterday, 1000, 200, 0, 40, 20_000}, {"main", old, 99999, 99999, 9, 9, 9}} {
		if err := st.RecordUsage(ctx, u.folder, u.day, u.in, u.out, u.read, u.write, u.micros); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	code, out, errOut := run(t, env, "usage", "--since", "7d")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := func(i int) string { return strings.Join(strings.Fields(lines[i]), " ") }
	want := []string{
		"DAY GROUP REQUESTS INPUT OUTPUT CACHE READ CACHE WRITE USD",
		yesterday + " family 1 1000 200 0 40 0.02",
		today + " family 2 150 30 1000 200 1.26",
		today + " main 1 7 3 0 0 0.00",
		"total 4 1157 233 1000 240 1.28",
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("usage printed %d lines, want %d:\n%s", len(lines), len(want)+1, out)
	}
	for i, w := range want {
		if got := fields(i + 1); got != w {
			t.Errorf("line %d = %q, want %q", i+1, got, w)
		}
	}

	code, out, errOut = run(t, env, "usage", "--group", "family", "--since", "1d", "--json")
	if code != cli.ExitOK {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var rep usageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json printed %q: %v", out, err)
	}
	wantRow := usageRow{Day: today, Folder: "family", Requests: 2, InputTokens: 150, OutputTokens: 30, CacheRead: 1000, CacheWrite: 200, CostMicro: 1_255_000, USD: 1.255}
	if rep.From != today || rep.To != today || rep.Group != "family" || len(rep.Days) != 1 || rep.Days[0] != wantRow ||
		rep.Total != (usageRow{Requests: 2, InputTokens: 150, OutputTokens: 30, CacheRead: 1000, CacheWrite: 200, CostMicro: 1_255_000, USD: 1.255}) {
		t.Errorf("--json = %+v", rep)
	}

	if code, _, errOut := run(t, env, "usage", "--since", "yesterday"); code != cli.ExitUsage || !strings.Contains(errOut, "--since") {
		t.Errorf("--since yesterday: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, env, "usage", "--group", "../x"); code != cli.ExitUsage || !strings.Contains(errOut, "--group") {
		t.Errorf("--group ../x: exit %d, %q", code, errOut)
	}
}
