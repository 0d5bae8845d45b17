package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Session returns the id of the Claude session a group's agent resumes, or ""
// if the group has none yet.
func (s *Store) Session(ctx context.Context, folder string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT session_id FROM sessions WHERE folder = ?`, folder).Scan(&id)
	if err != nil && !isNoRows(err) {
		return "", fmt.Errorf("get session of group %q: %w", folder, err)
	}
	return id, nil
}

// SetSession records the session id a group's agent resumes next time.
func (s *Store) SetSession(ctx context.Context, folder, id string) error {
	if id == "" {
		return fmt.Errorf("set session of group %q: empty session id", folder)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO sessions (folder, session_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (folder) DO UPDATE SET session_id = excluded.session_id, updated_at = excluded.updated_at`,
		folder, id, toMillis(time.Now()))
	if errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY) {
		return fmt.Errorf("set session of group %q: no such group: %w", folder, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set session of group %q: %w", folder, err)
	}
	return nil
}

// ClearSession forgets a group's session, so its next run starts afresh.
// Clearing a group without a session does nothing.
func (s *Store) ClearSession(ctx context.Context, folder string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE folder = ?`, folder); err != nil {
		return fmt.Errorf("clear session of group %q: %w", folder, err)
	}
	return nil
}
