package telegram

import (
	"cmp"
	"context"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// quoteMaxRunes caps the quoted text of a reply: enough to tell which
// message was answered.
const quoteMaxRunes = 120

// identity is who the bot is and who owns it, for reading updates.
type identity struct {
	bot      int64  // the bot's user id
	username string // the bot's username, lower case, without the @
	owner    int64  // the owner's user id (their private chat's id)
}

// fetcher makes the Fetch of a file: file id, and its claimed size.
type fetcher func(fileID string, claimed int64) func(ctx context.Context, w io.Writer, max int64) error

// convert turns an update into a channel.Message; ok is false for what
// NanoClaw ignores: channel posts, edits (they are not fetched, see
// allowedUpdates), service messages (members joining, titles changed,
// pins), and messages with neither text nor media (polls, locations,
// contacts, dice…). info names the chat the update shows the bot is in,
// JID "" for none: a group the bot was added to is announced before
// anyone writes there.
func convert(u *models.Update, id identity, fetch fetcher) (m channel.Message, info channel.ChatInfo, ok bool) {
	if cm := u.MyChatMember; cm != nil {
		if cm.Chat.Type == models.ChatTypeGroup || cm.Chat.Type == models.ChatTypeSupergroup {
			info = channel.ChatInfo{JID: chatID(cm.Chat.ID), Name: chatName(cm.Chat), IsGroup: true, LastActivity: unix(cm.Date)}
		}
		return channel.Message{}, info, false
	}
	msg := u.Message
	if msg == nil {
		return channel.Message{}, info, false
	}
	switch msg.Chat.Type {
	case models.ChatTypePrivate, models.ChatTypeGroup, models.ChatTypeSupergroup:
	default:
		return channel.Message{}, info, false
	}
	group := msg.Chat.Type != models.ChatTypePrivate
	ts := unix(msg.Date)
	info = channel.ChatInfo{JID: chatID(msg.Chat.ID), Name: chatName(msg.Chat), IsGroup: group, LastActivity: ts}
	sender, name := senderOf(msg)
	if sender == "" {
		return channel.Message{}, info, false
	}
	text := strings.TrimSpace(validText(cmp.Or(msg.Text, msg.Caption)))
	attachments := mediaOf(msg, fetch)
	if text == "" && len(attachments) == 0 {
		return channel.Message{}, info, false
	}
	m = channel.Message{
		ChatJID:    info.JID,
		ID:         strconv.Itoa(msg.ID),
		Sender:     sender,
		SenderName: name,
		Text:       text,
		Timestamp:  ts,
		// Telegram does not show a bot its own messages, so nothing is
		// "from the account" the way WhatsApp's are: the owner is the
		// user who paired the bot, and their messages — in their private
		// chat or in a group — carry the owner marker the router trusts
		// (R18). The user id is Telegram's, not the sender's claim.
		FromMe:       msg.From != nil && msg.SenderChat == nil && msg.From.ID == id.owner,
		IsGroup:      group,
		MentionsSelf: mentionsSelf(msg, id),
		Attachments:  attachments,
	}
	if r := msg.ReplyToMessage; r != nil && !topicRoot(msg) {
		m.ReplyTo = strconv.Itoa(r.ID)
		m.QuoteSender, _ = senderOf(r)
		m.Quote = quote(msg, r)
	}
	return m, info, true
}

// topicRoot reports a message of a forum topic whose "reply" is only the
// topic's first message, as Telegram marks every message of a topic.
func topicRoot(msg *models.Message) bool {
	return msg.IsTopicMessage && msg.ReplyToMessage != nil && msg.ReplyToMessage.ID == msg.MessageThreadID
}

// senderOf is the sender id and display name of msg: the user who sent it,
// or the chat it was sent on behalf of (an anonymous group admin, a linked
// channel); "" when it names neither.
func senderOf(msg *models.Message) (id, name string) {
	switch {
	case msg.SenderChat != nil && msg.SenderChat.ID != 0:
		return chatID(msg.SenderChat.ID), cmp.Or(chatName(*msg.SenderChat), chatID(msg.SenderChat.ID))
	case msg.From != nil && msg.From.ID > 0:
		name := sanitize.Name(strings.TrimSpace(msg.From.FirstName + " " + msg.From.LastName))
		return chatID(msg.From.ID), cmp.Or(name, sanitize.Name(msg.From.Username), strconv.FormatInt(msg.From.ID, 10))
	}
	return "", ""
}

// chatName is a group's title or a person's name, made safe to show.
func chatName(c models.Chat) string {
	if c.Title != "" {
		return sanitize.Name(c.Title)
	}
	return cmp.Or(sanitize.Name(strings.TrimSpace(c.FirstName+" "+c.LastName)), sanitize.Name(c.Username))
}

// quote is what msg quotes of r, the message it replies to, as one line:
// the part the sender picked (Telegram's quote), else r's text or caption,
// with a label for its media; capped at quoteMaxRunes.
func quote(msg, r *models.Message) string {
	text := validText(cmp.Or(r.Text, r.Caption))
	if msg.Quote != nil && msg.Quote.Text != "" {
		text = validText(msg.Quote.Text)
	}
	text = strings.Join(strings.Fields(text), " ")
	if label := mediaLabel(r); label != "" {
		text = strings.TrimSpace(label + " " + text)
	}
	return clip(text, quoteMaxRunes)
}

// mediaLabel names the media of a quoted message as a person would say it.
func mediaLabel(m *models.Message) string {
	switch {
	case len(m.Photo) > 0:
		return "[photo]"
	case m.Sticker != nil:
		return "[sticker]"
	case m.Voice != nil:
		return "[voice note]"
	case m.Audio != nil:
		return "[audio]"
	case m.Video != nil, m.VideoNote != nil:
		return "[video]"
	case m.Document != nil:
		if name := sanitize.Name(m.Document.FileName); name != "" {
			return "[document " + name + "]"
		}
		return "[document]"
	}
	return ""
}

// mentionsSelf reports whether msg @-mentions the bot, as Telegram marks
// mentions: a "mention" entity naming @username (any case), a
// "text_mention" of the bot's user id, or a command addressed to it
// ("/help@username").
func mentionsSelf(msg *models.Message, id identity) bool {
	text, entities := msg.Text, msg.Entities
	if text == "" {
		text, entities = msg.Caption, msg.CaptionEntities
	}
	var units []uint16 // entities count UTF-16 code units
	for _, e := range entities {
		switch e.Type {
		case models.MessageEntityTypeTextMention:
			if e.User != nil && e.User.ID == id.bot {
				return true
			}
		case models.MessageEntityTypeMention, models.MessageEntityTypeBotCommand:
			if id.username == "" {
				continue
			}
			if units == nil {
				units = utf16.Encode([]rune(text))
			}
			if e.Offset < 0 || e.Length <= 0 || e.Offset > len(units) || e.Length > len(units)-e.Offset {
				continue
			}
			s := strings.ToLower(string(utf16.Decode(units[e.Offset : e.Offset+e.Length])))
			if e.Type == models.MessageEntityTypeBotCommand {
				_, s, _ = strings.Cut(s, "@")
				s = "@" + s
			}
			if s == "@"+id.username {
				return true
			}
		}
	}
	return false
}

// botFileLimit is the largest file the Bot API lets a bot download.
const botFileLimit = 20 << 20

// mediaOf turns the media of msg into attachments: the largest size of a
// photo; documents, voice notes, audio, video (round ones too) and
// stickers. Sizes, types and names are the sender's app's claims.
func mediaOf(msg *models.Message, fetch fetcher) []channel.Attachment {
	var out []channel.Attachment
	add := func(kind channel.MediaKind, fileID, mimeType string, size int64, name string) {
		if fileID == "" {
			return
		}
		size = max(size, 0)
		out = append(out, channel.Attachment{Kind: kind, MIME: mediaType(mimeType), Size: size,
			FileName: sanitize.Name(name), Fetch: fetch(fileID, size)})
	}
	if len(msg.Photo) > 0 {
		best := msg.Photo[0]
		for _, p := range msg.Photo[1:] {
			if p.Width*p.Height > best.Width*best.Height {
				best = p
			}
		}
		add(channel.KindImage, best.FileID, "image/jpeg", int64(best.FileSize), "") // Telegram re-encodes photos as JPEG
	}
	if s := msg.Sticker; s != nil {
		t := "image/webp"
		switch {
		case s.IsVideo:
			t = "video/webm"
		case s.IsAnimated:
			t = "application/x-tgsticker"
		}
		add(channel.KindSticker, s.FileID, t, int64(s.FileSize), "")
	}
	if v := msg.Voice; v != nil {
		add(channel.KindVoice, v.FileID, cmp.Or(v.MimeType, "audio/ogg"), v.FileSize, "")
	}
	if a := msg.Audio; a != nil {
		add(channel.KindAudio, a.FileID, a.MimeType, a.FileSize, a.FileName)
	}
	if v := msg.Video; v != nil {
		add(channel.KindVideo, v.FileID, v.MimeType, v.FileSize, v.FileName)
	}
	if v := msg.VideoNote; v != nil {
		add(channel.KindVideo, v.FileID, "video/mp4", int64(v.FileSize), "")
	}
	if d := msg.Document; d != nil {
		add(channel.KindDocument, d.FileID, d.MimeType, d.FileSize, d.FileName)
	}
	return out
}

// unix is a Bot API date as a time; now when it is missing.
func unix(sec int) time.Time {
	if sec <= 0 {
		return time.Now().UTC()
	}
	return time.Unix(int64(sec), 0).UTC()
}

// mediaType is the media type of a sender's MIME claim, lower case and
// without parameters; "" when it is none.
func mediaType(s string) string {
	if len(s) > 255 {
		return ""
	}
	t, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ";")
	t = strings.TrimSpace(t)
	typ, sub, ok := strings.Cut(t, "/")
	if !ok || typ == "" || sub == "" || strings.ContainsFunc(t, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("/+-.!#$&^_", r))
	}) {
		return ""
	}
	return t
}

// clip cuts s to at most n runes, "…" marking a cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n-1]), unicode.IsSpace) + "…"
}

// validText replaces invalid UTF-8, so a malformed message cannot carry
// broken bytes into the store and the prompt.
func validText(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
