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
	cases := []convertCase{
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
				SenderName: "Bob", Text: "our cat", Timestamp: when, IsGroup: true,
				Attachments: []channel.Attachment{{Kind: channel.KindImage}}},
		},
		{
			name: "video caption, sender LID resolved through the LID map",
			evt: msgEvent(types.MessageInfo{
				MessageSource: types.MessageSource{Chat: group, Sender: bobLID, IsGroup: true},
			}, &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: proto.String("look")}}),
			want: channel.Message{ChatJID: "120363025246125486@g.us", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
				SenderName: "4915112345678", Text: "look", Timestamp: when, IsGroup: true,
				Attachments: []channel.Attachment{{Kind: channel.KindVideo}}},
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
				SenderName: "Bob", Text: "yes, at 5", Quote: "are we meeting today?", Timestamp: when, ReplyTo: "OLD1"},
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
				SenderName: "Bob", Text: "this one", Quote: strings.TrimSpace(longQuote[:quoteMaxRunes-1]) + "…", Timestamp: when,
				Attachments: []channel.Attachment{{Kind: channel.KindImage}}},
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
	runConvert(t, cases)
}

type convertCase struct {
	name string
	evt  *events.Message
	want channel.Message
}

// runConvert converts each case's event and compares it with the case's
// message; Fetch, a function, is checked to be there and then left out.
func runConvert(t *testing.T, cases []convertCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := convert(tc.evt, testIdentity(), nil)
			if !ok {
				t.Fatal("ignored, want converted")
			}
			for i := range got.Attachments {
				if got.Attachments[i].Fetch == nil {
					t.Errorf("attachment %d has no Fetch", i)
				}
				got.Attachments[i].Fetch = nil
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
		{"reaction", msgEvent(types.MessageInfo{MessageSource: direct}, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍")}})},
		{"protocol message (delete)", msgEvent(types.MessageInfo{MessageSource: direct}, &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_REVOKE.Enum()}})},
		{"location", msgEvent(types.MessageInfo{MessageSource: direct}, &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
			DegreesLatitude: proto.Float64(52.5), DegreesLongitude: proto.Float64(13.4)}})},
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
			if got, ok := convert(tc.evt, testIdentity(), nil); ok {
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

// Each kind of media becomes an attachment, with the sender's claims of
// type, size and name; a caption is the text, and media without one is
// a message all the same.
func TestConvertMedia(t *testing.T) {
	bob := types.MessageInfo{MessageSource: types.MessageSource{Chat: bobPN, Sender: bobPN}, PushName: "Bob"}
	inGroup := types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: withDevice(bobLID, 2), SenderAlt: bobPN, IsGroup: true}, PushName: "Bob"}
	fromBob := channel.Message{ChatJID: "4915112345678@s.whatsapp.net", ID: "3EB0ABCDEF", Sender: "4915112345678@s.whatsapp.net",
		SenderName: "Bob", Timestamp: when}
	with := func(m channel.Message, text string, a ...channel.Attachment) channel.Message {
		m.Text, m.Attachments = text, a
		return m
	}
	inGroupMsg := fromBob
	inGroupMsg.ChatJID, inGroupMsg.IsGroup = group.String(), true
	pdf := &waE2E.DocumentMessage{
		Mimetype: proto.String("application/pdf"), FileLength: proto.Uint64(48213),
		FileName: proto.String("Invoice\nMarch \u202egnp.pdf <b>"), Caption: proto.String("the invoice"),
	}
	runConvert(t, []convertCase{
		{"photo without a caption", msgEvent(bob, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Mimetype: proto.String("image/jpeg"), FileLength: proto.Uint64(204800)}}),
			with(fromBob, "", channel.Attachment{Kind: channel.KindImage, MIME: "image/jpeg", Size: 204800})},
		{"sticker", msgEvent(bob, &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
			Mimetype: proto.String("image/webp"), FileLength: proto.Uint64(9000)}}),
			with(fromBob, "", channel.Attachment{Kind: channel.KindSticker, MIME: "image/webp", Size: 9000})},
		{"voice note in a group", msgEvent(inGroup, &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			PTT: proto.Bool(true), Mimetype: proto.String("audio/ogg; codecs=opus"), FileLength: proto.Uint64(31337), Seconds: proto.Uint32(7)}}),
			with(inGroupMsg, "", channel.Attachment{Kind: channel.KindVoice, MIME: "audio/ogg", Size: 31337})},
		{"audio file", msgEvent(bob, &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			Mimetype: proto.String("audio/mpeg"), FileLength: proto.Uint64(3_000_000)}}),
			with(fromBob, "", channel.Attachment{Kind: channel.KindAudio, MIME: "audio/mpeg", Size: 3_000_000})},
		{"video with a caption", msgEvent(bob, &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			Caption: proto.String("first steps!"), Mimetype: proto.String("video/mp4"), FileLength: proto.Uint64(9_000_000)}}),
			with(fromBob, "first steps!", channel.Attachment{Kind: channel.KindVideo, MIME: "video/mp4", Size: 9_000_000})},
		{"document: its name made one clean line", msgEvent(bob, &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			Mimetype: proto.String("text/plain"), FileLength: proto.Uint64(12), FileName: proto.String("../../etc/passwd\r\n\x00")}}),
			with(fromBob, "", channel.Attachment{Kind: channel.KindDocument, MIME: "text/plain", Size: 12, FileName: "../../etc/passwd"})},
		{"document with a caption, as WhatsApp wraps it", msgEvent(bob, &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{
			Message: &waE2E.Message{DocumentMessage: pdf}}}),
			with(fromBob, "the invoice", channel.Attachment{Kind: channel.KindDocument, MIME: "application/pdf", Size: 48213, FileName: "Invoice March gnp.pdf b"})},
		{"a MIME claim that is none, and a size past int64", msgEvent(bob, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Mimetype: proto.String("<script>"), FileLength: proto.Uint64(1 << 63)}}),
			with(fromBob, "", channel.Attachment{Kind: channel.KindImage, Size: 1<<63 - 1})},
	})
}

