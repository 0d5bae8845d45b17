package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// DayLayout is the format of usage days: YYYY-MM-DD.
const DayLayout = "2006-01-02"

// UsageDay is one group's model usage on one day.
type UsageDay struct {
	Folder       string
	Day          string // YYYY-MM-DD
	Requests     int64  // agent runs
	InputTokens  int64
	OutputTokens int64
}

// ValidateDay accepts a calendar day written YYYY-MM-DD.
func ValidateDay(day string) error {
	t, err := time.Parse(DayLayout, day)
	if err != nil || t.Format(DayLayout) != day {
		return fmt.Errorf("day %q is not a date written YYYY-MM-DD", day)
	}
	return nil
}

// Validate checks every field of u.
func (u UsageDay) Validate() error {
	if u.Requests < 0 || u.InputTokens < 0 || u.OutputTokens < 0 {
		return errors.New("negative count")
	}
	return cmp.Or(ValidateFolder(u.Folder), ValidateDay(u.Day))
}

// AddUsage counts one request of the group in folder on day, with its
// tokens, adding to what the day already has.
func (s *Store) AddUsage(ctx context.Context, folder, day string, inTokens, outTokens int64) error {
	u := UsageDay{Folder: folder, Day: day, Requests: 1, InputTokens: inTokens, OutputTokens: outTokens}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("add usage of group %q on %s: %w", folder, day, err)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO usage (folder, day, requests, input_tokens, output_tokens) VALUES (?, ?, 1, ?, ?)
		ON CONFLICT (folder, day) DO UPDATE SET
			requests = usage.requests + 1,
			input_tokens = usage.input_tokens + excluded.input_tokens,
			output_tokens = usage.output_tokens + excluded.output_tokens`,
		folder, day, inTokens, outTokens)
	if err != nil {
		return fmt.Errorf("add usage of group %q on %s: %w", folder, day, err)
	}
	return nil
}

func scanUsage(sc scanner) (u UsageDay, key string, err error) {
	err = sc.Scan(&u.Folder, &u.Day, &u.Requests, &u.InputTokens, &u.OutputTokens)
	return u, u.Folder + "/" + u.Day, cmp.Or(err, u.Validate())
}

// Usage returns the usage of the group in folder ("" = of all groups) from
// fromDay to toDay inclusive, by day then folder. Invalid rows are skipped
// and logged.
func (s *Store) Usage(ctx context.Context, folder, fromDay, toDay string) ([]UsageDay, error) {
	what := fmt.Sprintf("usage of group %q from %s to %s", folder, fromDay, toDay)
	if err := cmp.Or(ValidateDay(fromDay), ValidateDay(toDay)); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return queryList(ctx, s, what, "usage", scanUsage,
		`SELECT folder, day, requests, input_tokens, output_tokens FROM usage
		WHERE (?1 = '' OR folder = ?1) AND day BETWEEN ?2 AND ?3
		ORDER BY day, folder`, folder, fromDay, toDay)
}
