package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// BadRowError reports a row that exists but is not a valid value (finding
// 12). STRICT tables and their CHECK constraints keep out wrong types and
// shapes; what SQL does not check (a time zone, a container config, a chat
// id's characters) each type's Validate does, on every read. Single-row
// getters return it; list functions skip such rows and log them at WARN.
type BadRowError struct {
	Table string // the table the row is in
	Key   string // the row's primary key, as text
	Err   error  // what is wrong with it
}

func (e *BadRowError) Error() string {
	return fmt.Sprintf("invalid row in %s (key %s): %v", e.Table, e.Key, e.Err)
}

// Unwrap returns what is wrong with the row.
func (e *BadRowError) Unwrap() error { return e.Err }

// scanner is one row to read: *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// rowScanner reads one row into a validated value and returns the row's
// key (for reporting) whether or not that succeeded. The key comes first in
// the row, so it is read even when a later column is not.
type rowScanner[T any] func(scanner) (value T, key string, err error)

// queryList runs a query and reads every row; an invalid row is skipped and
// logged with its table and key (finding 12), so one bad row cannot take
// down a whole listing. An error says what failed: what.
func queryList[T any](ctx context.Context, s *Store, what, table string, scan rowScanner[T], query string, args ...any) ([]T, error) {
	return queryRows(ctx, s, what, table, false, scan, query, args...)
}

// queryOne runs a query for at most one row. No row is (zero, false, nil); an
// invalid row is a *BadRowError. An error says what failed: what.
func queryOne[T any](ctx context.Context, s *Store, what, table string, scan rowScanner[T], query string, args ...any) (T, bool, error) {
	list, err := queryRows(ctx, s, what, table, true, scan, query, args...)
	if err != nil || len(list) == 0 {
		var zero T
		return zero, false, err
	}
	return list[0], true, nil
}

// queryRows reads the rows of a query; an invalid row is a *BadRowError if
// strict, else skipped and logged.
func queryRows[T any](ctx context.Context, s *Store, what, table string, strict bool, scan rowScanner[T], query string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var list []T
	for rows.Next() {
		v, key, err := scan(rows)
		switch {
		case err != nil && strict:
			return nil, fmt.Errorf("%s: %w", what, &BadRowError{Table: table, Key: key, Err: err})
		case err != nil:
			s.log.Warn("skipping invalid row", "table", table, "key", key, "err", err)
		default:
			list = append(list, v)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return list, nil
}

// Times are stored as INTEGER unix milliseconds UTC.

func toMillis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func nullMillis(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// scanFunc makes a function an sql.Scanner.
type scanFunc func(src any) error

func (f scanFunc) Scan(src any) error { return f(src) }

// asTime reads a time column into *t.
func asTime(t *time.Time) sql.Scanner {
	return scanFunc(func(src any) error {
		ms, ok := src.(int64)
		if !ok {
			return fmt.Errorf("want unix milliseconds, got %T", src)
		}
		*t = fromMillis(ms)
		return nil
	})
}

// asNullTime reads a nullable time column into *t; NULL is nil.
func asNullTime(t **time.Time) sql.Scanner {
	return scanFunc(func(src any) error {
		if src == nil {
			*t = nil
			return nil
		}
		*t = new(time.Time)
		return asTime(*t).Scan(src)
	})
}

// checkTime rejects times before 1970, which the tables refuse.
func checkTime(name string, t time.Time) error {
	if t.UnixMilli() < 0 {
		return fmt.Errorf("%s %s is before 1970", name, t.Format(time.RFC3339))
	}
	return nil
}

// checkNullTime is checkTime of a nullable time; NULL passes.
func checkNullTime(name string, t *time.Time) error {
	if t == nil {
		return nil
	}
	return checkTime(name, *t)
}

// nonEmpty rejects an empty value of the field what. The Validate methods
// list such checks in cmp.Or, which returns the first error of them.
func nonEmpty(what, v string) error {
	if v == "" {
		return errors.New("empty " + what)
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