// A reply names the message it answers and who wrote it (canonically, as
// senders are); the quote is its text, or a label for its media.
func TestConvertReplies(t *testing.T) {
	bob := types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: bobPN, IsGroup: true}, PushName: "Bob"}
	reply := func(text string, ci *waE2E.ContextInfo) *waE2E.Message {
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(text), ContextInfo: ci}}
	}
	want := func(text, quote, replyTo, quoteSender string, a ...channel.Attachment) channel.Message {
		return channel.Message{ChatJID: group.String(), ID: "3EB0ABCDEF", Sender: bobPN.String(), SenderName: "Bob", Timestamp: when, IsGroup: true,
			Text: text, Quote: quote, ReplyTo: replyTo, QuoteSender: quoteSender, Attachments: a}
	}
	runConvert(t, []convertCase{
		{"of text, by a member known by LID", msgEvent(bob, reply("sounds good", &waE2E.ContextInfo{
			StanzaID: proto.String("3EB0AAAA"), Participant: proto.String("4242:5@lid"), QuotedMessage: text("pizza tonight?")})),
			want("sounds good", "pizza tonight?", "3EB0AAAA", bobPN.String())},
		{"of the account's own message, by its LID", msgEvent(bob, reply("thanks!", &waE2E.ContextInfo{
			StanzaID: proto.String("3EB0BBBB"), Participant: proto.String(ownLID.String()), QuotedMessage: text("Here is the list.")})),
			want("thanks!", "Here is the list.", "3EB0BBBB", ownPN.String())},
		{"of a photo with a caption", msgEvent(bob, reply("cute", &waE2E.ContextInfo{
			StanzaID: proto.String("P1"), Participant: proto.String("777@lid"),
			QuotedMessage: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("our\ncat")}}})),
			want("cute", "[photo] our cat", "P1", "777@lid")},
		{"of a voice note", msgEvent(bob, reply("what did she say?", &waE2E.ContextInfo{
			StanzaID: proto.String("V1"), Participant: proto.String(bobPN.String()),
			QuotedMessage: &waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true)}}})),
			want("what did she say?", "[voice note]", "V1", bobPN.String())},
		{"of a captioned document", msgEvent(bob, reply("summarise this", &waE2E.ContextInfo{
			StanzaID: proto.String("D1"), Participant: proto.String(bobPN.String()),
			QuotedMessage: &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
				DocumentMessage: &waE2E.DocumentMessage{FileName: proto.String("lease.pdf"), Caption: proto.String("the new lease")}}}}})),
			want("summarise this", "[document lease.pdf] the new lease", "D1", bobPN.String())},
		{"by voice note: the context of an audio message is read too", msgEvent(bob, &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			PTT: proto.Bool(true), ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("T1"), QuotedMessage: text("call me")}}}),
			want("", "call me", "T1", "", channel.Attachment{Kind: channel.KindVoice})},
		{"by sticker", msgEvent(bob, &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
			ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("T2"), QuotedMessage: text("we won!")}}}),
			want("", "we won!", "T2", "", channel.Attachment{Kind: channel.KindSticker})},
		{"with a document's context", msgEvent(bob, &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			FileName: proto.String("a.txt"), ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String("T3"), QuotedMessage: text("send the file")}}}),
			want("", "send the file", "T3", "", channel.Attachment{Kind: channel.KindDocument, FileName: "a.txt"})},
		{"an id that is no message id is dropped, and its sender with it", msgEvent(bob, reply("hm", &waE2E.ContextInfo{
			StanzaID: proto.String("X Y\n"), Participant: proto.String(bobPN.String()), QuotedMessage: text("earlier")})),
			want("hm", "earlier", "", "")},
		{"a participant that is no user is dropped", msgEvent(bob, reply("hm", &waE2E.ContextInfo{
			StanzaID: proto.String("X1"), Participant: proto.String(group.String()), QuotedMessage: text("earlier")})),
			want("hm", "earlier", "X1", "")},
	})
}

