package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
)

// egressApprovals is schema step v8's part for the owner's egress
// approvals (issue 14): every question asked of the owner under egress
// mode ask, and its answer. A code is the owner's handle on one question;
// decided_at and decision are set together, once.
var egressApprovals = `
CREATE TABLE egress_approvals (
	code       TEXT PRIMARY KEY CHECK (length(code) = ` + fmt.Sprint(AskCodeLen) + ` AND code NOT GLOB '*[^` + askCodeAlphabet + `]*'),
	folder     TEXT NOT NULL CHECK (` + folderRule("folder") + `),
	host       TEXT NOT NULL CHECK (octet_length(host) BETWEEN 1 AND 253),
	port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
	asked_at   INTEGER NOT NULL,
	decided_at INTEGER,
	decision   TEXT CHECK (decision IN ('allow', 'always', 'deny', 'timeout')),
	decided_by TEXT NOT NULL DEFAULT '' CHECK (octet_length(decided_by) <= 300),
	CHECK ((decided_at IS NULL) = (decision IS NULL))
) STRICT;
CREATE INDEX egress_approvals_asked ON egress_approvals(asked_at);
`

// AskCodeLen is the length of an ask's code.
const AskCodeLen = 6

// askCodeAlphabet has no 0/O, 1/I/L: a code is read on a phone and typed
// back.
const askCodeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// askRetention is how long asks and their answers are kept.
const askRetention = 90 * 24 * time.Hour

// Approval is one question to the owner about a destination of a group
// in egress mode ask, and, once decided, its answer.
type Approval struct {
	Code    string
	Folder  string
	Host    string // canonical (egress.CanonicalHost)
	Port    int
	AskedAt time.Time
	// DecidedAt and Decision are nil and "" while the question is open.
	DecidedAt *time.Time
	Decision  egress.Verdict
	// DecidedBy says who answered: the owner's sender id and message, or
	// "" for a timeout.
	DecidedBy string
}

// Target is the asked destination as "host:port".
func (a Approval) Target() string { return approvedTarget(a.Host, a.Port) }

// Validate checks every field of a.
func (a Approval) Validate() error {
	if err := ValidateAskCode(a.Code); err != nil {
		return err
	}
	if err := ValidateFolder(a.Folder); err != nil {
		return err
	}
	if h, _, err := egress.CanonicalHost(a.Host); err != nil || h != a.Host {
		return fmt.Errorf("egress ask %s: host %q is not canonical", a.Code, a.Host)
	}
	if a.Port < 1 || a.Port > 65535 {
		return fmt.Errorf("egress ask %s: port %d out of range", a.Code, a.Port)
	}
	if (a.DecidedAt == nil) != (a.Decision == "") || a.Decision != "" && !a.Decision.Valid() {
		return fmt.Errorf("egress ask %s: decision %q at %v", a.Code, a.Decision, a.DecidedAt)
	}
	return nil
}

// ValidateAskCode checks the form of an ask's code (upper case, as made).
func ValidateAskCode(code string) error {
	if len(code) != AskCodeLen || strings.Trim(code, askCodeAlphabet) != "" {
		return fmt.Errorf("egress ask code %q: want %d characters of %s", code, AskCodeLen, askCodeAlphabet)
	}
	return nil
}

func approvedTarget(host string, port int) string {
	return egress.Rule{Kind: egress.Domain, Host: host, Port: port}.String()
}

// validateApproved checks ContainerConfig.ApprovedAllow: each entry one
// host (a name or an address) with one port, in canonical form, listed
// once.
func validateApproved(list []string) error {
	if len(list) > egress.MaxRules {
		return fmt.Errorf("container config: approved_allow: %d entries, at most %d", len(list), egress.MaxRules)
	}
	for i, s := range list {
		r, err := egress.ParseRule(s)
		if err == nil && (r.Kind != egress.Domain && r.Kind != egress.Address || r.Port < 1 || r.String() != s) {
			err = errors.New("want one host and one port, as an approval adds it (example.com:443)")
		}
		if err != nil {
			return fmt.Errorf("container config: approved_allow[%d] %q: %w", i, s, err)
		}
		if slices.Index(list, s) != i {
			return fmt.Errorf("container config: approved_allow[%d] %q is listed twice", i, s)
		}
	}
	return nil
}

// Approved reports whether the owner answered "always" to host:port for a
// group with config c (host canonical).
func (c ContainerConfig) Approved(host string, port int) bool {
	return slices.Contains(c.ApprovedAllow, approvedTarget(host, port))
}

const askColumns = `code, folder, host, port, asked_at, decided_at, decision, decided_by`

func scanAsk(sc scanner) (a Approval, key string, err error) {
	var decision sql.NullString
	err = sc.Scan(&a.Code, &a.Folder, &a.Host, &a.Port, asTime(&a.AskedAt), asNullTime(&a.DecidedAt), &decision, &a.DecidedBy)
	a.Decision = egress.Verdict(decision.String)
	if err == nil {
		err = a.Validate()
	}
	return a, a.Code, err
}

