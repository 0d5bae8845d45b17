package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// MaxFolderLen is the longest allowed group folder name.
const MaxFolderLen = 63

// ReservedFolder is the folder of the global memory, which no group may use.
const ReservedFolder = "global"

// ValidateFolder checks a group folder name. The folder becomes a directory
// name, part of container names and of IPC paths, so this is the one check
// every entry point uses (finding 5): 1..63 characters of lowercase ASCII
// letters, digits and '-', not starting with '-', and not "global". The
// database checks the same rule again (folderRule).
func ValidateFolder(name string) error {
	if name == "" {
		return errors.New("invalid group folder: empty name")
	}
	for i, r := range name {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
			return fmt.Errorf("invalid group folder %q: character %q at byte %d is not allowed (use lowercase a-z, 0-9 and '-')", name, r, i)
		}
	}
	if name[0] == '-' {
		return fmt.Errorf("invalid group folder %q: must start with a letter or digit", name)
	}
	if len(name) > MaxFolderLen {
		return fmt.Errorf("invalid group folder %q: %d characters, at most %d", name, len(name), MaxFolderLen)
	}
	if name == ReservedFolder {
		return fmt.Errorf("invalid group folder %q: reserved for the global memory", name)
	}
	return nil
}

// Group is a registered group: a folder (memory, container, session) that
// the assistant answers in, reached from one or more chats.
type Group struct {
	Folder          string          // unique; see ValidateFolder
	Name            string          // display name
	Trigger         string          // e.g. "@Andy"
	RequiresTrigger bool            // false: every message is answered
	IsMain          bool            // the owner's trusted control group; at most one
	AddedAt         time.Time       // when it was registered
	Config          ContainerConfig // container settings
}

// Validate checks every field of g.
func (g Group) Validate() error {
	return cmp.Or(ValidateFolder(g.Folder), nonEmpty("name", strings.TrimSpace(g.Name)),
		nonEmpty("trigger", strings.TrimSpace(g.Trigger)), checkTime("added_at", g.AddedAt), g.Config.Validate())
}

const groupColumns = `g.folder, g.name, g."trigger", g.requires_trigger, g.is_main, g.added_at, g.container_config`

func scanGroup(sc scanner) (g Group, key string, err error) {
	var config []byte
	err = sc.Scan(&g.Folder, &g.Name, &g.Trigger, &g.RequiresTrigger, &g.IsMain, asTime(&g.AddedAt), &config)
	if err == nil {
		if g.Config, err = ParseContainerConfig(config); err != nil {
			err = fmt.Errorf("column container_config: %w", err)
		}
	}
	return g, g.Folder, cmp.Or(err, g.Validate())
}

// PutGroup registers g, or updates it if its folder exists (keeping the
// original AddedAt). A zero AddedAt means now. g is validated first and
// written in one statement, so it is stored whole or not at all.
func (s *Store) PutGroup(ctx context.Context, g Group) error {
	g.AddedAt = cmp.Or(g.AddedAt, time.Now())
	if err := g.Validate(); err != nil {
		return fmt.Errorf("put group %q: %w", g.Folder, err)
	}
	config, err := json.Marshal(g.Config)
	if err != nil {
		return fmt.Errorf("put group %q: %w", g.Folder, err)
	}
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO groups (folder, name, "trigger", requires_trigger, is_main, added_at, container_config)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (folder) DO UPDATE SET
			name = excluded.name,
			"trigger" = excluded."trigger",
			requires_trigger = excluded.requires_trigger,
			is_main = excluded.is_main,
			container_config = excluded.container_config`,
		g.Folder, g.Name, g.Trigger, g.RequiresTrigger, g.IsMain, toMillis(g.AddedAt), string(config))
	if errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) {
		return fmt.Errorf("put group %q: another group is already the main group", g.Folder)
	}
	if err != nil {
		return fmt.Errorf("put group %q: %w", g.Folder, err)
	}
	return nil
}

// GetGroup returns the group in folder; found is false if there is none.
func (s *Store) GetGroup(ctx context.Context, folder string) (g Group, found bool, err error) {
	if err := ValidateFolder(folder); err != nil {
		return Group{}, false, fmt.Errorf("get group: %w", err)
	}
	return queryOne(ctx, s, fmt.Sprintf("get group %q", folder), "groups", scanGroup,
		`SELECT `+groupColumns+` FROM groups g WHERE g.folder = ?`, folder)
}

// ListGroups returns every valid group, the main group first, then by folder.
// Invalid rows are skipped and logged.
func (s *Store) ListGroups(ctx context.Context) ([]Group, error) {
	return queryList(ctx, s, "list groups", "groups", scanGroup,
		`SELECT `+groupColumns+` FROM groups g ORDER BY g.is_main DESC, g.folder`)
}

// MainGroup returns the main group; found is false if none is registered.
func (s *Store) MainGroup(ctx context.Context) (g Group, found bool, err error) {
	return queryOne(ctx, s, "get main group", "groups", scanGroup,
		`SELECT `+groupColumns+` FROM groups g WHERE g.is_main = 1`)
}

// DeleteGroup unregisters the group in folder, with its chat bindings, its
// session and its tasks. Its stored messages stay. A missing group is an
// error wrapping ErrNotFound.
func (s *Store) DeleteGroup(ctx context.Context, folder string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM groups WHERE folder = ?`, folder)
	if err != nil {
		return fmt.Errorf("delete group %q: %w", folder, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete group %q: %w", folder, ErrNotFound)
	}
	return nil
}

