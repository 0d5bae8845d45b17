package store

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

func TestRecordUsageAndSpent(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	for _, r := range []struct {
		folder, day           string
		in, out, cr, cw, cost int64
	}{
		{"family", "2025-07-01", 10, 20, 300, 40, 1500},
		{"family", "2025-07-01", 1, 2, 3, 4, 5},
		{"family", "2025-07-02", 100, 0, 0, 0, 300},
		{"family", "2025-06-30", 7, 7, 7, 7, 7}, // another month
		{"work", "2025-07-01", 1000, 1, 0, 0, 9000},
	} {
		if err := s.RecordUsage(ctx, r.folder, r.day, r.in, r.out, r.cr, r.cw, r.cost); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		folder, day string
		day1, month Spend
	}{
		{"family", "2025-07-01", Spend{2, 11, 22, 303, 44, 1505}, Spend{3, 111, 22, 303, 44, 1805}},
		{"work", "2025-07-01", Spend{1, 1000, 1, 0, 0, 9000}, Spend{1, 1000, 1, 0, 0, 9000}},
		{"", "2025-07-01", Spend{3, 1011, 23, 303, 44, 10505}, Spend{4, 1111, 23, 303, 44, 10805}},
		{"", "2025-06-30", Spend{1, 7, 7, 7, 7, 7}, Spend{1, 7, 7, 7, 7, 7}},
		{"nobody", "2025-07-01", Spend{}, Spend{}},
	} {
		d, m, err := s.Spent(ctx, tc.folder, tc.day)
		if err != nil || d != tc.day1 || m != tc.month {
			t.Errorf("Spent(%q, %s) = %+v, %+v, %v; want %+v, %+v", tc.folder, tc.day, d, m, err, tc.day1, tc.month)
		}
	}
	if d, _, _ := s.Spent(ctx, "family", "2025-07-01"); d.Tokens() != 11+22+303+44 {
		t.Errorf("Tokens() = %d", d.Tokens())
	}
	got, err := s.Usage(ctx, "family", "2025-07-01", "2025-07-01")
	if err != nil || len(got) != 1 || got[0] != (UsageDay{"family", "2025-07-01", 2, 11, 22, 303, 44, 1505}) {
		t.Errorf("Usage = %+v, %v", got, err)
	}
	if _, _, err := s.Spent(ctx, "family", "2025-7-1"); err == nil {
		t.Error("Spent accepted a bad day")
	}
	for i, bad := range [][5]int64{{-1, 0, 0, 0, 0}, {0, 0, -1, 0, 0}, {0, 0, 0, -1, 0}, {0, 0, 0, 0, -1}} {
		if err := s.RecordUsage(ctx, "family", "2025-07-01", bad[0], bad[1], bad[2], bad[3], bad[4]); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("bad %d: %v", i, err)
		}
	}
	// The database refuses negative cache and cost counts in both tables.
	for _, q := range []string{
		`INSERT INTO usage (folder, day, requests, input_tokens, output_tokens, cache_read_tokens) VALUES ('x', '2025-07-09', 1, 0, 0, -1)`,
		`INSERT INTO usage (folder, day, requests, input_tokens, output_tokens, cost_micro) VALUES ('x', '2025-07-09', 1, 0, 0, -1)`,
		`INSERT INTO usage_months (folder, month, requests, input_tokens, output_tokens, cache_write_tokens) VALUES ('x', '2025-07', 1, 0, 0, -1)`,
	} {
		wantRefused(t, s, q)
	}
}

func TestBudgetValidate(t *testing.T) {
	for _, b := range []Budget{{}, {DayTokens: 500, MonthTokens: 1e9, DayUSD: 0.5, MonthUSD: 20}} {
		if err := (ContainerConfig{Budget: b}).Validate(); err != nil {
			t.Errorf("%+v: %v", b, err)
		}
	}
	for _, tc := range []struct {
		b    Budget
		want string
	}{
		{Budget{DayTokens: -1}, "budget.day_tokens -1"},
		{Budget{MonthTokens: -5}, "budget.month_tokens -5"},
		{Budget{DayUSD: -0.01}, "budget.day_usd -0.01"},
		{Budget{MonthUSD: math.NaN()}, "budget.month_usd NaN"},
		{Budget{DayUSD: math.Inf(1)}, "budget.day_usd +Inf"},
	} {
		if err := (ContainerConfig{Budget: tc.b}).Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.b, err, tc.want)
		}
	}
}

func TestMarkBudgetHit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		folder, what, period string
		first                bool
	}{
		{"family", "day-tokens", "2025-07-01", true},
		{"family", "day-tokens", "2025-07-01", false}, // told already
		{"family", "day-tokens", "2025-07-02", true},  // a new day
		{"family", "month-usd", "2025-07", true},
		{"work", "day-tokens", "2025-07-01", true},
		{"", "total-month-usd", "2025-07", true},
		{"", "total-month-usd", "2025-07", false},
		{"family", "month-usd", "2025-07", false},
		{"family", "month-usd", "2025-08", true}, // drops July's marks
		{"family", "month-usd", "2025-07", true}, // so July's is new again
	} {
		first, err := s.MarkBudgetHit(ctx, tc.folder, tc.what, tc.period, at)
		if err != nil || first != tc.first {
			t.Errorf("%d: MarkBudgetHit(%q, %s, %s) = %v, %v; want %v", i, tc.folder, tc.what, tc.period, first, err, tc.first)
		}
	}
	for _, bad := range []struct{ folder, what, period, want string }{
		{"../x", "day-tokens", "2025-07-01", "invalid group folder"},
		{"family", "day-tokens", "2025-7-1", "not YYYY-MM-DD or YYYY-MM"},
		{"family", "day-tokens", "2025-13", "not YYYY-MM-DD or YYYY-MM"},
		{"family", "day-tokens", "", "not YYYY-MM-DD or YYYY-MM"},
		{"family", "weekly", "2025-07-01", "CHECK constraint"},
	} {
		if _, err := s.MarkBudgetHit(ctx, bad.folder, bad.what, bad.period, at); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("MarkBudgetHit(%q, %q, %q) = %v, want %q", bad.folder, bad.what, bad.period, err, bad.want)
		}
	}
}
