package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

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
}

// Validate checks the fields AddMessage stores (not Seq, which it assigns).
func (m Message) Validate() error {
	if err := checkJID(m.ChatJID); err != nil {
		return err
	}
	if m.ID == "" {
		return errors.New("empty message id")
	}
	return checkTime("timestamp", m.Timestamp)
}

const messageColumns = `seq, chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot, quote`

var messageColumnNames = columns(messageColumns)

func decodeMessage(raw rawRow) (Message, string, error) {
	d := decoder{row: raw, cols: messageColumnNames}
	m := Message{
		Seq:        d.int(0),
		ChatJID:    d.text(1),
		ID:         d.text(2),
		Sender:     d.text(3),
		SenderName: d.text(4),
		Content:    d.text(5),
		Timestamp:  d.time(6),
		FromMe:     d.bool(7),
		IsBot:      d.bool(8),
		Quote:      d.text(9),
	}
	if d.err == nil && m.Seq <= 0 {
		d.err = fmt.Errorf("column seq: %d is not positive", m.Seq)
	}
	if d.err == nil {
		d.err = m.Validate()
	}
	if d.err != nil {
		return Message{}, d.key(0), d.err
	}
	return m, fmt.Sprint(m.Seq), nil
}

// AddMessage stores m and returns its seq. A second delivery of the same
// (chat, id) is ignored: inserted is false and seq is the first one's. The
// sender's display name is stored cleaned (sanitize.Name).
func (s *Store) AddMessage(ctx context.Context, m Message) (seq int64, inserted bool, err error) {
	if err := m.Validate(); err != nil {
		return 0, false, fmt.Errorf("add message %q in chat %q: %w", m.ID, m.ChatJID, err)
	}
	m.SenderName = sanitize.Name(m.SenderName) // R19: a stranger's name is one short line
	err = s.db.QueryRowContext(ctx, `
		INSERT INTO messages (chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot, quote)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (chat_jid, id) DO NOTHING
		RETURNING seq`,
		m.ChatJID, m.ID, m.Sender, m.SenderName, m.Content, toMillis(m.Timestamp), boolInt(m.FromMe), boolInt(m.IsBot), m.Quote,
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

// MessagesAfter returns the chat's messages with seq > afterSeq, oldest
// first, at most limit of them (limit <= 0: all). Invalid rows are skipped
// and logged.
func (s *Store) MessagesAfter(ctx context.Context, chatJID string, afterSeq int64, limit int) ([]Message, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	list, err := queryList(ctx, s, "messages", len(messageColumnNames), decodeMessage,
		`SELECT `+messageColumns+` FROM messages WHERE chat_jid = ? AND seq > ? ORDER BY seq LIMIT ?`,
		chatJID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("messages of chat %q after %d: %w", chatJID, afterSeq, err)
	}
	return list, nil
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
	list, err := queryList(ctx, s, "messages", len(messageColumnNames), decodeMessage, `
		SELECT `+messageColumns+` FROM (
			SELECT `+messageColumns+` FROM messages
			WHERE chat_jid = ? AND seq > ? AND is_bot = 0 ORDER BY seq DESC LIMIT ?
		) ORDER BY seq`,
		chatJID, afterSeq, limit)
	if err != nil {
		return Backlog{}, fmt.Errorf("unanswered messages of chat %q after %d: %w", chatJID, afterSeq, err)
	}
	b := Backlog{Messages: list}
	if len(list) == 0 {
		return b, nil
	}
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE chat_jid = ? AND seq > ? AND seq < ? AND is_bot = 0`,
		chatJID, afterSeq, list[0].Seq).Scan(&b.Older)
	if err != nil {
		return Backlog{}, fmt.Errorf("count unanswered messages of chat %q after %d: %w", chatJID, afterSeq, err)
	}
	return b, nil
}

// AnyStart reports whether match accepts the start of a message of the chat
// with afterSeq < seq < beforeSeq that the assistant did not send. match
// sees the message's first n characters after leading white space (space,
// tab, newline, form feed, carriage return); messages are tried newest
// first, one row at a time, and the first match ends the search — so a
// large backlog is never held in memory (R11).
func (s *Store) AnyStart(ctx context.Context, chatJID string, afterSeq, beforeSeq int64, n int, match func(start string) bool) (bool, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT substr(ltrim(content, ' '||char(9, 10, 12, 13)), 1, ?) FROM messages
		WHERE chat_jid = ? AND seq > ? AND seq < ? AND is_bot = 0 ORDER BY seq DESC`,
		max(n, 1), chatJID, afterSeq, beforeSeq)
	if err != nil {
		return false, fmt.Errorf("search messages of chat %q: %w", chatJID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var start sql.NullString
		if err := rows.Scan(&start); err != nil {
			return false, fmt.Errorf("search messages of chat %q: %w", chatJID, err)
		}
		if match(start.String) {
			return true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("search messages of chat %q: %w", chatJID, err)
	}
	return false, nil
}

// CountMessagesAfter returns how many messages (the assistant's included) the
// chat has with seq > afterSeq.
func (s *Store) CountMessagesAfter(ctx context.Context, chatJID string, afterSeq int64) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE chat_jid = ? AND seq > ?`, chatJID, afterSeq).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count messages of chat %q after %d: %w", chatJID, afterSeq, err)
	}
	return n, nil
}

// LatestSeq returns the seq of the chat's newest message, or 0 if it has none.
func (s *Store) LatestSeq(ctx context.Context, chatJID string) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM messages WHERE chat_jid = ?`, chatJID).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("latest message of chat %q: %w", chatJID, err)
	}
	return seq, nil
}

