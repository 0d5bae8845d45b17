package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Outgoing is a message the assistant is to send to a chat.
type Outgoing struct {
	ID        string // outbox id, also the id of the message when the channel lets us choose
	ChatJID   string
	Folder    string // the group it speaks for
	Content   string
	CreatedAt time.Time
	SentAt    *time.Time
	// File is the file this message sends, nil for text alone; Content is
	// then its caption, or a line that names the file.
	File *OutFile
	// ReplyTo is the id of the message of the chat the reply quotes; "" for
	// none.
	ReplyTo string
	// FailedAt is when the channel gave up sending it, with Error why; nil
	// while it is sent or still to be sent.
	FailedAt *time.Time
	Error    string
}

// OutFile is a file the assistant sends: a copy the host took of it
// (Spool, a name in the host's own spool directory), and what it is.
type OutFile struct {
	Spool   string `json:"spool"`   // the copy's name in the spool directory
	Name    string `json:"name"`    // the file's base name, shown with a document
	MIME    string `json:"mime"`    // detected from the content
	Kind    string `json:"kind"`    // image, audio, video or document
	Caption string `json:"caption"` // "" for none
}

// Validate checks every field of f.
func (f OutFile) Validate() error {
	if err := ValidateSpoolName(f.Spool); err != nil {
		return err
	}
	if !slices.Contains([]string{"image", "audio", "video", "document"}, f.Kind) {
		return fmt.Errorf("file kind %q: want image, audio, video or document", f.Kind)
	}
	for _, v := range []struct {
		what, v string
		max     int
	}{{"name", f.Name, maxAttachmentName}, {"MIME type", f.MIME, maxAttachmentMIME}, {"caption", f.Caption, MaxOutgoingBytes}} {
		if len(v.v) > v.max || !utf8.ValidString(v.v) || strings.ContainsRune(v.v, 0) {
			return fmt.Errorf("file %s: at most %d bytes of UTF-8 text", v.what, v.max)
		}
	}
	if f.Name == "" || strings.ContainsAny(f.Name, "/\\") {
		return fmt.Errorf("file name %q: want a base name", f.Name)
	}
	return nil
}

// ValidateSpoolName accepts a spool file's name: what NewOutgoing's ids
// look like, with a suffix: 1-64 ASCII letters, digits, '.', '_' or '-'.
func ValidateSpoolName(name string) error {
	if name == "" || len(name) > 64 || name[0] == '.' || strings.ContainsFunc(name, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._-", r))
	}) {
		return fmt.Errorf("spool file name %q: want 1-64 letters, digits, '.', '_' or '-'", name)
	}
	return nil
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
	if o.File != nil {
		if err := o.File.Validate(); err != nil {
			return fmt.Errorf("outgoing message %s: %w", o.ID, err)
		}
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
	var file []byte
	if o.File != nil {
		file, _ = json.Marshal(o.File) // strings alone: cannot fail
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, chat_jid, folder, content, created_at, file, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.ChatJID, o.Folder, o.Content, toMillis(o.CreatedAt), string(file), o.ReplyTo)
	return err
}

const outgoingColumns = `id, chat_jid, folder, content, created_at, sent_at, file, reply_to, failed_at, error`

// Unsent returns the queued messages neither sent nor given up, oldest
// first.
func (s *Store) Unsent(ctx context.Context) ([]Outgoing, error) {
	return queryList(ctx, s, "unsent messages", "outbox", scanOutgoing,
		`SELECT `+outgoingColumns+` FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY created_at, rowid`)
}

// MarkFailed records that the channel gave up sending o, and why: it is
// not sent again, and Undelivered reports it to the group's next prompt.
func (s *Store) MarkFailed(ctx context.Context, id, reason string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET failed_at = ?, error = ? WHERE id = ? AND sent_at IS NULL AND failed_at IS NULL`,
		toMillis(time.Now()), sanitize.FirstLine(reason, 300), id)
	if err != nil {
		return fmt.Errorf("mark %s failed: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("mark %s failed: %w (or already sent or failed)", id, ErrNotFound)
	}
	return nil
}

// Undelivered returns the messages of the group in folder the channel gave
// up sending that its agent has not been told of (MarkTold), oldest first.
func (s *Store) Undelivered(ctx context.Context, folder string) ([]Outgoing, error) {
	return queryList(ctx, s, fmt.Sprintf("undelivered messages of group %q", folder), "outbox", scanOutgoing,
		`SELECT `+outgoingColumns+` FROM outbox WHERE folder = ? AND failed_at IS NOT NULL AND told = 0 ORDER BY created_at, rowid LIMIT 20`, folder)
}

// MarkTold records that the agent was told the messages ids were not
// delivered.
func (s *Store) MarkTold(ctx context.Context, ids ...string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET told = 1 WHERE id = ?`, id); err != nil {
				return fmt.Errorf("mark %s told: %w", id, err)
			}
		}
		return nil
	})
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
	var file string
	err = sc.Scan(&o.ID, &o.ChatJID, &o.Folder, &o.Content, asTime(&o.CreatedAt), asNullTime(&o.SentAt), &file, &o.ReplyTo,
		asNullTime(&o.FailedAt), &o.Error)
	if err == nil && file != "" {
		o.File = new(OutFile)
		err = ipc.DecodeStrict([]byte(file), o.File)
	}
	return o, o.ID, cmp.Or(err, o.Validate())
}
