package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Outgoing is a message the assistant is to send to a chat.
type Outgoing struct {
	ID        string // outbox id, also the id of the message when the channel lets us choose
	ChatJID   string
	Folder    string // the group it speaks for
	Content   string
	CreatedAt time.Time
	SentAt    *time.Time
}

// MaxOutgoingBytes bounds one outgoing message.
const MaxOutgoingBytes = 1 << 20

// Validate checks an outgoing message.
func (o Outgoing) Validate() error {
	if o.ID == "" || len(o.ID) > 64 {
		return errors.New("outgoing message: id must be 1-64 characters")
	}
	if strings.TrimSpace(o.Content) == "" || len(o.Content) > MaxOutgoingBytes || !utf8.ValidString(o.Content) {
		return fmt.Errorf("outgoing message %s: content must be non-empty UTF-8 of at most %d bytes", o.ID, MaxOutgoingBytes)
	}
	return cmp.Or(checkJID(o.ChatJID), ValidateFolder(o.Folder), checkTime("created_at", o.CreatedAt))
}

// NewOutgoing makes an outgoing message with a fresh id.
func NewOutgoing(chatJID, folder, content string) Outgoing {
	var b [12]byte
	rand.Read(b[:])
	// Upper-case hex, as WhatsApp's own ids look.
	return Outgoing{ID: strings.ToUpper(hex.EncodeToString(b[:])), ChatJID: chatJID, Folder: folder,
		Content: content, CreatedAt: time.Now().UTC()}
}

// AnswerChat records that a run answered chatJID's messages up to seq, and
// queues its reply (nil: no reply), in one transaction: the cursor never
// moves without its reply being kept, and a reply is never kept for
// messages that stay unanswered.
func (s *Store) AnswerChat(ctx context.Context, chatJID string, upTo int64, reply *Outgoing) error {
	err := checkJID(chatJID)
	if reply != nil {
		err = cmp.Or(err, reply.Validate())
	}
	if err != nil {
		return fmt.Errorf("answer chat %q: %w", chatJID, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO cursors (chat_jid, last_seq, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (chat_jid) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at
			WHERE excluded.last_seq > cursors.last_seq`, chatJID, upTo, toMillis(time.Now())); err != nil {
			return err
		}
		if reply == nil {
			return nil
		}
		return insertOutgoing(ctx, tx, *reply)
	})
	if err != nil {
		return fmt.Errorf("answer chat %q up to %d: %w", chatJID, upTo, err)
	}
	return nil
}

// Enqueue queues a message that answers no particular chat message (the
// agent's send_message, a scheduled task's notice).
func (s *Store) Enqueue(ctx context.Context, o Outgoing) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error { return insertOutgoing(ctx, tx, o) })
}

func insertOutgoing(ctx context.Context, tx *sql.Tx, o Outgoing) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, chat_jid, folder, content, created_at) VALUES (?, ?, ?, ?, ?)`,
		o.ID, o.ChatJID, o.Folder, o.Content, toMillis(o.CreatedAt))
	return err
}

// Unsent returns the queued messages not yet sent, oldest first.
func (s *Store) Unsent(ctx context.Context) ([]Outgoing, error) {
	return queryList(ctx, s, "unsent messages", "outbox", scanOutgoing,
		`SELECT id, chat_jid, folder, content, created_at, sent_at FROM outbox WHERE sent_at IS NULL ORDER BY created_at, rowid`)
}

// MarkSent records that o was sent as the channel messages ids, and stores
// those as the assistant's own messages of the chat: an echo of them from
// the channel is then a duplicate and never becomes input.
func (s *Store) MarkSent(ctx context.Context, o Outgoing, ids []string, sender string) error {
	now := time.Now().UTC()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET sent_at = ? WHERE id = ? AND sent_at IS NULL`, toMillis(now), o.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("outgoing message %s: %w (or already sent)", o.ID, ErrNotFound)
		}
		for _, id := range ids {
			if err := cmp.Or(checkJID(o.ChatJID), nonEmpty("message id", id)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO messages (chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot)
				VALUES (?, ?, ?, ?, ?, ?, 1, 1) ON CONFLICT (chat_jid, id) DO NOTHING`,
				o.ChatJID, id, sender, sender, o.Content, toMillis(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark %s sent: %w", o.ID, err)
	}
	return nil
}

func scanOutgoing(sc scanner) (o Outgoing, key string, err error) {
	err = sc.Scan(&o.ID, &o.ChatJID, &o.Folder, &o.Content, asTime(&o.CreatedAt), asNullTime(&o.SentAt))
	return o, o.ID, cmp.Or(err, o.Validate())
}