// AddApproval records a new open question about host:port (canonical) of
// the group in folder, under a fresh code, and returns it. Asks older than
// askRetention are removed.
func (s *Store) AddApproval(ctx context.Context, folder, host string, port int) (Approval, error) {
	a := Approval{Folder: folder, Host: host, Port: port, AskedAt: time.Now().UTC().Truncate(time.Millisecond)}
	for range 5 {
		a.Code = newAskCode()
		if err := a.Validate(); err != nil {
			return Approval{}, fmt.Errorf("add egress ask: %w", err)
		}
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM egress_approvals WHERE asked_at < ?`, toMillis(a.AskedAt.Add(-askRetention))); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO egress_approvals (code, folder, host, port, asked_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (code) DO NOTHING`, a.Code, a.Folder, a.Host, a.Port, toMillis(a.AskedAt))
			if err == nil {
				n, err = res.RowsAffected()
			}
			return err
		})
		if err != nil {
			return Approval{}, fmt.Errorf("add egress ask for %s: %w", folder, err)
		}
		if n == 1 {
			return a, nil
		}
	}
	return Approval{}, errors.New("add egress ask: no free code")
}

func newAskCode() string {
	b := make([]byte, AskCodeLen)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	for i := range b {
		b[i] = askCodeAlphabet[int(b[i])%len(askCodeAlphabet)]
	}
	return string(b)
}

// ApprovalByCode returns the ask with code (upper case).
func (s *Store) ApprovalByCode(ctx context.Context, code string) (Approval, bool, error) {
	return queryOne(ctx, s, "get egress ask "+code, "egress_approvals", scanAsk,
		`SELECT `+askColumns+` FROM egress_approvals WHERE code = ?`, code)
}

// RecentApprovals returns the newest limit asks, newest first.
func (s *Store) RecentApprovals(ctx context.Context, limit int) ([]Approval, error) {
	return queryList(ctx, s, "list egress asks", "egress_approvals", scanAsk,
		`SELECT `+askColumns+` FROM egress_approvals ORDER BY asked_at DESC, code LIMIT ?`, limit)
}

// ErrDecided is returned by DecideApproval for an ask answered before.
var ErrDecided = errors.New("already decided")

// DecideApproval records v as the answer to the open ask code, by whom,
// and returns the ask as decided. For VerdictAlways the destination is
// added to the group's ApprovedAllow in the same transaction, so the
// answer and the rule are kept together or not at all. An ask decided
// before is left as it is: the error wraps ErrDecided and the ask
// returned is the stored one; an unknown code wraps ErrNotFound.
func (s *Store) DecideApproval(ctx context.Context, code string, v egress.Verdict, by string) (Approval, error) {
	if !v.Valid() {
		return Approval{}, fmt.Errorf("decide egress ask %s: unknown verdict %q", code, v)
	}
	if len(by) > 300 {
		by = by[:300]
	}
	var a Approval
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, _, err = scanAsk(tx.QueryRowContext(ctx, `SELECT `+askColumns+` FROM egress_approvals WHERE code = ?`, code))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("egress ask %s: %w", code, ErrNotFound)
		case err != nil:
			return err
		case a.Decision != "":
			return fmt.Errorf("egress ask %s: %w (%s)", code, ErrDecided, a.Decision)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		a.DecidedAt, a.Decision, a.DecidedBy = &now, v, by
		if _, err := tx.ExecContext(ctx, `UPDATE egress_approvals SET decided_at = ?, decision = ?, decided_by = ? WHERE code = ?`,
			toMillis(now), string(v), by, code); err != nil {
			return err
		}
		if v == egress.VerdictAlways {
			return addApproved(ctx, tx, a.Folder, a.Target())
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrDecided) {
		return Approval{}, fmt.Errorf("decide egress ask %s: %w", code, err)
	}
	return a, err
}

// addApproved adds target to the ApprovedAllow of the group in folder.
func addApproved(ctx context.Context, tx *sql.Tx, folder, target string) error {
	var raw []byte
	err := tx.QueryRowContext(ctx, `SELECT container_config FROM groups WHERE folder = ?`, folder).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("group %s: %w", folder, ErrNotFound)
	}
	if err != nil {
		return err
	}
	c, err := ParseContainerConfig(raw)
	if err != nil {
		return fmt.Errorf("group %s: %w", folder, err)
	}
	if slices.Contains(c.ApprovedAllow, target) {
		return nil
	}
	c.ApprovedAllow = append(c.ApprovedAllow, target)
	if err := c.Validate(); err != nil {
		return fmt.Errorf("group %s: %w", folder, err)
	}
	raw, err = json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE groups SET container_config = ? WHERE folder = ?`, string(raw), folder)
	return err
}

// CloseOpenApprovals records a timeout for every ask still open: at
// start, no connection of an earlier daemon waits for them any more.
func (s *Store) CloseOpenApprovals(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE egress_approvals SET decided_at = ?, decision = 'timeout' WHERE decided_at IS NULL`,
		toMillis(time.Now()))
	if err != nil {
		return fmt.Errorf("close open egress asks: %w", err)
	}
	return nil
}
