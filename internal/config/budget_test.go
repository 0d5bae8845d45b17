package config

import (
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
)

func TestLoadBudgetAndPrices(t *testing.T) {
	getenv, _ := env(t)
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	def, _ := gateway.ParsePrices(gateway.DefaultPrices)
	if c.Budget != (gateway.Budget{}) || c.Prices.String() != def.String() || len(c.Prices) == 0 {
		t.Errorf("defaults: budget %+v, prices %v", c.Budget, c.Prices)
	}
	getenv, _ = env(t, "PRICES", "claude-x=1/2/0.1/1.25", "BUDGET_DAY_TOKENS", "5000", "BUDGET_MONTH_TOKENS", "100000",
		"BUDGET_DAY_USD", "2.5", "BUDGET_MONTH_USD", "40")
	if c, err = Load(getenv); err != nil {
		t.Fatal(err)
	}
	if want := (gateway.Budget{DayTokens: 5000, MonthTokens: 100000, DayUSD: 2.5, MonthUSD: 40}); c.Budget != want {
		t.Errorf("budget %+v, want %+v", c.Budget, want)
	}
	if p, ok := c.Prices.Lookup("claude-x-20251001"); !ok || p != (gateway.Price{Input: 1, Output: 2, CacheRead: 0.1, CacheWrite: 1.25}) || len(c.Prices) != 1 {
		t.Errorf("prices %v: the setting replaces the default table", c.Prices)
	}
	var out strings.Builder
	c.Print(&out)
	for _, want := range []string{"PRICES=claude-x=1/2/0.1/1.25", "BUDGET_DAY_TOKENS=5000", "BUDGET_MONTH_USD=40"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Print lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLoadRejectsBadBudgets(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"BUDGET_DAY_TOKENS", "-1", `BUDGET_DAY_TOKENS (from environment): "-1" is not a whole number of tokens within 0..1000000000000000 (0: no cap)`},
		{"BUDGET_MONTH_TOKENS", "1e6", `"1e6" is not a whole number of tokens`},
		{"BUDGET_MONTH_TOKENS", "2000000000000000", `is not a whole number of tokens within`},
		{"BUDGET_DAY_USD", "NaN", `BUDGET_DAY_USD (from environment): "NaN" is not an amount of dollars within 0..1000000000 (0: no cap)`},
		{"BUDGET_DAY_USD", "Inf", `"Inf" is not an amount of dollars`},
		{"BUDGET_MONTH_USD", "-0.5", `"-0.5" is not an amount of dollars`},
		{"BUDGET_MONTH_USD", "$5", `"$5" is not an amount of dollars`},
		{"PRICES", "claude-x=1/2/3", `PRICES (from environment): price "claude-x=1/2/3": want 4 prices`},
		{"PRICES", "claude-x=1/2/3/-4", `"-4" is not a number of dollars`},
		{"PRICES", "claude-x", `want MODEL=INPUT/OUTPUT/CACHE_READ/CACHE_WRITE`},
	} {
		getenv, _ := env(t, tc.key, tc.value)
		if _, err := Load(getenv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want %q", tc.key, tc.value, err, tc.want)
		}
	}
}
