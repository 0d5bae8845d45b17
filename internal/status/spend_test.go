package status

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Each group's spend today and this month (UTC) stands beside its budget;
// the total is every group's.
func TestReportShowsSpendAgainstBudget(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	budget := store.Budget{DayTokens: 5000, MonthUSD: 20}
	for _, g := range []store.Group{
		{Folder: "fam", Name: "fam", Trigger: "@Andy", AddedAt: time.Now(), Config: store.ContainerConfig{Budget: budget}},
		{Folder: "work", Name: "work", Trigger: "@Andy", AddedAt: time.Now()},
	} {
		if err := st.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	// Late on the 2nd, UTC: the 1st counts in the month, not today.
	now := time.Date(2026, 3, 2, 23, 30, 0, 0, time.UTC)
	for _, u := range []struct {
		folder, day                  string
		in, out, read, write, micros int64
	}{
		{"fam", "2026-03-02", 100, 20, 1000, 80, 1_500_000},
		{"fam", "2026-03-01", 1, 1, 0, 0, 500_000},
		{"fam", "2026-02-28", 9999, 9999, 0, 0, 9_000_000},
		{"work", "2026-03-02", 10, 10, 0, 0, 1000},
	} {
		if err := st.RecordUsage(ctx, u.folder, u.day, u.in, u.out, u.read, u.write, u.micros); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Collect(ctx, st, "", now, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Spend{
		"fam": {Today: Amount{Tokens: 1200, TokensCap: 5000, USD: 1.5},
			Month: Amount{Tokens: 1202, USD: 2, USDCap: 20}},
		"work": {Today: Amount{Tokens: 20, USD: 0.001}, Month: Amount{Tokens: 20, USD: 0.001}},
	}
	for _, g := range r.Groups {
		if g.Spend != want[g.Folder] {
			t.Errorf("%s: spend %+v, want %+v", g.Folder, g.Spend, want[g.Folder])
		}
	}
	if wantTotal := (Spend{Today: Amount{Tokens: 1220, USD: 1.501}, Month: Amount{Tokens: 1222, USD: 2.001}}); r.Total == nil || *r.Total != wantTotal {
		t.Errorf("total %+v, want %+v", r.Total, wantTotal)
	}
	r, err = Collect(ctx, st, "fam", now, nil)
	if err != nil || len(r.Groups) != 1 || r.Groups[0].Spend != want["fam"] || r.Total != nil {
		t.Errorf("fam alone: %+v, %v", r, err)
	}
}
