package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// status shows each group's spend against its budget, "-" where it has
// none, and says when a budget is reached.
func TestStatusShowsSpendAgainstBudget(t *testing.T) {
	_, env, open := ownerWorld(t)
	ctx := context.Background()
	st := open()
	g, _, err := st.GetGroup(ctx, "family")
	if err != nil {
		t.Fatal(err)
	}
	g.Config.Budget = store.Budget{DayTokens: 1000, MonthUSD: 20}
	if err := st.PutGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format(store.DayLayout)
	if err := st.RecordUsage(ctx, "family", today, 900, 100, 500, 0, 1_500_000); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordUsage(ctx, "main", today, 10, 10, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	st.Close()

	env["BUDGET_MONTH_TOKENS"] = "1000000"
	code, out, errOut := run(t, env, "status")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, spend, ok := strings.Cut(out, "\nSPEND")
	if !ok {
		t.Fatalf("no SPEND table:\n%s", out)
	}
	line := func(prefix string) string {
		for l := range strings.SplitSeq(spend, "\n") {
			if f := strings.Join(strings.Fields(l), " "); strings.HasPrefix(f, prefix) {
				return f
			}
		}
		return ""
	}
	for prefix, want := range map[string]string{
		"family ":       "family 1.5k / 1.0k (reached) 1.50 / - 1.5k / - 1.50 / 20.00",
		"main ":         "main 20 / - 0.00 / - 20 / - 0.00 / -",
		"(all groups) ": "(all groups) 1.5k / - 1.50 / - 1.5k / 1.0M 1.50 / -",
	} {
		if got := line(prefix); got != want {
			t.Errorf("SPEND line %q, want %q\n%s", got, want, spend)
		}
	}
}
