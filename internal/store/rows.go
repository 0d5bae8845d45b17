package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// BadRowError reports a row that exists but does not decode into a valid
// value: a wrong type, an unknown enum, an invalid folder name, a malformed
// container config (finding 12). Single-row getters return it; list functions
// skip such rows and log them at WARN instead.
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

// rawRow holds one row's columns as the driver returned them (int64, float64,
// string, []byte or nil). Scanning into any never fails, so a value of the
// wrong type becomes a validation error of that row instead of an error of
// the whole query.
type rawRow []any

type scanner interface{ Scan(dest ...any) error }

func scanRaw(sc scanner, n int) (rawRow, error) {
	row := make(rawRow, n)
	ptrs := make([]any, n)
	for i := range row {
		ptrs[i] = &row[i]
	}
	return row, sc.Scan(ptrs...)
}

// columns splits a SELECT column list into names, for error messages.
func columns(list string) []string {
	names := strings.Split(list, ",")
	for i, n := range names {
		n = strings.TrimSpace(n)
		if j := strings.LastIndexByte(n, '.'); j >= 0 {
			n = n[j+1:]
		}
		names[i] = strings.Trim(n, `"`)
	}
	return names
}

// decoder converts a rawRow into Go values, keeping the first error.
type decoder struct {
	row  rawRow
	cols []string
	err  error
}

func (d *decoder) fail(i int, format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("column %s: %s", d.cols[i], fmt.Sprintf(format, args...))
	}
}

// key renders column i for a log line or a BadRowError, whatever its type.
func (d *decoder) key(i int) string {
	switch v := d.row[i].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return "NULL"
	default:
		return fmt.Sprint(v)
	}
}

func (d *decoder) text(i int) string {
	if v, ok := d.row[i].(string); ok {
		return v
	}
	// The driver returns TEXT as string and BLOB as []byte.
	d.fail(i, "want text, got %s", describe(d.row[i]))
	return ""
}

// nullText decodes a nullable text column; NULL becomes "".
func (d *decoder) nullText(i int) string {
	if d.row[i] == nil {
		return ""
	}
	return d.text(i)
}

func (d *decoder) int(i int) int64 {
	if v, ok := d.row[i].(int64); ok {
		return v
	}
	d.fail(i, "want integer, got %s", describe(d.row[i]))
	return 0
}

// count decodes a column that must hold a non-negative integer.
func (d *decoder) count(i int) int64 {
	v := d.int(i)
	if v < 0 {
		d.fail(i, "negative value %d", v)
	}
	return v
}

func (d *decoder) bool(i int) bool {
	v := d.int(i)
	if v != 0 && v != 1 {
		d.fail(i, "want 0 or 1, got %d", v)
	}
	return v == 1
}

// time decodes unix milliseconds; times before 1970 are never written.
func (d *decoder) time(i int) time.Time {
	ms := d.int(i)
	if ms < 0 {
		d.fail(i, "negative time %d", ms)
	}
	return fromMillis(ms)
}

func (d *decoder) nullTime(i int) *time.Time {
	if d.row[i] == nil {
		return nil
	}
	t := d.time(i)
	return &t
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("real %v", v)
	case string:
		return fmt.Sprintf("text %q", v)
	case []byte:
		return fmt.Sprintf("blob of %d bytes", len(v))
	default:
		return fmt.Sprintf("%T", v)
	}
}

// rowDecoder turns a raw row into a validated value and returns the row's
// key (for reporting) whether or not that succeeded.
type rowDecoder[T any] func(rawRow) (value T, key string, err error)

// queryList runs a query and decodes every row; an invalid row is skipped and
// logged with its table and key (finding 12), so one bad row cannot take
// down a whole listing.
func queryList[T any](ctx context.Context, s *Store, table string, ncols int, decode rowDecoder[T], query string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []T
	for rows.Next() {
		raw, err := scanRaw(rows, ncols)
		if err != nil {
			return nil, err
		}
		v, key, err := decode(raw)
		if err != nil {
			s.log.Warn("skipping invalid row", "table", table, "key", key, "err", err)
			continue
		}
		list = append(list, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return list, nil
}

// queryOne runs a query for at most one row. No row is (zero, false, nil); an
// invalid row is a *BadRowError.
func queryOne[T any](ctx context.Context, s *Store, table string, ncols int, decode rowDecoder[T], query string, args ...any) (T, bool, error) {
	var zero T
	raw, err := scanRaw(s.db.QueryRowContext(ctx, query, args...), ncols)
	if isNoRows(err) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, err
	}
	v, key, err := decode(raw)
	if err != nil {
		return zero, false, &BadRowError{Table: table, Key: key, Err: err}
	}
	return v, true, nil
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

// checkTime rejects times the decoder would refuse to read back.
func checkTime(name string, t time.Time) error {
	if t.UnixMilli() < 0 {
		return fmt.Errorf("%s %s is before 1970", name, t.Format(time.RFC3339))
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// isConstraint reports whether err is the SQLite constraint violation code.
func isConstraint(err error, code sqlite3.ExtendedErrorCode) bool { return errors.Is(err, code) }
