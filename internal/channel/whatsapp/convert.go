package whatsapp

import (
	"cmp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/nanoclaw/nanoclaw/internal/channel"
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

// convert turns a whatsmeow message event into a channel.Message. ok is false
// for what NanoClaw ignores: status updates, broadcast lists and newsletters;
// protocol messages (deletions, key shares, settings), edits, and anything
// without text (stickers, reactions, media without a caption, polls…).
//
// It is a pure function of the event and the account's identity, so it is
// tested with constructed events.
func convert(evt *events.Message, id identity) (channel.Message, bool) {
	if evt == nil || evt.Message == nil {
		return channel.Message{}, false
	}
	info := &evt.Info
	switch info.Chat.Server {
	case types.DefaultUserServer, types.HiddenUserServer, types.GroupServer:
	default: // broadcast (status updates, broadcast lists), newsletters, bots…
		return channel.Message{}, false
	}
	msg := evt.Message
	if evt.IsEdit || info.Edit != types.EditAttributeEmpty || msg.GetProtocolMessage() != nil {
		return channel.Message{}, false
	}
	text := strings.TrimSpace(messageText(msg))
	if text == "" {
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
	return channel.Message{
		ChatJID:    chat.String(),
		ID:         info.ID,
		Sender:     sender.String(),
		SenderName: validText(name),
		Text:       text,
		Quote:      quote(msg), // apart, so a swipe-reply starting with the trigger triggers
		Timestamp:  ts.UTC(),
		FromMe:     info.IsFromMe,
		IsGroup:    chat.Server == types.GroupServer,
	}, true
}

// messageText is the text of a message: plain conversation, extended text
// (text with a link preview, a reply or a mention), or an image or video
// caption.
func messageText(msg *waE2E.Message) string {
	return validText(cmp.Or(msg.GetConversation(), msg.GetExtendedTextMessage().GetText(),
		msg.GetImageMessage().GetCaption(), msg.GetVideoMessage().GetCaption()))
}

// quote renders the message that msg answers as one line, whitespace
// collapsed and capped at quoteMaxRunes; "" when msg is no reply or the
// quoted message has no text. The reply context is read from the message
// kinds messageText reads.
func quote(msg *waE2E.Message) string {
	ci := cmp.Or(msg.GetExtendedTextMessage().GetContextInfo(), msg.GetImageMessage().GetContextInfo(),
		msg.GetVideoMessage().GetContextInfo())
	q := ci.GetQuotedMessage()
	if q == nil {
		return ""
	}
	text := strings.Join(strings.Fields(messageText(q)), " ")
	if text == "" {
		return ""
	}
	if utf8.RuneCountInString(text) > quoteMaxRunes {
		r := []rune(text)
		text = strings.TrimRightFunc(string(r[:quoteMaxRunes-1]), unicode.IsSpace) + "…"
	}
	return text
}

// validText replaces invalid UTF-8 so that a malformed message cannot carry
// broken bytes into the store and the prompt.
func validText(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}
