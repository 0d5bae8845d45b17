package whatsapp

import (
	"cmp"
	"context"
	"errors"
	"io"
	"math"
	"mime"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// quoteMaxRunes caps the "> quoted" preface of a reply: enough to tell which
// message was answered, without repeating a long one in every prompt.
const quoteMaxRunes = 120

// identity is who the account is, for turning WhatsApp's addresses into
// canonical chat ids. WhatsApp addresses one user either by phone number
// ("15551234567@s.whatsapp.net") or by an opaque LID ("98765@lid"); the same
// self-chat can arrive under either. NanoClaw keys chats by one id each, so
// every user address is mapped to its phone-number form where it is known.
type identity struct {
	pn       types.JID // the account's phone-number JID, without device
	lid      types.JID // the account's LID, without device; may be empty
	pushName string    // the account's own display name; may be empty
	// pnForLID looks up the phone-number JID of another user's LID
	// (whatsmeow's LID map); it returns the empty JID when unknown. nil
	// means no lookup.
	pnForLID func(lid types.JID) types.JID
}

// canonical returns the one id NanoClaw uses for the user or chat jid: groups
// unchanged; users without their device part, and in phone-number form when
// the LID's phone number is known — from alt (the event's alternative
// address), the account itself, or the LID map. An unknown LID stays a LID.
func (id identity) canonical(jid, alt types.JID) types.JID {
	switch jid.Server {
	case types.DefaultUserServer:
		return jid.ToNonAD()
	case types.HiddenUserServer:
		lid := jid.ToNonAD()
		if !id.lid.IsEmpty() && lid.User == id.lid.User {
			return id.pn
		}
		if alt.Server == types.DefaultUserServer {
			return alt.ToNonAD()
		}
		if id.pnForLID != nil {
			if pn := id.pnForLID(lid); pn.Server == types.DefaultUserServer {
				return pn.ToNonAD()
			}
		}
		return lid
	default:
		return jid
	}
}

// isSelf reports whether jid names the account itself, by phone number or
// by LID, on any of its devices.
func (id identity) isSelf(jid types.JID) bool {
	switch jid.Server {
	case types.DefaultUserServer:
		return !id.pn.IsEmpty() && jid.User == id.pn.User
	case types.HiddenUserServer:
		return !id.lid.IsEmpty() && jid.User == id.lid.User
	}
	return false
}

// convert turns a whatsmeow message event into a channel.Message. ok is false
// for what NanoClaw ignores: status updates, broadcast lists and newsletters;
// protocol messages (deletions, key shares, settings), edits, and anything
// with neither text nor media (reactions, polls, locations, contacts…).
// Each media item becomes an Attachment whose Fetch downloads it through
// download.
//
// It is a pure function of the event and the account's identity (Fetch
// runs only when called), so it is tested with constructed events.
func convert(evt *events.Message, id identity, download downloadFunc) (channel.Message, bool) {
	if evt == nil || evt.Message == nil {
		return channel.Message{}, false
	}
	info := &evt.Info
	switch info.Chat.Server {
	case types.DefaultUserServer, types.HiddenUserServer, types.GroupServer:
	default: // broadcast (status updates, broadcast lists), newsletters, bots…
		return channel.Message{}, false
	}
	msg := unwrap(evt.Message)
	if evt.IsEdit || info.Edit != types.EditAttributeEmpty || msg.GetProtocolMessage() != nil {
		return channel.Message{}, false
	}
	text := strings.TrimSpace(messageText(msg))
	if evt.IsViewOnce {
		download = refuseViewOnce
	}
	attachments := mediaOf(msg, download)
	if text == "" && len(attachments) == 0 {
		return channel.Message{}, false
	}

	var chat types.JID
	switch {
	case info.IsGroup || info.Chat.Server == types.GroupServer:
		chat = info.Chat
	case info.IsFromMe:
		// Sent by the account (another device): the chat is the recipient.
		chat = id.canonical(info.Chat, info.RecipientAlt)
	default:
		// Received in a direct chat: the chat is the sender.
		chat = id.canonical(info.Chat, info.SenderAlt)
	}
	sender := id.canonical(info.Sender, info.SenderAlt)
	if info.IsFromMe && !id.pn.IsEmpty() {
		sender = id.pn
	}
	if sender.IsEmpty() {
		sender = chat
	}

	name := strings.TrimSpace(info.PushName)
	if name == "" && info.IsFromMe {
		name = id.pushName
	}
	if name == "" || name == "-" {
		name = sender.User
	}

	ts := info.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	ci := contextInfo(msg)
	m := channel.Message{
		ChatJID:      chat.String(),
		ID:           info.ID,
		Sender:       sender.String(),
		SenderName:   validText(name),
		Text:         text,
		Quote:        quote(ci), // apart, so a swipe-reply starting with the trigger triggers
		Timestamp:    ts.UTC(),
		FromMe:       info.IsFromMe,
		IsGroup:      chat.Server == types.GroupServer,
		ReplyTo:      messageID(ci.GetStanzaID()),
		MentionsSelf: mentions(ci, id),
		Attachments:  attachments,
	}
	if m.ReplyTo != "" {
		if p, ok := userJID(ci.GetParticipant()); ok {
			m.QuoteSender = id.canonical(p, types.EmptyJID).String()
		}
	}
	return m, true
}

// errViewOnce is the Fetch error of media sent "view once": its sender
// asked that it not be kept, and the host keeps media for weeks.
var errViewOnce = errors.New("sent as view once: not downloaded, as its sender asked")

func refuseViewOnce(context.Context, whatsmeow.DownloadableMessage, whatsmeow.File) error {
	return errViewOnce
}

// unwrap returns the message a document with a caption wraps (whatsmeow
// unwraps it already; a quoted one it does not), or msg.
func unwrap(msg *waE2E.Message) *waE2E.Message {
	if inner := msg.GetDocumentWithCaptionMessage().GetMessage(); inner != nil {
		return inner
	}
	return msg
}

// messageText is the text of a message: plain conversation, extended text
// (text with a link preview, a reply or a mention), or a media caption.
func messageText(msg *waE2E.Message) string {
	return validText(cmp.Or(msg.GetConversation(), msg.GetExtendedTextMessage().GetText(),
		msg.GetImageMessage().GetCaption(), msg.GetVideoMessage().GetCaption(), msg.GetDocumentMessage().GetCaption()))
}

// contextInfo is the reply and mention context of a message, from whichever
// kind of message carries it; nil when none does.
func contextInfo(msg *waE2E.Message) *waE2E.ContextInfo {
	return cmp.Or(msg.GetExtendedTextMessage().GetContextInfo(), msg.GetImageMessage().GetContextInfo(),
		msg.GetVideoMessage().GetContextInfo(), msg.GetAudioMessage().GetContextInfo(),
		msg.GetDocumentMessage().GetContextInfo(), msg.GetStickerMessage().GetContextInfo())
}

// quote renders the message a reply answers as one line — its text, or for
// media a label such as "[photo]" before its caption — whitespace collapsed
// and capped at quoteMaxRunes; "" when there is no quoted message.
func quote(ci *waE2E.ContextInfo) string {
	q := ci.GetQuotedMessage()
	if q == nil {
		return ""
	}
	q = unwrap(q)
	text := strings.Join(strings.Fields(messageText(q)), " ")
	if label := mediaLabel(q); label != "" {
		text = strings.TrimSpace(label + " " + text)
	}
	return clip(text, quoteMaxRunes)
}

// mediaLabel names the media a quoted message carries, as a person would
// say it: "[photo]", "[voice note]", "[document report.pdf]"; "" for none.
func mediaLabel(msg *waE2E.Message) string {
	switch {
	case msg.GetImageMessage() != nil:
		return "[photo]"
	case msg.GetStickerMessage() != nil:
		return "[sticker]"
	case msg.GetAudioMessage() != nil && msg.GetAudioMessage().GetPTT():
		return "[voice note]"
	case msg.GetAudioMessage() != nil:
		return "[audio]"
	case msg.GetVideoMessage() != nil:
		return "[video]"
	case msg.GetDocumentMessage() != nil:
		if name := fileName(msg.GetDocumentMessage().GetFileName()); name != "" {
			return "[document " + name + "]"
		}
		return "[document]"
	}
	return ""
}

// maxMessageIDBytes bounds a quoted message's id: WhatsApp's ids are a few
// dozen characters; anything longer is not one.
const maxMessageIDBytes = 128

// messageID is s when it can be a message id (printable ASCII, no space, at
// most maxMessageIDBytes), else "": the id of a quoted message is the
// sender's app's claim.
func messageID(s string) string {
	if len(s) > maxMessageIDBytes {
		return ""
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return ""
		}
	}
	return s
}

