package whatsapp

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// The account in these tests: phone +15550001111, LID 99887766.
var (
	ownPN  = types.NewJID("15550001111", types.DefaultUserServer)
	ownLID = types.NewJID("99887766", types.HiddenUserServer)
	// Another user, known by LID 4242 and phone +4915112345678.
	bobPN  = types.NewJID("4915112345678", types.DefaultUserServer)
	bobLID = types.NewJID("4242", types.HiddenUserServer)
	group  = types.NewJID("120363025246125486", types.GroupServer)
	when   = time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
)

func testIdentity() identity {
	return identity{
		pn: ownPN, lid: ownLID, pushName: "Me",
		pnForLID: func(lid types.JID) types.JID {
			if lid == bobLID {
				return bobPN
			}
			return types.EmptyJID
		},
	}
}

func withDevice(j types.JID, dev uint16) types.JID {
	j.Device = dev
	return j
}

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

func msgEvent(info types.MessageInfo, m *waE2E.Message) *events.Message {
	if info.ID == "" {
		info.ID = "3EB0ABCDEF"
	}
	if info.Timestamp.IsZero() {
		info.Timestamp = when
	}
	return &events.Message{Info: info, Message: m, RawMessage: m}
}

func TestConvert(t *testing.T) {
	bobDirect := types.MessageSource{Chat: bobPN, Sender: withDevice(bobPN, 0)}
	longQuote := strings.Repeat("word ", 60) // 300 runes
	cases := []struct {
		name string
		evt  *events.Message
		want channel.Message
	}{
		{
			name: "plain text in a direct chat",
			evt:  msgEvent(types.MessageInfo{MessageSource: bobDirect, PushName: "Bob"}, text("hello")),
			want: channel.Message{ChatJID: "4915112345678@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "Bob", Text: "hello", Timestamp: when},
		},
		{
			name: "extended text",
			evt: msgEvent(types.MessageInfo{MessageSource: bobDirect, PushName: "Bob"},
				&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("see https://example.com")}}),
			want: channel.Message{ChatJID: "4915112345678@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "Bob", Text: "see https://example.com", Timestamp: when},
		},
		{
			name: "image caption in a group, sender by LID with its phone number",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: group, Sender: withDevice(bobLID, 3), SenderAlt: bobPN, IsGroup: true, AddressingMode: types.AddressingModeLID},
				PushName:      "Bob",
			}, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("our cat")}}),
			want: channel.Message{ChatJID: "120363025246125486@g.us", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "Bob", Text: "our cat", Timestamp: when, IsGroup: true},
		},
		{
			name: "video caption, sender LID resolved through the LID map",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: group, Sender: bobLID, IsGroup: true},
			}, &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: proto.String("look")}}),
			want: channel.Message{ChatJID: "120363025246125486@g.us", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "4915112345678", Text: "look", Timestamp: when, IsGroup: true},
		},
		{
			name: "a quoted reply keeps the quote apart, on one line",
			evt: msgEvent(types.MessageInfo{MessageSource: bobDirect, PushName: "Bob"},
				&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
					Text: proto.String("yes, at 5"),
					ContextInfo: &waE2E.ContextInfo{
						StanzaID:      proto.String("OLD1"),
						QuotedMessage: text("are we meeting\n\ntoday?"),
					},
				}}),
			want: channel.Message{ChatJID: "4915112345678@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "Bob", Text: "yes, at 5", Quote: "are we meeting today?", Timestamp: when},
		},
		{
			name: "a swipe-reply in a group that starts with the trigger still starts with it",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: group, Sender: bobPN, IsGroup: true},
				PushName:      "Bob",
			}, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
				Text:        proto.String("@Andy what about Tuesday?"),
				ContextInfo: &waE2E.ContextInfo{QuotedMessage: text("dinner on Monday?")},
			}}),
			want: channel.Message{ChatJID: "120363025246125486@g.us", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "Bob", Text: "@Andy what about Tuesday?", Quote: "dinner on Monday?", Timestamp: when, IsGroup: true},
		},
		{
			name: "a long quote is capped",
			evt: msgEvent(types.MessageInfo{MessageSource: bobDirect, PushName: "Bob"},
				&waE2E.Message{ImageMessage: &waE2E.ImageMessage{
					Caption:     proto.String("this one"),
					ContextInfo: &waE2E.ContextInfo{QuotedMessage: text(longQuote)},
				}}),
			want: channel.Message{ChatJID: "4915112345678@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "Bob", Text: "this one", Quote: strings.TrimSpace(longQuote[:quoteMaxRunes-1]) + "…", Timestamp: when},
		},
		{
			name: "from me in the self-chat, addressed by LID with a device",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: ownLID, Sender: withDevice(ownLID, 7), IsFromMe: true, AddressingMode: types.AddressingModeLID},
			}, text("remind me at 6")),
			want: channel.Message{ChatJID: "15550001111@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "15550001111@s.whatsapp.net",
				SenderName: "Me", Text: "remind me at 6", Timestamp: when, FromMe: true},
		},
		{
			name: "from me in the self-chat, addressed by phone number",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: ownPN, Sender: withDevice(ownPN, 0), IsFromMe: true},
				PushName:      "Me myself",
			}, text("hi me")),
			want: channel.Message{ChatJID: "15550001111@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "15550001111@s.whatsapp.net",
				SenderName: "Me myself", Text: "hi me", Timestamp: when, FromMe: true},
		},
		{
			name: "from me on another device to Bob's LID: the chat is Bob's number",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: bobLID, RecipientAlt: bobPN, Sender: withDevice(ownLID, 2), IsFromMe: true},
			}, text("on my way")),
			want: channel.Message{ChatJID: "4915112345678@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "15550001111@s.whatsapp.net",
				SenderName: "Me", Text: "on my way", Timestamp: when, FromMe: true},
		},
		{
			name: "direct chat from an unknown LID stays a LID",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: types.NewJID("777", types.HiddenUserServer), Sender: types.NewJID("777", types.HiddenUserServer)},
				PushName:      "Stranger",
			}, text("hello?")),
			want: channel.Message{ChatJID: "777@lid", ID: "3EB0ABCDEF", Sender: "777@lid",
				SenderName: "Stranger", Text: "hello?", Timestamp: when},
		},
		{
			name: "invalid UTF-8 is replaced",
			evt:  msgEvent(types.MessageInfo{MessageSource: bobDirect, PushName: "Bob"}, text("ok \xff")),
			want: channel.Message{ChatJID: "4915112345678@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "Bob", Text: "ok \uFFFD", Timestamp: when},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := convert(tc.evt, testIdentity())
			if !ok {
				t.Fatal("ignored, want converted")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestConvertIgnores(t *testing.T) {
	direct := types.MessageSource{Chat: bobPN, Sender: bobPN}
	cases := []struct {
		name string
		evt  *events.Message
	}{
		{"sticker", msgEvent(types.MessageInfo{MessageSource: direct}, &waE2E.Message{StickerMessage: &waE2E.StickerMessage{}})},
		{"reaction", msgEvent(types.MessageInfo{MessageSource: direct}, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍")}})},
		{"protocol message (delete)", msgEvent(types.MessageInfo{MessageSource: direct}, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_REVOKE.Enum()}})},
		{"image without caption", msgEvent(types.MessageInfo{MessageSource: direct}, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{}})},
		{"whitespace only", msgEvent(types.MessageInfo{MessageSource: direct}, text(" \n "))},
		{"edit", func() *events.Message {
			e := msgEvent(types.MessageInfo{MessageSource: direct, Edit: types.EditAttributeMessageEdit}, text("fixed typo"))
			e.IsEdit = true
			return e
		}()},
		{"status update", msgEvent(types.MessageInfo{MessageSource: types.MessageSource{Chat: types.StatusBroadcastJID, Sender: bobPN, IsGroup: true}}, text("my status"))},
		{"newsletter", msgEvent(types.MessageInfo{MessageSource: types.MessageSource{Chat: types.NewJID("123", types.NewsletterServer)}}, text("news"))},
		{"no message", &events.Message{Info: types.MessageInfo{MessageSource: direct}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := convert(tc.evt, testIdentity()); ok {
				t.Errorf("converted to %+v, want ignored", got)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	id := testIdentity()
	cases := []struct {
		jid, alt types.JID
		want     string
	}{
		{ownPN, types.EmptyJID, "15550001111@s.whatsapp.net"},
		{withDevice(ownPN, 12), types.EmptyJID, "15550001111@s.whatsapp.net"},
		{ownLID, types.EmptyJID, "15550001111@s.whatsapp.net"},
		{withDevice(ownLID, 3), types.EmptyJID, "15550001111@s.whatsapp.net"},
		{bobLID, types.EmptyJID, "4915112345678@s.whatsapp.net"},                                       // LID map
		{types.NewJID("555", types.HiddenUserServer), bobPN, "4915112345678@s.whatsapp.net"},           // the event's alt wins over the map
		{types.NewJID("555", types.HiddenUserServer), types.EmptyJID, "555@lid"},                       // unknown
		{group, types.EmptyJID, "120363025246125486@g.us"},                                             // groups unchanged
		{types.NewJID("555", types.HiddenUserServer), types.NewJID("1", types.GroupServer), "555@lid"}, // a non-phone alt is not used
	}
	for _, tc := range cases {
		if got := id.canonical(tc.jid, tc.alt).String(); got != tc.want {
			t.Errorf("canonical(%s, %s) = %s, want %s", tc.jid, tc.alt, got, tc.want)
		}
	}
	// Without a known LID of its own, the account's LID cannot be recognised.
	noLID := identity{pn: ownPN}
	if got := noLID.canonical(ownLID, types.EmptyJID).String(); got != "99887766@lid" {
		t.Errorf("without own LID: %s", got)
	}
}
