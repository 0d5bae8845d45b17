package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
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

// TelegramChatPrefix begins the ids of Telegram chats: "tg:<chat id>", the
// Bot API's number (negative for groups).
const TelegramChatPrefix = "tg:"

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
	if id, ok := strings.CutPrefix(jid, TelegramChatPrefix); ok {
		if n, err := strconv.ParseInt(id, 10, 64); err != nil || n == 0 || strconv.FormatInt(n, 10) != id {
			return fmt.Errorf("chat %q: a Telegram chat id is %sNUMBER, the Bot API's chat id (negative for a group)", jid, TelegramChatPrefix)
		}
		return nil
	}
	if strings.Contains(jid, "@") {
		return validateWhatsAppChat(jid)
	}
	return fmt.Errorf("chat id %q is none of a local chat (%s<folder>), a WhatsApp chat (NUMBER@%s, NUMBER@%s, ID@%s) or a Telegram chat (%sNUMBER)",
		jid, LocalChatPrefix, whatsAppUser, whatsAppLID, whatsAppGroup, TelegramChatPrefix)
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

// Message is a stored chat message. Only messages of registered chats are
// stored (the router decides that).
type Message struct {
	Seq        int64     // set by AddMessage; orders a chat's messages and is the cursor unit
	ChatJID    string    // the chat it was sent in
	ID         string    // the channel's message id, unique within the chat
	Sender     string    // the sender's id, as the channel knows it (no participant chooses it)
	SenderName string    // the sender's display name (chosen by the sender; cleaned by AddMessage)
	Content    string    // the text, with captions folded in
	Quote      string    // the text a reply quotes, as the sender's app claims it; "" for none
	Timestamp  time.Time // when it was sent
	FromMe     bool      // written by the owner: from the owner's own account, or at the local terminal
	IsBot      bool      // sent by the assistant; never fed back to it as input
	// ReplyTo is the id of the message of the chat this one replies to;
	// QuoteSender who wrote that one, as the sender's app claims it.
	ReplyTo     string
	QuoteSender string
	// Addressed marks a message that speaks to the assistant without its
	// trigger word: it @-mentions the account, or replies to the
	// assistant's own message.
	Addressed   bool
	Attachments []Attachment // the media it carried, as kept
}

// Validate checks the fields AddMessage stores (not Seq, which it assigns).
func (m Message) Validate() error {
	return cmp.Or(checkJID(m.ChatJID), nonEmpty("message id", m.ID), checkTime("timestamp", m.Timestamp))
}

const messageColumns = `seq, chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot, quote, reply_to, quote_sender, addressed, attachments`

func scanMessage(sc scanner) (m Message, key string, err error) {
	var attachments string
	err = sc.Scan(&m.Seq, &m.ChatJID, &m.ID, &m.Sender, &m.SenderName, &m.Content, asTime(&m.Timestamp), &m.FromMe, &m.IsBot, &m.Quote,
		&m.ReplyTo, &m.QuoteSender, &m.Addressed, &attachments)
	if err == nil {
		m.Attachments, err = decodeAttachments(attachments)
	}
	return m, strconv.FormatInt(m.Seq, 10), cmp.Or(err, m.Validate())
}

// MessageByID returns the message id of chat chatJID; found is false when
// the chat has none by that id.
func (s *Store) MessageByID(ctx context.Context, chatJID, id string) (m Message, found bool, err error) {
	return queryOne(ctx, s, fmt.Sprintf("message %q of chat %q", id, chatJID), "messages", scanMessage,
		`SELECT `+messageColumns+` FROM messages WHERE chat_jid = ? AND id = ?`, chatJID, id)
}

// AddMessage stores m and returns its seq. A second delivery of the same
// (chat, id) is ignored: inserted is false and seq is the first one's. The
// sender's display name is stored cleaned (sanitize.Name).
func (s *Store) AddMessage(ctx context.Context, m Message) (seq int64, inserted bool, err error) {
	if err := m.Validate(); err != nil {
		return 0, false, fmt.Errorf("add message %q in chat %q: %w", m.ID, m.ChatJID, err)
	}
	m.SenderName = sanitize.Name(m.SenderName) // R19: a stranger's name is one short line
	attachments, err := encodeAttachments(m.Attachments)
	if err != nil {
		return 0, false, fmt.Errorf("add message %q in chat %q: %w", m.ID, m.ChatJID, err)
	}
	err = s.db.QueryRowContext(ctx, `
		INSERT INTO messages (chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot, quote,
			reply_to, quote_sender, addressed, attachments)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (chat_jid, id) DO NOTHING
		RETURNING seq`,
		m.ChatJID, m.ID, m.Sender, m.SenderName, m.Content, toMillis(m.Timestamp), m.FromMe, m.IsBot, m.Quote,
		m.ReplyTo, m.QuoteSender, m.Addressed, attachments,
	).Scan(&seq)
	if err == nil {
		return seq, true, nil
	}
	if !isNoRows(err) {
		return 0, false, fmt.Errorf("add message %q in chat %q: %w", m.ID, m.ChatJID, err)
	}
	// A duplicate: nothing was returned.
	err = s.db.QueryRowContext(ctx, `SELECT seq FROM messages WHERE chat_jid = ? AND id = ?`, m.ChatJID, m.ID).Scan(&seq)
	if err != nil {
		return 0, false, fmt.Errorf("add message %q in chat %q: find duplicate: %w", m.ID, m.ChatJID, err)
	}
	return seq, false, nil
}