// userJID parses a user address ("123@s.whatsapp.net", "456@lid", with or
// without a device part) from a message's context; ok is false for
// anything else.
func userJID(s string) (types.JID, bool) {
	if s == "" || len(s) > maxMessageIDBytes {
		return types.JID{}, false
	}
	j, err := types.ParseJID(s)
	if err != nil || j.User == "" || (j.Server != types.DefaultUserServer && j.Server != types.HiddenUserServer) {
		return types.JID{}, false
	}
	return j, true
}

// mentions reports whether the message @-mentions the account. WhatsApp
// lists mentions by LID in groups that use LIDs and by phone number
// elsewhere, so both are compared (users, not devices).
func mentions(ci *waE2E.ContextInfo, id identity) bool {
	for _, s := range ci.GetMentionedJID() {
		if j, ok := userJID(s); ok && id.isSelf(j) {
			return true
		}
	}
	return false
}

// mediaOf turns the media a message carries into attachments. The sizes,
// types and names are the sender's app's claims; Fetch downloads through
// download.
func mediaOf(msg *waE2E.Message, download downloadFunc) []channel.Attachment {
	var out []channel.Attachment
	add := func(kind channel.MediaKind, m whatsmeow.DownloadableMessage, mimeType string, size uint64, name string) {
		claimed := int64(min(size, math.MaxInt64))
		out = append(out, channel.Attachment{
			Kind: kind, MIME: mediaType(mimeType), Size: claimed, FileName: fileName(name),
			Fetch: func(ctx context.Context, w io.Writer, max int64) error {
				return fetchMedia(ctx, download, m, claimed, w, max)
			},
		})
	}
	if m := msg.GetImageMessage(); m != nil {
		add(channel.KindImage, m, m.GetMimetype(), m.GetFileLength(), "")
	}
	if m := msg.GetStickerMessage(); m != nil {
		add(channel.KindSticker, m, m.GetMimetype(), m.GetFileLength(), "")
	}
	if m := msg.GetAudioMessage(); m != nil {
		kind := channel.KindAudio
		if m.GetPTT() {
			kind = channel.KindVoice
		}
		add(kind, m, m.GetMimetype(), m.GetFileLength(), "")
	}
	if m := msg.GetVideoMessage(); m != nil {
		add(channel.KindVideo, m, m.GetMimetype(), m.GetFileLength(), "")
	}
	if m := msg.GetDocumentMessage(); m != nil {
		add(channel.KindDocument, m, m.GetMimetype(), m.GetFileLength(), m.GetFileName())
	}
	return out
}

// mediaType is the media type of a sender's MIME claim, lower case and
// without parameters ("audio/ogg; codecs=opus" is "audio/ogg"); "" when it
// is none.
func mediaType(s string) string {
	if len(s) > 255 {
		return ""
	}
	t, _, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(t, "/") {
		return ""
	}
	return t
}

// fileName is a document's name as the sender chose it, made one short
// line fit to show (R19's rules for names). It is never used as a path.
func fileName(s string) string { return sanitize.Name(s) }

// clip cuts s to at most n runes, "…" marking a cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n-1]), unicode.IsSpace) + "…"
}

// validText replaces invalid UTF-8 so that a malformed message cannot carry
// broken bytes into the store and the prompt.
func validText(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}