// BindChat makes the chat jid reach the group in folder. Binding a chat to
// the group it is already bound to does nothing; a chat bound to another
// group stays with it (until that group is deleted), so a registration never
// silently moves a chat.
func (s *Store) BindChat(ctx context.Context, jid, folder string) error {
	if err := cmp.Or(checkJID(jid), ValidateFolder(folder)); err != nil {
		return fmt.Errorf("bind chat %q to group %q: %w", jid, folder, err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var current string
		err := tx.QueryRowContext(ctx, `SELECT folder FROM group_chats WHERE jid = ?`, jid).Scan(&current)
		switch {
		case err == nil && current == folder:
			return nil
		case err == nil:
			return fmt.Errorf("chat is already bound to group %q", current)
		case !isNoRows(err):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO group_chats (jid, folder) VALUES (?, ?)`, jid, folder)
		if errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY) {
			return fmt.Errorf("no group %q: %w", folder, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("bind chat %q to group %q: %w", jid, folder, err)
	}
	return nil
}

// MoveChat moves what is bound to chat from onto chat to, which the
// chat's service says replaced it (a Telegram group that became a
// supergroup gets a new id, and the old one takes no more messages): the
// group from is bound to is then reached from to as well, and the tasks
// and the unsent replies that named from name to (a reply no longer quotes:
// its quote is in from). It returns that group's folder, or "" when from
// is not bound to one (nothing changes). A to bound to another group is an
// error and changes nothing. from stays bound, with its messages: what it
// holds unanswered is still answered, and the channel sends the answers on
// to to.
func (s *Store) MoveChat(ctx context.Context, from, to string) (string, error) {
	if err := cmp.Or(checkJID(from), checkJID(to)); err != nil {
		return "", fmt.Errorf("move chat %q to %q: %w", from, to, err)
	}
	if from == to {
		return "", fmt.Errorf("move chat %q to itself", from)
	}
	var folder string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT folder FROM group_chats WHERE jid = ?`, from).Scan(&folder)
		if isNoRows(err) {
			folder = ""
			return nil
		}
		if err != nil {
			return err
		}
		var current string
		err = tx.QueryRowContext(ctx, `SELECT folder FROM group_chats WHERE jid = ?`, to).Scan(&current)
		switch {
		case err == nil && current != folder:
			return fmt.Errorf("%q is already %w, %q", to, ErrBoundElsewhere, current)
		case err == nil:
		case isNoRows(err):
			if _, err := tx.ExecContext(ctx, `INSERT INTO group_chats (jid, folder) VALUES (?, ?)`, to, folder); err != nil {
				return err
			}
		default:
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET chat_jid = ? WHERE chat_jid = ?`, to, from); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET chat_jid = ?, reply_to = '' WHERE chat_jid = ? AND sent_at IS NULL`, to, from)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("move chat %q to %q: %w", from, to, err)
	}
	return folder, nil
}

// GroupForChat returns the group the chat jid is bound to; found is false
// for an unregistered chat.
func (s *Store) GroupForChat(ctx context.Context, jid string) (g Group, found bool, err error) {
	return queryOne(ctx, s, fmt.Sprintf("group for chat %q", jid), "groups", scanGroup,
		`SELECT `+groupColumns+` FROM group_chats c JOIN groups g ON g.folder = c.folder WHERE c.jid = ?`, jid)
}

// ChatsOfGroup returns the ids of the chats bound to the group in folder,
// sorted.
func (s *Store) ChatsOfGroup(ctx context.Context, folder string) ([]string, error) {
	return queryList(ctx, s, fmt.Sprintf("chats of group %q", folder), "group_chats", scanChatID,
		`SELECT jid FROM group_chats WHERE folder = ? ORDER BY jid`, folder)
}

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

// DayLayout is the format of usage days: YYYY-MM-DD.
const DayLayout = "2006-01-02"

// UsageDay is one group's model usage on one day.
type UsageDay struct {
	Folder string
	Day    string // YYYY-MM-DD, UTC
	// Requests counts the API responses that reported usage.
	Requests int64
	// InputTokens are the input tokens neither read from nor written to
	// the cache (before schema v8: all of them, cache included).
	InputTokens      int64
	OutputTokens     int64
	CacheReadTokens  int64
	CacheWriteTokens int64
	CostMicro        int64 // millionths of a US dollar, by the host's price table
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
	if u.Requests < 0 || u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWriteTokens < 0 || u.CostMicro < 0 {
		return errNegative
	}
	return cmp.Or(ValidateFolder(u.Folder), ValidateDay(u.Day))
}

// AddUsage counts one request of the group in folder on day with its
// input and output tokens and nothing else (see RecordUsage).
func (s *Store) AddUsage(ctx context.Context, folder, day string, inTokens, outTokens int64) error {
	return s.RecordUsage(ctx, folder, day, inTokens, outTokens, 0, 0, 0)
}

// RecordUsage counts one API response of the group in folder on day
// (YYYY-MM-DD, UTC), adding its tokens and cost (micro-dollars) to the
// day's and the month's rows. The values are plain so that the gateway's
// recorder interface needs no store type.
func (s *Store) RecordUsage(ctx context.Context, folder, day string, inTokens, outTokens, cacheRead, cacheWrite, costMicro int64) error {
	u := UsageDay{Folder: folder, Day: day, Requests: 1, InputTokens: inTokens, OutputTokens: outTokens,
		CacheReadTokens: cacheRead, CacheWriteTokens: cacheWrite, CostMicro: costMicro}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("add usage of group %q on %s: %w", folder, day, err)
	}
	// The day's row and the month's (usage_months), together: a budget
	// check never sees one without the other.
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range []struct{ table, key, value string }{{"usage", "day", day}, {"usage_months", "month", day[:7]}} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+r.table+` (folder, `+r.key+`, requests, input_tokens, output_tokens,
				cache_read_tokens, cache_write_tokens, cost_micro)
				VALUES (?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT (folder, `+r.key+`) DO UPDATE SET requests = requests + 1,
				input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
				cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
				cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
				cost_micro = cost_micro + excluded.cost_micro`,
				folder, r.value, inTokens, outTokens, cacheRead, cacheWrite, costMicro); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add usage of group %q on %s: %w", folder, day, err)
	}
	return nil
}

func scanUsage(sc scanner) (u UsageDay, key string, err error) {
	err = sc.Scan(&u.Folder, &u.Day, &u.Requests, &u.InputTokens, &u.OutputTokens, &u.CacheReadTokens, &u.CacheWriteTokens, &u.CostMicro)
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
		`SELECT folder, day, requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micro FROM usage
		WHERE (?1 = '' OR folder = ?1) AND day BETWEEN ?2 AND ?3
		ORDER BY day, folder`, folder, fromDay, toDay)
}
