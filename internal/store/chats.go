package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Chat is the metadata of a chat the account has seen, registered or not;
// the main group uses it to discover chats to register.
type Chat struct {
	JID          string    // the channel's chat id, e.g. "123@g.us" or "local:main"
	Name         string    // display name, chosen by others (a push name, a group subject); may be unknown ("")
	Channel      string    // the channel it came from, e.g. "whatsapp"
	IsGroup      bool      // a group chat rather than a one-to-one chat
	LastActivity time.Time // the newest message or event seen
}

// Validate checks every field of c.
func (c Chat) Validate() error {
	if err := checkJID(c.JID); err != nil {
		return err
	}
	if c.Channel == "" {
		return errors.New("empty channel")
	}
	return checkTime("last_activity", c.LastActivity)
}

const chatColumns = `jid, name, channel, is_group, last_activity`

var chatColumnNames = columns(chatColumns)

func decodeChat(raw rawRow) (Chat, string, error) {
	d := decoder{row: raw, cols: chatColumnNames}
	c := Chat{
		JID:          d.text(0),
		Name:         sanitize.Name(d.text(1)), // R19: rows stored before names were cleaned
		Channel:      d.text(2),
		IsGroup:      d.bool(3),
		LastActivity: d.time(4),
	}
	if d.err == nil {
		d.err = c.Validate()
	}
	if d.err != nil {
		return Chat{}, d.key(0), d.err
	}
	return c, c.JID, nil
}

// UpsertChat records c. For a known chat the name is only replaced by a
// non-empty one (events often come without it), and LastActivity only moves
// forward. The name is stored cleaned (sanitize.Name).
func (s *Store) UpsertChat(ctx context.Context, c Chat) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("upsert chat %q: %w", c.JID, err)
	}
	// R19: names of strangers' chats reach main's model (list_available_groups):
	// capped, one line, nothing that could read as markup or reorder text.
	c.Name = sanitize.Name(c.Name)
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO chats (jid, name, channel, is_group, last_activity) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (jid) DO UPDATE SET
			name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE chats.name END,
			channel = excluded.channel,
			is_group = excluded.is_group,
			last_activity = max(chats.last_activity, excluded.last_activity)`,
		c.JID, c.Name, c.Channel, boolInt(c.IsGroup), toMillis(c.LastActivity))
	if err != nil {
		return fmt.Errorf("upsert chat %q: %w", c.JID, err)
	}
	return nil
}

// GetChat returns the chat jid; found is false if it was never seen.
func (s *Store) GetChat(ctx context.Context, jid string) (c Chat, found bool, err error) {
	c, found, err = queryOne(ctx, s, "chats", len(chatColumnNames), decodeChat,
		`SELECT `+chatColumns+` FROM chats WHERE jid = ?`, jid)
	if err != nil {
		return Chat{}, false, fmt.Errorf("get chat %q: %w", jid, err)
	}
	return c, found, nil
}

// ListChats returns every valid chat, the most recently active first.
// Invalid rows are skipped and logged.
func (s *Store) ListChats(ctx context.Context) ([]Chat, error) {
	list, err := queryList(ctx, s, "chats", len(chatColumnNames), decodeChat,
		`SELECT `+chatColumns+` FROM chats ORDER BY last_activity DESC, jid`)
	if err != nil {
		return nil, fmt.Errorf("list chats: %w", err)
	}
	return list, nil
}
