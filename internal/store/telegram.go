package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// telegramTable keeps the Telegram bot's session, like whatsmeow keeps
// WhatsApp's: in the database, encrypted with it when it is.
const telegramTable = `
CREATE TABLE telegram (
	id            INTEGER PRIMARY KEY CHECK (id = 1),
	token         TEXT NOT NULL CHECK (length(token) BETWEEN 1 AND 200),
	bot_id        INTEGER NOT NULL CHECK (bot_id > 0),
	username      TEXT NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
	owner_chat    INTEGER NOT NULL CHECK (owner_chat > 0),
	update_offset INTEGER NOT NULL DEFAULT 0 CHECK (update_offset >= 0)
) STRICT;
`

// TelegramSession is the paired Telegram bot: its token (a secret: never
// printed), who it is, the owner's private chat with it (bound to main),
// and the offset of the next update to fetch.
type TelegramSession struct {
	Token     string
	BotID     int64
	Username  string // without the @
	OwnerChat int64  // the owner's user id: their private chat's id
	Offset    int64
}

// Validate checks every field of t.
func (t TelegramSession) Validate() error {
	switch {
	case t.Token == "" || len(t.Token) > 200 || strings.ContainsFunc(t.Token, func(r rune) bool { return r <= ' ' || r > '~' }):
		return errors.New("telegram session: the token must be 1-200 printable ASCII characters")
	case t.BotID <= 0 || t.OwnerChat <= 0 || t.Offset < 0:
		return errors.New("telegram session: bot id and owner chat must be positive, the offset not negative")
	case t.Username == "" || len(t.Username) > 64 || strings.ContainsFunc(t.Username, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_')
	}):
		return fmt.Errorf("telegram session: username %q is not a bot's username", t.Username)
	}
	return nil
}

// TelegramSession returns the paired bot; found is false when none is.
func (s *Store) TelegramSession(ctx context.Context) (t TelegramSession, found bool, err error) {
	return queryOne(ctx, s, "telegram session", "telegram", func(sc scanner) (TelegramSession, string, error) {
		var t TelegramSession
		err := sc.Scan(&t.Token, &t.BotID, &t.Username, &t.OwnerChat, &t.Offset)
		if err == nil {
			err = t.Validate()
		}
		return t, "1", err
	}, `SELECT token, bot_id, username, owner_chat, update_offset FROM telegram WHERE id = 1`)
}

// PutTelegramSession keeps t as the paired bot, replacing any other. When
// the owner changes, the previous owner's private chat stops reaching any
// group, in the same transaction: a re-pairing must take main away from
// whoever had it. formerOwner is that chat ("" when the owner stays).
func (s *Store) PutTelegramSession(ctx context.Context, t TelegramSession) (formerOwner string, err error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var old int64
		switch err := tx.QueryRowContext(ctx, `SELECT owner_chat FROM telegram WHERE id = 1`).Scan(&old); {
		case err == nil && old != t.OwnerChat:
			formerOwner = TelegramChatPrefix + strconv.FormatInt(old, 10)
			if _, err := tx.ExecContext(ctx, `DELETE FROM group_chats WHERE jid = ?`, formerOwner); err != nil {
				return err
			}
		case err != nil && !isNoRows(err):
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO telegram (id, token, bot_id, username, owner_chat, update_offset) VALUES (1, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET token = excluded.token, bot_id = excluded.bot_id, username = excluded.username,
				owner_chat = excluded.owner_chat, update_offset = excluded.update_offset`,
			t.Token, t.BotID, t.Username, t.OwnerChat, t.Offset)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("keep the telegram session: %w", err)
	}
	return formerOwner, nil
}

// SetTelegramOffset records that every update before offset is stored: the
// next fetch asks from there, which tells Telegram to forget the earlier
// ones. It never moves the offset back.
func (s *Store) SetTelegramOffset(ctx context.Context, offset int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE telegram SET update_offset = ? WHERE id = 1 AND update_offset < ?`, offset, offset)
	if err != nil {
		return fmt.Errorf("keep the telegram update offset: %w", err)
	}
	_, err = res.RowsAffected()
	return err
}

// ResetTelegramOffset sets the offset to offset, lower or not: for when
// Telegram's update ids start again lower.
func (s *Store) ResetTelegramOffset(ctx context.Context, offset int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE telegram SET update_offset = ? WHERE id = 1`, max(offset, 0)); err != nil {
		return fmt.Errorf("keep the telegram update offset: %w", err)
	}
	return nil
}

// DeleteTelegramSession forgets the paired bot.
func (s *Store) DeleteTelegramSession(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM telegram`)
		return err
	})
}
