package whatsapp

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// ParseChatJID validates a chat id NanoClaw may send to: "DIGITS@s.whatsapp.net"
// (a user by phone number), "DIGITS@lid" (a user by LID) or "ID@g.us" (a
// group), without a device part. The grammar is the store's (R14), so a chat
// can be registered as a group exactly when the channel can send to it.
func ParseChatJID(s string) (types.JID, error) {
	user, server, ok := strings.Cut(s, "@")
	if !ok {
		return types.JID{}, fmt.Errorf("WhatsApp chat id %q: want USER@SERVER", s)
	}
	if err := store.ValidateChatID(s); err != nil {
		return types.JID{}, err
	}
	return types.NewJID(user, server), nil
}

// Send sends text to a chat, split into parts of at most MaxMessageRunes,
// and returns the ids of the parts sent. On an error it returns the ids of
// the parts already sent along with it. Each part waits for its turn in the
// chat's send limit (R9): a flood is slowed down, never dropped; ctx bounds
// the wait.
func (c *Channel) Send(ctx context.Context, jid, text string) ([]string, error) {
	return c.sendText(ctx, "send", jid, text, nil)
}

// quotePreviewRunes caps the quoted text a reply carries: WhatsApp shows a
// few lines of it, and the phones find the whole message by its id.
const quotePreviewRunes = 300

// SendQuoting is Send, with the first part quoting message q of the chat:
// WhatsApp shows it as a reply to q.
func (c *Channel) SendQuoting(ctx context.Context, jid, text string, q channel.MessageRef) ([]string, error) {
	if messageID(q.ID) == "" {
		return nil, fmt.Errorf("whatsapp send to %s: quoted message id %q is not a WhatsApp message id", jid, q.ID)
	}
	return c.sendText(ctx, "send", jid, text, func() (*waE2E.ContextInfo, error) {
		participant, err := c.keySender(jid, q)
		if err != nil {
			return nil, err
		}
		return &waE2E.ContextInfo{
			StanzaID:      proto.String(q.ID),
			Participant:   proto.String(participant.ToNonAD().String()),
			QuotedMessage: &waE2E.Message{Conversation: proto.String(clip(validText(q.Text), quotePreviewRunes))},
		}, nil
	})
}

// sendText is Send; quoting, when not nil, gives the context of the first
// part, which then goes as an extended text message.
func (c *Channel) sendText(ctx context.Context, verb, jid, text string, quoting func() (*waE2E.ContextInfo, error)) ([]string, error) {
	to, err := ParseChatJID(jid)
	if err != nil {
		return nil, fmt.Errorf("whatsapp %s: %w", verb, err)
	}
	parts := SplitText(validText(text), MaxMessageRunes)
	if len(parts) == 0 {
		return nil, fmt.Errorf("whatsapp %s to %s: empty text", verb, jid)
	}
	if err := c.usable(); err != nil {
		return nil, fmt.Errorf("whatsapp %s to %s: %w", verb, jid, err)
	}
	var quote *waE2E.ContextInfo
	if quoting != nil {
		if quote, err = quoting(); err != nil {
			return nil, fmt.Errorf("whatsapp %s to %s: %w", verb, jid, err)
		}
	}
	ids := make([]string, 0, len(parts))
	for i, part := range parts {
		if err := c.limit.Wait(ctx, jid); err != nil {
			return ids, fmt.Errorf("whatsapp %s to %s: part %d of %d: waiting for the chat's send limit (%s): %w", verb, jid, i+1, len(parts), c.limit, err)
		}
		msg := &waE2E.Message{Conversation: proto.String(part)}
		if i == 0 && quote != nil {
			msg = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(part), ContextInfo: quote}}
		}
		resp, err := c.send(ctx, to, msg)
		if err != nil {
			return ids, fmt.Errorf("whatsapp %s to %s: part %d of %d: %w", verb, jid, i+1, len(parts), err)
		}
		ids = append(ids, resp.ID)
	}
	return ids, nil
}

// React sets the account's reaction to message to of chat jid to emoji; ""
// removes it. Reactions do not wait for the chat's send limit: the host
// sets at most a few per run, WhatsApp shows them without a notification,
// and a wait would delay the very reply they mark.
func (c *Channel) React(ctx context.Context, jid string, to channel.MessageRef, emoji string) error {
	chat, err := ParseChatJID(jid)
	if err != nil {
		return fmt.Errorf("whatsapp react: %w", err)
	}
	if messageID(to.ID) == "" {
		return fmt.Errorf("whatsapp react in %s: message id %q is not a WhatsApp message id", jid, to.ID)
	}
	if err := c.usable(); err != nil {
		return fmt.Errorf("whatsapp react in %s: %w", jid, err)
	}
	sender, err := c.keySender(jid, to)
	if err != nil {
		return fmt.Errorf("whatsapp react in %s: %w", jid, err)
	}
	if _, err := c.send(ctx, chat, c.cli.BuildReaction(chat, sender, to.ID, validText(emoji))); err != nil {
		return fmt.Errorf("whatsapp react in %s to %s: %w", jid, to.ID, err)
	}
	return nil
}

