package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/status"
)

// printSpend is status's SPEND table: each group's spend today and this
// month against its budget, and the total of all groups against the host's
// (BUDGET_*, a setting of this CLI's config as of the daemon's).
func (m *Main) printSpend(r *status.Report, total gateway.Budget) {
	fmt.Fprintln(m.Stdout, "\nSPEND  (spent / budget; UTC days and months; tokens are input, output and cache; -: no budget)")
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FOLDER\tTOKENS TODAY\tUSD TODAY\tTOKENS THIS MONTH\tUSD THIS MONTH")
	row := func(name string, s status.Spend) {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", name, tokensOf(s.Today), usdOf(s.Today), tokensOf(s.Month), usdOf(s.Month))
	}
	for _, g := range r.Groups {
		row(g.Folder, g.Spend)
	}
	if t := r.Total; t != nil {
		t.Today.TokensCap, t.Today.USDCap = total.DayTokens, total.DayUSD
		t.Month.TokensCap, t.Month.USDCap = total.MonthTokens, total.MonthUSD
		row("(all groups)", *t)
	}
	tw.Flush()
}

// tokensOf is "spent / cap", the cap "-" when there is none.
func tokensOf(a status.Amount) string {
	capText := "-"
	if a.TokensCap > 0 {
		capText = short(a.TokensCap)
	}
	return short(a.Tokens) + " / " + capText + overMark(a.TokensCap > 0 && a.Tokens >= a.TokensCap)
}

// usdOf is "spent / cap" in dollars, the cap "-" when there is none.
func usdOf(a status.Amount) string {
	capText := "-"
	if a.USDCap > 0 {
		capText = fmt.Sprintf("%.2f", a.USDCap)
	}
	return fmt.Sprintf("%.2f / %s", a.USD, capText) + overMark(a.USDCap > 0 && a.USD >= a.USDCap)
}

// overMark flags a budget that is reached.
func overMark(reached bool) string {
	if reached {
		return " (reached)"
	}
	return ""
}