// Cursor returns the seq up to which the chat has been answered, 0 if never.
func (s *Store) Cursor(ctx context.Context, jid string) (int64, error) {
	decode := func(raw rawRow) (int64, string, error) {
		d := decoder{row: raw, cols: []string{"chat_jid", "last_seq", "updated_at"}}
		seq := d.count(1)
		d.time(2)
		return seq, d.key(0), d.err
	}
	seq, _, err := queryOne(ctx, s, "cursors", 3, decode,
		`SELECT chat_jid, last_seq, updated_at FROM cursors WHERE chat_jid = ?`, jid)
	if err != nil {
		return 0, fmt.Errorf("cursor of chat %q: %w", jid, err)
	}
	return seq, nil
}

// AdvanceCursor records that the chat has been answered up to seq. It only
// ever moves the cursor forward: an older seq is ignored, so a late or
// repeated call can never make the assistant answer messages twice.
func (s *Store) AdvanceCursor(ctx context.Context, jid string, seq int64) error {
	if err := checkJID(jid); err != nil {
		return fmt.Errorf("advance cursor of chat %q to %d: %w", jid, seq, err)
	}
	if seq < 0 {
		return fmt.Errorf("advance cursor of chat %q to %d: negative seq", jid, seq)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO cursors (chat_jid, last_seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (chat_jid) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at
		WHERE excluded.last_seq > cursors.last_seq`,
		jid, seq, toMillis(time.Now()))
	if err != nil {
		return fmt.Errorf("advance cursor of chat %q to %d: %w", jid, seq, err)
	}
	return nil
}

// ChatsWithPending returns the registered chats, sorted, whose newest
// message not sent by the assistant lies after their cursor: the chats to
// resume on start-up.
func (s *Store) ChatsWithPending(ctx context.Context) ([]string, error) {
	type pending struct {
		jid     string
		pending bool
	}
	decode := func(raw rawRow) (pending, string, error) {
		d := decoder{row: raw, cols: []string{"jid", "latest_seq", "last_seq"}}
		p := pending{jid: d.text(0)}
		latest := d.int(1)
		var cursor int64
		if raw[2] != nil {
			cursor = d.count(2)
		}
		p.pending = latest > cursor
		return p, d.key(0), d.err
	}
	// Invalid cursors are reported under the table they live in.
	rows, err := queryList(ctx, s, "cursors", 3, decode, `
		SELECT gc.jid, m.latest_seq, c.last_seq
		FROM group_chats gc
		JOIN (SELECT chat_jid, max(seq) AS latest_seq FROM messages WHERE is_bot = 0 GROUP BY chat_jid) m
			ON m.chat_jid = gc.jid
		LEFT JOIN cursors c ON c.chat_jid = gc.jid
		ORDER BY gc.jid`)
	if err != nil {
		return nil, fmt.Errorf("chats with pending messages: %w", err)
	}
	var jids []string
	for _, p := range rows {
		if p.pending {
			jids = append(jids, p.jid)
		}
	}
	return jids, nil
}
