package telegram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Send sends text to chat jid, split into parts of at most
// MaxMessageUnits (see SplitText), its Markdown shown as Telegram's
// formatting (see MarkdownToHTML), and returns the parts' message ids.
// A part Telegram cannot parse goes again as plain text. Each part waits
// for its turn in the chat's send limit (R9); ctx bounds the wait.
func (c *Channel) Send(ctx context.Context, jid, text string) ([]string, error) {
	return c.sendText(ctx, jid, text, 0)
}

// SendQuoting is Send, with the first part a reply to message q: Telegram
// shows the quoted message above it, or sends it as is when q was
// deleted.
func (c *Channel) SendQuoting(ctx context.Context, jid, text string, q channel.MessageRef) ([]string, error) {
	id, err := messageID(q.ID)
	if err != nil {
		return nil, fmt.Errorf("telegram send to %s: quoted %w", jid, err)
	}
	return c.sendText(ctx, jid, text, id)
}

// sendsMoved reports the supergroup Telegram says chat jid became, when err
// is its refusal of a send for that reason (400 with migrate_to_chat_id):
// nothing was sent, and the send goes to the new id. The registration moved
// when the service message came (store.MoveChat); this covers a reply
// addressed to the old id before, or from the old chat's backlog.
func (c *Channel) sendsMoved(jid string, err error) (int64, bool) {
	var m *bot.MigrateError
	if !errors.As(err, &m) || m.MigrateToChatID == 0 || int64(m.MigrateToChatID) >= 0 {
		return 0, false
	}
	c.log.Info("the Telegram group became a supergroup; sending to its new id", "from", jid, "to", chatID(int64(m.MigrateToChatID)))
	return int64(m.MigrateToChatID), true
}

// messageID parses a Telegram message id.
func messageID(s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("message id %q is not a Telegram message id", sanitize.Clip(s, 40, "…"))
	}
	return id, nil
}

// sendText is Send; replyTo, when not 0, is the message the first part
// replies to.
func (c *Channel) sendText(ctx context.Context, jid, text string, replyTo int) ([]string, error) {
	chat, err := parseChat(jid)
	if err != nil {
		return nil, fmt.Errorf("telegram send: %w", err)
	}
	parts := SplitText(validText(text), MaxMessageUnits)
	if len(parts) == 0 {
		return nil, fmt.Errorf("telegram send to %s: empty text", jid)
	}
	a, err := c.usable()
	if err != nil {
		return nil, fmt.Errorf("telegram send to %s: %w", jid, err)
	}
	formatted := reopenFences(parts)
	ids := make([]string, 0, len(parts))
	var doubt error
	for i, part := range parts {
		if err := c.limit.Wait(ctx, jid); err != nil {
			return ids, fmt.Errorf("telegram send to %s: part %d of %d: waiting for the chat's send limit (%s): %w", jid, i+1, len(parts), c.limit, err)
		}
		var reply *models.ReplyParameters
		if i == 0 && replyTo > 0 {
			reply = &models.ReplyParameters{MessageID: replyTo, AllowSendingWithoutReply: true}
		}
		id, err := a.sendMessage(ctx, chat, part, formatted[i], reply, c.html)
		if to, ok := c.sendsMoved(jid, err); ok {
			// Nothing was sent: the same part goes to the new id, without
			// its quote (the quoted message is in the old chat).
			chat, reply = to, nil
			id, err = a.sendMessage(ctx, chat, part, formatted[i], reply, c.html)
		}
		if errors.Is(err, channel.ErrMaybeSent) {
			// This part may have arrived: sent again it could show twice,
			// so the next parts go on without it, and the doubt is told.
			doubt = fmt.Errorf("telegram send to %s: part %d of %d: %w", jid, i+1, len(parts), err)
			continue
		}
		if err != nil {
			return ids, fmt.Errorf("telegram send to %s: part %d of %d: %w", jid, i+1, len(parts), err)
		}
		ids = append(ids, strconv.Itoa(id))
	}
	return ids, doubt
}