// keySender is the sender to name in the key of message ref of chat jid:
// the address WhatsApp gave when the message arrived, if remembered (see
// recentSenders); else the sender's id; the account itself for its own
// messages.
func (c *Channel) keySender(jid string, ref channel.MessageRef) (types.JID, error) {
	if raw, ok := c.recent.sender(jid, ref.ID); ok {
		return raw, nil
	}
	if ref.FromMe || ref.Sender == "" {
		return c.identity().pn, nil
	}
	j, ok := userJID(ref.Sender)
	if !ok {
		return types.JID{}, fmt.Errorf("sender %q of message %s is not a WhatsApp user id", ref.Sender, ref.ID)
	}
	return j, nil
}

// SendFile uploads f and sends it to chat jid, with its caption, and
// returns the message's id. It goes as a photo, video or audio when
// WhatsApp can show it as one (jpeg and png photos; mp4 and 3gpp videos;
// ogg, mp3, m4a, aac and amr audio without a caption, since WhatsApp's
// audio has none), as a voice note for a KindVoice ogg; everything else as
// a document with its name. It waits for its turn in the chat's send limit
// like each part of Send (R9).
func (c *Channel) SendFile(ctx context.Context, jid string, f channel.File) (string, error) {
	to, err := ParseChatJID(jid)
	if err != nil {
		return "", fmt.Errorf("whatsapp send file: %w", err)
	}
	if len(f.Data) == 0 {
		return "", fmt.Errorf("whatsapp send file to %s: %q is empty", jid, f.Name)
	}
	if err := c.usable(); err != nil {
		return "", fmt.Errorf("whatsapp send file to %s: %w", jid, err)
	}
	kind := sendKind(f)
	if err := c.limit.Wait(ctx, jid); err != nil {
		return "", fmt.Errorf("whatsapp send file to %s: waiting for the chat's send limit (%s): %w", jid, c.limit, err)
	}
	up, err := c.upload(ctx, f.Data, uploadType[kind])
	if err != nil {
		return "", fmt.Errorf("whatsapp send file to %s: upload of %q: %w", jid, f.Name, err)
	}
	resp, err := c.send(ctx, to, fileMessage(f, kind, up))
	if err != nil {
		return "", fmt.Errorf("whatsapp send file to %s: %w", jid, err)
	}
	return resp.ID, nil
}

// uploadType is the media type a kind of file is encrypted and uploaded as.
var uploadType = map[channel.MediaKind]whatsmeow.MediaType{
	channel.KindImage:    whatsmeow.MediaImage,
	channel.KindVideo:    whatsmeow.MediaVideo,
	channel.KindAudio:    whatsmeow.MediaAudio,
	channel.KindVoice:    whatsmeow.MediaAudio,
	channel.KindDocument: whatsmeow.MediaDocument,
}

// sendKind is how f goes: as its kind when WhatsApp shows that kind and
// type inline, else as a document.
func sendKind(f channel.File) channel.MediaKind {
	t := mediaType(f.MIME)
	switch f.Kind {
	case channel.KindImage:
		if t == "image/jpeg" || t == "image/png" {
			return channel.KindImage
		}
	case channel.KindVideo:
		if t == "video/mp4" || t == "video/3gpp" {
			return channel.KindVideo
		}
	case channel.KindAudio, channel.KindVoice:
		if f.Caption != "" {
			break // audio carries no caption; a document does
		}
		if isOgg(t) && f.Kind == channel.KindVoice {
			return channel.KindVoice
		}
		switch {
		case isOgg(t), t == "audio/mpeg", t == "audio/mp4", t == "audio/aac", t == "audio/amr":
			return channel.KindAudio
		}
	}
	return channel.KindDocument
}

// isOgg: Go's content sniffing calls Ogg "application/ogg".
func isOgg(t string) bool { return t == "audio/ogg" || t == "application/ogg" }

// fileMessage is the message that sends f, uploaded as up, as kind.
func fileMessage(f channel.File, kind channel.MediaKind, up whatsmeow.UploadResponse) *waE2E.Message {
	caption := optional(validText(f.Caption))
	mimeType := cmp.Or(mediaType(f.MIME), "application/octet-stream")
	switch kind {
	case channel.KindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Caption: caption, Mimetype: proto.String(mimeType),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		}}
	case channel.KindVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			Caption: caption, Mimetype: proto.String(mimeType),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		}}
	case channel.KindAudio, channel.KindVoice:
		if isOgg(mimeType) {
			// WhatsApp's own voice notes are Opus in Ogg, and its apps play
			// Ogg audio only when the type says so.
			mimeType = "audio/ogg; codecs=opus"
		}
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			PTT: proto.Bool(kind == channel.KindVoice), Mimetype: proto.String(mimeType),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		}}
	}
	name := cmp.Or(sanitize.Name(f.Name), "file")
	doc := &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
		FileName: proto.String(name), Title: proto.String(name), Caption: caption, Mimetype: proto.String(mimeType),
		URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
		FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
	}}
	if caption != nil {
		// WhatsApp's apps send a captioned document wrapped like this, and
		// older ones show the caption only then.
		return &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: doc}}
	}
	return doc
}

// optional is s as an optional protobuf field: nil when empty.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CheckSend reports whether a message to chat jid may go now under the
// chat's send limit: nil, or a *channel.RateLimitError (R9).
func (c *Channel) CheckSend(jid string) error { return c.limit.Check(jid) }