// MentionsSelf follows WhatsApp's mention list, by LID or phone number and
// on any device — never the text, which anyone can write.
func TestConvertMentions(t *testing.T) {
	bob := types.MessageInfo{MessageSource: types.MessageSource{Chat: group, Sender: bobPN, IsGroup: true}, PushName: "Bob"}
	for _, tc := range []struct {
		name      string
		mentioned []string
		want      bool
	}{
		{"the account by LID", []string{"4242@lid", ownLID.String()}, true},
		{"the account by phone number", []string{ownPN.String()}, true},
		{"the account by LID with a device", []string{"99887766:4@lid"}, true},
		{"someone else", []string{bobLID.String(), bobPN.String()}, false},
		{"the account's number on another server", []string{"15550001111@g.us", "99887766@s.whatsapp.net"}, false},
		{"nobody", nil, false},
		{"junk", []string{"", "@", "not a jid"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
				Text: proto.String("@99887766 can you help?"), ContextInfo: &waE2E.ContextInfo{MentionedJID: tc.mentioned}}}
			got, ok := convert(msgEvent(bob, msg), testIdentity(), nil)
			if !ok || got.MentionsSelf != tc.want {
				t.Errorf("MentionsSelf = %v (converted %v), want %v", got.MentionsSelf, ok, tc.want)
			}
		})
	}
	// A photo's mentions count too.
	photo := &waE2E.Message{ImageMessage: &waE2E.ImageMessage{ContextInfo: &waE2E.ContextInfo{MentionedJID: []string{ownLID.String()}}}}
	if got, _ := convert(msgEvent(bob, photo), testIdentity(), nil); !got.MentionsSelf {
		t.Error("a mention on a photo not seen")
	}
}
