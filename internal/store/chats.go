package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
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
	return cmp.Or(checkJID(c.JID), nonEmpty("channel", c.Channel), checkTime("last_activity", c.LastActivity))
}

const chatColumns = `jid, name, channel, is_group, last_activity`

func scanChat(sc scanner) (c Chat, key string, err error) {
	err = sc.Scan(&c.JID, &c.Name, &c.Channel, &c.IsGroup, asTime(&c.LastActivity))
	c.Name = sanitize.Name(c.Name) // R19: rows stored before names were cleaned
	return c, c.JID, cmp.Or(err, c.Validate())
}

// scanChatID reads a row of one column, a chat id.
func scanChatID(sc scanner) (jid, key string, err error) {
	if err = sc.Scan(&jid); err == nil {
		err = checkJID(jid)
	}
	return jid, jid, err
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
		c.JID, c.Name, c.Channel, c.IsGroup, toMillis(c.LastActivity))
	if err != nil {
		return fmt.Errorf("upsert chat %q: %w", c.JID, err)
	}
	return nil
}

// GetChat returns the chat jid; found is false if it was never seen.
func (s *Store) GetChat(ctx context.Context, jid string) (c Chat, found bool, err error) {
	return queryOne(ctx, s, fmt.Sprintf("get chat %q", jid), "chats", scanChat,
		`SELECT `+chatColumns+` FROM chats WHERE jid = ?`, jid)
}

// ListChats returns every valid chat, the most recently active first.
// Invalid rows are skipped and logged.
func (s *Store) ListChats(ctx context.Context) ([]Chat, error) {
	return queryList(ctx, s, "list chats", "chats", scanChat,
		`SELECT `+chatColumns+` FROM chats ORDER BY last_activity DESC, jid`)
}

// LocalChatPrefix begins the ids of the local terminal channel's chats:
// "local:<folder>".
const LocalChatPrefix = "local:"

// The WhatsApp servers of the chats nanoclaw answers in.
const (
	whatsAppUser  = "s.whatsapp.net" // a person, by phone number
	whatsAppLID   = "lid"            // a person, by linked id
	whatsAppGroup = "g.us"           // a group
)

// ValidateChatID checks a chat id by the grammar of the channel it belongs
// to, one function per channel kind (R14): what can be registered as a
// group is exactly what a channel could ever report.
func ValidateChatID(jid string) error {
	if err := checkJID(jid); err != nil {
		return err
	}
	// A local chat is named like the folder it reaches.
	if name, ok := strings.CutPrefix(jid, LocalChatPrefix); ok {
		if err := ValidateFolder(name); err != nil {
			return fmt.Errorf("local chat %q: %w", jid, err)
		}
		return nil
	}
	if strings.Contains(jid, "@") {
		return validateWhatsAppChat(jid)
	}
	return fmt.Errorf("chat id %q is neither a local chat (%s<folder>) nor a WhatsApp chat (NUMBER@%s, NUMBER@%s, ID@%s)",
		jid, LocalChatPrefix, whatsAppUser, whatsAppLID, whatsAppGroup)
}

// validateWhatsAppChat: "DIGITS@s.whatsapp.net", "DIGITS@lid" or
// "DIGITS[-DIGITS]@g.us", with no device or agent part — the chats the
// WhatsApp channel sends to (whatsapp.ParseChatJID).
func validateWhatsAppChat(jid string) error {
	user, server, _ := strings.Cut(jid, "@")
	digits := func(s string) bool { return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == "" }
	switch server {
	case whatsAppUser, whatsAppLID:
		if !digits(user) {
			return fmt.Errorf("WhatsApp chat %q: the part before @ must be 1-20 digits", jid)
		}
	case whatsAppGroup:
		creator, stamp, hyphen := strings.Cut(user, "-")
		if !digits(creator) || hyphen && !digits(stamp) {
			return fmt.Errorf("WhatsApp chat %q: not a group id (digits, or digits-digits)", jid)
		}
	default:
		return fmt.Errorf("WhatsApp chat %q: server %q is not %s, %s or %s", jid, server, whatsAppUser, whatsAppLID, whatsAppGroup)
	}
	return nil
}

// checkJID rejects an empty chat id or one with control characters.
func checkJID(jid string) error {
	if jid == "" {
		return errors.New("empty chat id")
	}
	if strings.ContainsFunc(jid, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("chat id %q contains a control character", jid)
	}
	return nil
}
