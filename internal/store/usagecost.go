package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// usageCosts is schema step v8's part for budgets (issue 14): cache tokens
// and cost, as the gateway counts them from the API's own usage reports,
// beside the input and output tokens of each group's day and month. Rows
// from before v8 keep 0 there (their input_tokens had cache tokens folded
// in). usage_day and usage_months_month serve the host's total of all
// groups on a day or in a month, which every budget check of a total
// budget reads.
var usageCosts = `
ALTER TABLE usage ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0);
ALTER TABLE usage ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0);
ALTER TABLE usage ADD COLUMN cost_micro INTEGER NOT NULL DEFAULT 0 CHECK (cost_micro >= 0);
ALTER TABLE usage_months ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0);
ALTER TABLE usage_months ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0);
ALTER TABLE usage_months ADD COLUMN cost_micro INTEGER NOT NULL DEFAULT 0 CHECK (cost_micro >= 0);
CREATE INDEX usage_day ON usage(day);
CREATE INDEX usage_months_month ON usage_months(month);
CREATE TABLE budget_hits (
	folder TEXT NOT NULL CHECK (folder = '' OR (` + folderRule("folder") + `)),
	what   TEXT NOT NULL CHECK (what IN (` + budgetWhats + `)),
	period TEXT NOT NULL CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]' OR period GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
	at     INTEGER NOT NULL CHECK (at >= 0),
	PRIMARY KEY (folder, what, period)
) STRICT;
`

// budgetWhats are the budgets a hit can be of: the group's own, or
// "total-" the host's of all groups together.
const budgetWhats = `'day-tokens', 'day-usd', 'month-tokens', 'month-usd',
	'total-day-tokens', 'total-day-usd', 'total-month-tokens', 'total-month-usd'`

// Spend is model usage summed over a day or a month: what budgets are
// checked against.
type Spend struct {
	Requests         int64
	InputTokens      int64 // input tokens not read from or written to the cache
	OutputTokens     int64
	CacheReadTokens  int64
	CacheWriteTokens int64
	CostMicro        int64 // millionths of a US dollar, by the host's price table
}

// Tokens is every token a budget counts: input, output and cache together.
func (s Spend) Tokens() int64 {
	return s.InputTokens + s.OutputTokens + s.CacheReadTokens + s.CacheWriteTokens
}

// Spent returns what the group in folder ("" = all groups together) spent
// on day (YYYY-MM-DD, UTC as the gateway counts) and in day's month.
func (s *Store) Spent(ctx context.Context, folder, day string) (onDay, inMonth Spend, err error) {
	if err := ValidateDay(day); err != nil {
		return Spend{}, Spend{}, fmt.Errorf("spend of group %q on %s: %w", folder, day, err)
	}
	const sums = `coalesce(sum(requests), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
		coalesce(sum(cache_read_tokens), 0), coalesce(sum(cache_write_tokens), 0), coalesce(sum(cost_micro), 0)`
	// Two statements, not "?1 = '' OR folder = ?1", which no index serves.
	read := func(table, key, value string, sp *Spend) error {
		q, args := `SELECT `+sums+` FROM `+table+` WHERE `+key+` = ?`, []any{value}
		if folder != "" {
			q, args = q+` AND folder = ?`, append(args, folder)
		}
		return s.db.QueryRowContext(ctx, q, args...).Scan(&sp.Requests, &sp.InputTokens, &sp.OutputTokens,
			&sp.CacheReadTokens, &sp.CacheWriteTokens, &sp.CostMicro)
	}
	if err := cmp.Or(read("usage", "day", day, &onDay), read("usage_months", "month", day[:7], &inMonth)); err != nil {
		return Spend{}, Spend{}, fmt.Errorf("spend of group %q on %s: %w", folder, day, err)
	}
	return onDay, inMonth, nil
}

// MarkBudgetHit notes that the budget what ("day-tokens", "total-month-usd",
// ...; see budgetWhats) of the group in folder ("" for the owner's notice
// of a total budget) was found reached in period (YYYY-MM-DD or YYYY-MM,
// UTC). first is true the first time for that period: the group and the
// owner are told once, across restarts too. Marks of past months are
// dropped.
func (s *Store) MarkBudgetHit(ctx context.Context, folder, what, period string, at time.Time) (first bool, err error) {
	if folder != "" {
		if err := ValidateFolder(folder); err != nil {
			return false, fmt.Errorf("budget hit of group %q: %w", folder, err)
		}
	}
	if len(period) < 7 || (len(period) == 7 && ValidateDay(period+"-01") != nil) || (len(period) != 7 && ValidateDay(period) != nil) {
		return false, fmt.Errorf("budget hit of group %q: period %q is not YYYY-MM-DD or YYYY-MM", folder, period)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM budget_hits WHERE substr(period, 1, 7) < ?`, period[:7]); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO budget_hits (folder, what, period, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (folder, what, period) DO NOTHING`, folder, what, period, at.UnixMilli())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("budget hit %s of group %q in %s: %w", what, folder, period, err)
	}
	return first, nil
}

// validate checks a budget: each cap 0 (none) or positive and finite.
func (b Budget) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"day_tokens", float64(b.DayTokens)}, {"month_tokens", float64(b.MonthTokens)}, {"day_usd", b.DayUSD}, {"month_usd", b.MonthUSD}} {
		// Written so that NaN fails too.
		if !(f.v >= 0 && !math.IsInf(f.v, 0)) {
			return fmt.Errorf("container config: budget.%s %v: want 0 (no cap) or a positive number", f.name, f.v)
		}
	}
	return nil
}

// errNegative is a usage count below zero.
var errNegative = errors.New("negative count")