// sendMessage sends one part: md as HTML, or plain when it shows nothing
// as HTML or Telegram cannot parse the HTML.
func (a *api) sendMessage(ctx context.Context, chat int64, plain, md string, reply *models.ReplyParameters, toHTML func(string) (string, bool)) (int, error) {
	html, shown := toHTML(md)
	if shown {
		id, err := a.sendOne(ctx, &bot.SendMessageParams{ChatID: chat, Text: html, ParseMode: models.ParseModeHTML, ReplyParameters: reply})
		if !cannotParse(err) {
			return id, err
		}
		a.log.Warn("Telegram could not parse a message's formatting; sending it as plain text", "chat", chatID(chat), "err", err)
	}
	return a.sendOne(ctx, &bot.SendMessageParams{ChatID: chat, Text: plain, ReplyParameters: reply})
}

func (a *api) sendOne(ctx context.Context, p *bot.SendMessageParams) (int, error) {
	var msg *models.Message
	err := a.call(ctx, "sendMessage", onlyUnsent, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		var err error
		msg, err = a.b.SendMessage(ctx, p)
		return err
	})
	if err != nil {
		return 0, err
	}
	return msg.ID, nil
}

// cannotParse reports Telegram's refusal of a message's formatting (400
// "can't parse entities").
func cannotParse(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.status == http.StatusBadRequest && strings.Contains(strings.ToLower(e.msg), "can't parse entities")
}

// Limits of the files a bot sends.
const (
	maxPhotoBytes  = 10 << 20 // a photo; a larger image goes as a document
	maxUploadBytes = 50 << 20 // anything
)

// SendFile sends f to chat jid and returns the message's id: as a photo
// (jpeg, png up to 10 MB), a voice note (a KindVoice ogg), audio (mp3,
// m4a, ogg), a video (mp4), else as a document with its name. A caption
// longer than Telegram's 1024 characters is cut at a boundary and the rest
// follows as a message. It waits for its turn in the chat's send limit
// like each part of Send (R9).
func (c *Channel) SendFile(ctx context.Context, jid string, f channel.File) (string, error) {
	chat, err := parseChat(jid)
	if err != nil {
		return "", fmt.Errorf("telegram send file: %w", err)
	}
	switch {
	case len(f.Data) == 0:
		return "", fmt.Errorf("telegram send file to %s: %q is empty", jid, f.Name)
	case len(f.Data) > maxUploadBytes:
		return "", fmt.Errorf("telegram send file to %s: %q is %d bytes; Telegram takes files from bots up to %d MB", jid, f.Name, len(f.Data), maxUploadBytes>>20)
	}
	a, err := c.usable()
	if err != nil {
		return "", fmt.Errorf("telegram send file to %s: %w", jid, err)
	}
	caption, rest := "", ""
	if parts := SplitText(validText(f.Caption), maxCaptionUnits); len(parts) > 0 {
		caption = parts[0]
		rest = strings.TrimSpace(validText(f.Caption)[len(caption):])
	}
	if err := c.limit.Wait(ctx, jid); err != nil {
		return "", fmt.Errorf("telegram send file to %s: waiting for the chat's send limit (%s): %w", jid, c.limit, err)
	}
	upload := func(chat int64) (*models.Message, error) {
		method, send := fileMethod(a, chat, f, caption)
		var msg *models.Message
		err := a.call(ctx, method, onlyUnsent, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, uploadTimeout)
			defer cancel()
			var err error
			msg, err = send(ctx)
			return err
		})
		return msg, err
	}
	msg, err := upload(chat)
	if to, ok := c.sendsMoved(jid, err); ok {
		msg, err = upload(to)
		jid = chatID(to)
	}
	if err != nil {
		return "", fmt.Errorf("telegram send file to %s: %w", jid, err)
	}
	if rest != "" {
		if _, err := c.sendText(ctx, jid, rest, 0); err != nil {
			return strconv.Itoa(msg.ID), fmt.Errorf("telegram send file to %s: the file went, the rest of its caption did not: %w", jid, err)
		}
	}
	return strconv.Itoa(msg.ID), nil
}

