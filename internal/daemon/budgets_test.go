package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// The daemon's budgets: a group's own from its container config, the
// total from the config, spend as the store counted it.
func TestBudgeterFromStore(t *testing.T) {
	ctx := context.Background()
	st := testenv.OpenStore(t, filepath.Join(t.TempDir(), "db"), store.Options{})
	for _, g := range []store.Group{
		{Folder: "family", Name: "Family", Trigger: "@Andy", AddedAt: time.Now(), Config: store.ContainerConfig{Budget: store.Budget{DayTokens: 100}}},
		{Folder: "work", Name: "Work", Trigger: "@Andy", AddedAt: time.Now()},
	} {
		if err := st.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{Budget: gateway.Budget{MonthUSD: 1}}
	var told []string
	b := NewBudgeter(cfg, st, nil, func(folder string, h gateway.BudgetHit) { told = append(told, folder+": "+h.Message(folder)) })
	today := time.Now().UTC().Format(store.DayLayout)
	if err := st.RecordUsage(ctx, "family", today, 60, 30, 10, 0, 0); err != nil {
		t.Fatal(err)
	}
	if hit, over, err := b.OverBudget(ctx, "family"); err != nil || !over || hit.Total || hit.Limit != 100 || hit.Spent != 100 {
		t.Fatalf("family: %+v, %v, %v", hit, over, err)
	}
	if _, over, err := b.OverBudget(ctx, "work"); over || err != nil {
		t.Fatalf("work over budget: %v, %v", over, err)
	}
	// The total counts every group's dollars; a group that is gone has
	// the total alone.
	if err := st.RecordUsage(ctx, "work", today, 1, 1, 0, 0, 1_000_000); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"work", "gone"} {
		if hit, over, err := b.OverBudget(ctx, f); err != nil || !over || !hit.Total || !hit.USD || hit.Spent != 1 {
			t.Errorf("%s: %+v, %v, %v", f, hit, over, err)
		}
	}
	if len(told) != 4 { // family's own; the total to work, to the owner, to gone
		t.Errorf("told %q", told)
	}
	// A restarted daemon does not tell again what it told: the store
	// marked each.
	told = nil
	b = NewBudgeter(cfg, st, nil, func(folder string, h gateway.BudgetHit) { told = append(told, folder+" "+h.What()) })
	for _, f := range []string{"family", "work"} {
		if _, over, err := b.OverBudget(ctx, f); !over || err != nil {
			t.Errorf("%s after a restart: %v, %v", f, over, err)
		}
	}
	// family had not met the total yet: that alone is news.
	if len(told) != 1 || told[0] != "family total-month-usd" {
		t.Errorf("after a restart told %q, want only family of the total", told)
	}
}