// Backlog is what a prompt needs of a chat's unanswered messages (R11): the
// newest ones, loaded, and how many came before them, counted.
type Backlog struct {
	Messages []Message // the newest messages the assistant did not send, oldest first
	Older    int       // messages before those (the assistant's not counted), left out
}

// Backlog returns the newest limit (at least 1) messages of the chat with
// seq > afterSeq that the assistant did not send, oldest first, and counts
// the earlier ones. The query itself is limited (R11): a backlog of any size
// loads at most limit rows. Invalid rows are skipped and logged.
func (s *Store) Backlog(ctx context.Context, chatJID string, afterSeq int64, limit int) (Backlog, error) {
	limit = max(limit, 1)
	what := fmt.Sprintf("unanswered messages of chat %q after %d", chatJID, afterSeq)
	list, err := queryList(ctx, s, what, "messages", scanMessage, `
		SELECT `+messageColumns+` FROM (
			SELECT `+messageColumns+` FROM messages
			WHERE chat_jid = ? AND seq > ? AND is_bot = 0 ORDER BY seq DESC LIMIT ?
		) ORDER BY seq`,
		chatJID, afterSeq, limit)
	if err != nil {
		return Backlog{}, err
	}
	b := Backlog{Messages: list}
	if len(list) == 0 {
		return b, nil
	}
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE chat_jid = ? AND seq > ? AND seq < ? AND is_bot = 0`,
		chatJID, afterSeq, list[0].Seq).Scan(&b.Older)
	if err != nil {
		return Backlog{}, fmt.Errorf("count %s: %w", what, err)
	}
	return b, nil
}

// MessageStart is what AnyStart shows match of a message.
type MessageStart struct {
	Sender    string
	FromMe    bool
	Addressed bool
	Start     string // the first characters of its text, after leading white space
}

// AnyStart reports whether match accepts a message of the chat with
// afterSeq < seq < beforeSeq that the assistant did not send. match sees
// the message's sender and its first n characters after leading white
// space (space, tab, newline, form feed, carriage return); messages are
// tried newest first, one row at a time, and the first match ends the
// search — so a large backlog is never held in memory (R11).
func (s *Store) AnyStart(ctx context.Context, chatJID string, afterSeq, beforeSeq int64, n int, match func(MessageStart) bool) (bool, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT sender, from_me, addressed, substr(ltrim(content, ' '||char(9, 10, 12, 13)), 1, ?) FROM messages
		WHERE chat_jid = ? AND seq > ? AND seq < ? AND is_bot = 0 ORDER BY seq DESC`,
		max(n, 1), chatJID, afterSeq, beforeSeq)
	if err != nil {
		return false, fmt.Errorf("search messages of chat %q: %w", chatJID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m MessageStart
		if err := rows.Scan(&m.Sender, &m.FromMe, &m.Addressed, &m.Start); err != nil {
			return false, fmt.Errorf("search messages of chat %q: %w", chatJID, err)
		}
		if match(m) {
			return true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("search messages of chat %q: %w", chatJID, err)
	}
	return false, nil
}

// Cursor returns the seq up to which the chat has been answered, 0 if never.
func (s *Store) Cursor(ctx context.Context, jid string) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(last_seq), 0) FROM cursors WHERE chat_jid = ?`, jid).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("cursor of chat %q: %w", jid, err)
	}
	return seq, nil
}

// ChatsWithPending returns the registered chats, sorted, whose newest
// message not sent by the assistant lies after their cursor: the chats to
// resume on start-up.
func (s *Store) ChatsWithPending(ctx context.Context) ([]string, error) {
	return queryList(ctx, s, "chats with pending messages", "group_chats", scanChatID, `
		SELECT gc.jid FROM group_chats gc
		JOIN (SELECT chat_jid, max(seq) AS latest_seq FROM messages WHERE is_bot = 0 GROUP BY chat_jid) m
			ON m.chat_jid = gc.jid
		LEFT JOIN cursors c ON c.chat_jid = gc.jid
		WHERE m.latest_seq > coalesce(c.last_seq, 0)
		ORDER BY gc.jid`)
}