// fileMethod is the Bot API method f goes by, and the call that sends it
// (a new reader for every attempt).
func fileMethod(a *api, chat int64, f channel.File, caption string) (string, func(ctx context.Context) (*models.Message, error)) {
	name := fileName(f)
	upload := func() models.InputFile { return &models.InputFileUpload{Filename: name, Data: bytes.NewReader(f.Data)} }
	t := mediaType(f.MIME)
	switch {
	case f.Kind == channel.KindImage && (t == "image/jpeg" || t == "image/png") && len(f.Data) <= maxPhotoBytes:
		return "sendPhoto", func(ctx context.Context) (*models.Message, error) {
			return a.b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: chat, Photo: upload(), Caption: caption})
		}
	case f.Kind == channel.KindVoice && isOgg(t):
		return "sendVoice", func(ctx context.Context) (*models.Message, error) {
			return a.b.SendVoice(ctx, &bot.SendVoiceParams{ChatID: chat, Voice: upload(), Caption: caption})
		}
	case (f.Kind == channel.KindAudio || f.Kind == channel.KindVoice) && (isOgg(t) || t == "audio/mpeg" || t == "audio/mp4" || t == "audio/x-m4a"):
		return "sendAudio", func(ctx context.Context) (*models.Message, error) {
			return a.b.SendAudio(ctx, &bot.SendAudioParams{ChatID: chat, Audio: upload(), Caption: caption})
		}
	case f.Kind == channel.KindVideo && t == "video/mp4":
		return "sendVideo", func(ctx context.Context) (*models.Message, error) {
			return a.b.SendVideo(ctx, &bot.SendVideoParams{ChatID: chat, Video: upload(), Caption: caption})
		}
	}
	return "sendDocument", func(ctx context.Context) (*models.Message, error) {
		return a.b.SendDocument(ctx, &bot.SendDocumentParams{ChatID: chat, Document: upload(), Caption: caption})
	}
}

// fileName is the name a file is sent under: its base name, made safe to
// show, never empty.
func fileName(f channel.File) string {
	name := sanitize.Name(f.Name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(strings.ReplaceAll(name, `"`, "'"))
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	return name
}

// isOgg: Go's content sniffing calls Ogg "application/ogg".
func isOgg(t string) bool { return t == "audio/ogg" || t == "application/ogg" }

// reactionFor is the emoji Telegram shows for the host's status reaction:
// Telegram lets bots react only with a fixed list, which lacks ✅ and ❌.
var reactionFor = map[string]string{"✅": "👍", "❌": "👎", "✔": "👍"}

// reactions are the emoji Telegram accepts as a reaction
// (ReactionTypeEmoji in the Bot API).
var reactions = func() map[string]bool {
	m := make(map[string]bool)
	for _, e := range strings.Fields("👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡") {
		m[e] = true
	}
	return m
}()

// Reaction is the emoji Telegram shows for emoji, and whether it has one:
// ✅ and ❌ become 👍 and 👎; emoji presentation selectors are dropped.
func Reaction(emoji string) (string, bool) {
	e := strings.ReplaceAll(emoji, "\ufe0f", "")
	if r, ok := reactionFor[e]; ok {
		e = r
	}
	return e, reactions[e]
}

// React sets the bot's reaction to message to of chat jid to emoji (see
// Reaction); "" removes it. Reactions do not wait for the chat's send
// limit: Telegram shows them without a notification.
func (c *Channel) React(ctx context.Context, jid string, to channel.MessageRef, emoji string) error {
	chat, err := parseChat(jid)
	if err != nil {
		return fmt.Errorf("telegram react: %w", err)
	}
	id, err := messageID(to.ID)
	if err != nil {
		return fmt.Errorf("telegram react in %s: %w", jid, err)
	}
	p := &bot.SetMessageReactionParams{ChatID: chat, MessageID: id}
	if emoji != "" {
		e, ok := Reaction(emoji)
		if !ok {
			return fmt.Errorf("telegram react in %s: Telegram has no reaction %q; use one of its list, such as 👍 👎 👀", jid, sanitize.Clip(emoji, 40, "…"))
		}
		p.Reaction = []models.ReactionType{{Type: models.ReactionTypeTypeEmoji, ReactionTypeEmoji: &models.ReactionTypeEmoji{Emoji: e}}}
	}
	a, err := c.usable()
	if err != nil {
		return fmt.Errorf("telegram react in %s: %w", jid, err)
	}
	err = a.call(ctx, "setMessageReaction", idempotent, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		_, err := a.b.SetMessageReaction(ctx, p)
		return err
	})
	if err != nil {
		return fmt.Errorf("telegram react in %s to %s: %w", jid, to.ID, err)
	}
	return nil
}
