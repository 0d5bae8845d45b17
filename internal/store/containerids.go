package store

import (
	"context"
	"database/sql"
	"fmt"
)

// ContainerID returns the uid (the gid is the same number) that the group
// in folder's containers run as when the daemon runs as root. On first use
// it allocates the lowest id in [lo, hi) above every id handed out so far
// for which taken reports false — taken says whether an id belongs to an
// account, a group or a subordinate range of the host (R2: a container user
// is never a real account of the host, and no two groups share one). The id
// is kept for good, so a group's files stay its own across restarts.
func (s *Store) ContainerID(ctx context.Context, folder string, lo, hi int, taken func(int) bool) (int, error) {
	if err := ValidateFolder(folder); err != nil {
		return 0, fmt.Errorf("container id: %w", err)
	}
	var uid int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT uid FROM container_ids WHERE folder = ?`, folder).Scan(&uid)
		if err == nil {
			if uid < lo || uid >= hi {
				return fmt.Errorf("stored uid %d is outside the range %d-%d", uid, lo, hi-1)
			}
			return nil
		}
		if !isNoRows(err) {
			return err
		}
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(uid) FROM container_ids`).Scan(&last); err != nil {
			return err
		}
		uid = lo
		if last.Valid && int(last.Int64) >= lo {
			uid = int(last.Int64) + 1
		}
		for uid < hi && taken(uid) {
			uid++
		}
		if uid >= hi {
			return fmt.Errorf("no free id left in the range %d-%d", lo, hi-1)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO container_ids (folder, uid) VALUES (?, ?)`, folder, uid)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("container id of group %q: %w", folder, err)
	}
	return uid, nil
}
