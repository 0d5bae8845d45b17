package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
)

func TestParseChatJID(t *testing.T) {
	good := []string{"15550001111@s.whatsapp.net", "4242@lid", "120363025246125486@g.us", "15550001111-1600000000@g.us"}
	for _, s := range good {
		j, err := ParseChatJID(s)
		if err != nil || j.String() != s {
			t.Errorf("ParseChatJID(%q) = %v, %v", s, j, err)
		}
	}
	bad := []string{"", "15550001111", "@s.whatsapp.net", "1555@", "15550001111:3@s.whatsapp.net", "abc@s.whatsapp.net",
		"status@broadcast", "123@newsletter", "local:main", "1@g.us@g.us", "1-2-3@g.us", "+1555@s.whatsapp.net"}
	for _, s := range bad {
		if _, err := ParseChatJID(s); err == nil {
			t.Errorf("ParseChatJID(%q) accepted", s)
		}
	}
	c := &Channel{}
	if !c.Owns("120363025246125486@g.us") || c.Owns("local:main") {
		t.Error("Owns wrong")
	}
}

func TestSendValidates(t *testing.T) {
	c := newPaired(t, nil)
	ctx := context.Background()
	for _, tc := range []struct{ jid, text, want string }{
		{"local:main", "hi", "USER@SERVER"},
		{"1555:2@s.whatsapp.net", "hi", "digits"},
		{ownPN.String(), " \n", "empty text"},
		{ownPN.String(), "hi", "not connected"},
	} {
		ids, err := c.Send(ctx, tc.jid, tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) || ids != nil {
			t.Errorf("Send(%q, %q) = %v, %v; want error containing %q", tc.jid, tc.text, ids, err, tc.want)
		}
	}
	if err := c.SetTyping(ctx, "nope", true); err == nil {
		t.Error("SetTyping accepted a bad id")
	}
	if _, err := c.Chats(ctx); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("Chats while not connected = %v", err)
	}
}

// R9: every part sent to a chat waits for its turn in the chat's send limit:
// a flood is slowed to the limit, never dropped, and the waiting ends with
// the caller's context.
func TestSendKeepsToTheChatLimit(t *testing.T) {
	c := newPaired(t, nil)
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	synctest.Test(t, func(t *testing.T) {
		c.limit = channel.NewSendLimit(20, 5)
		start := time.Now()
		var sent []time.Duration
		c.send = func(ctx context.Context, to types.JID, msg *waE2E.Message) (whatsmeow.SendResponse, error) {
			sent = append(sent, time.Since(start))
			return whatsmeow.SendResponse{ID: fmt.Sprint("id", len(sent))}, nil
		}
		ctx := context.Background()
		for i := range 6 {
			if _, err := c.Send(ctx, bobPN.String(), fmt.Sprint("message ", i)); err != nil {
				t.Fatal(err)
			}
		}
		// A long text is several WhatsApp messages: each part takes a turn.
		ids, err := c.Send(ctx, bobPN.String(), strings.Repeat("word ", MaxMessageRunes/5+10))
		if err != nil || len(ids) != 2 {
			t.Fatalf("long text: %v, %v", ids, err)
		}
		want := []time.Duration{0, 0, 0, 0, 0, 3 * time.Second, 6 * time.Second, 9 * time.Second}
		if !slices.Equal(sent, want) {
			t.Errorf("parts went at %v, want %v", sent, want)
		}
		if err := c.CheckSend(bobPN.String()); err == nil {
			t.Error("CheckSend: no limit reported after the flood")
		}
		// Another chat has its own budget.
		before := time.Now()
		if _, err := c.Send(ctx, ownPN.String(), "hi me"); err != nil || time.Since(before) != 0 {
			t.Errorf("another chat waited %s (%v)", time.Since(before), err)
		}
		// A caller that stops waiting gets an error, and nothing is sent.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		n := len(sent)
		if _, err := c.Send(cctx, bobPN.String(), "one more"); !errors.Is(err, context.DeadlineExceeded) || len(sent) != n {
			t.Errorf("Send with a short deadline = %v, sent %d more", err, len(sent)-n)
		}
	})
}

type sent struct {
	to  types.JID
	msg *waE2E.Message
}

type uploaded struct {
	data []byte
	kind whatsmeow.MediaType
}

// sending returns a connected channel whose messages and uploads are
// recorded instead of going to WhatsApp.
func sending(t *testing.T) (*Channel, *[]sent, *[]uploaded) {
	t.Helper()
	c := newPaired(t, nil)
	c.handler = &channeltest.Handler{}
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	var msgs []sent
	var ups []uploaded
	c.send = func(_ context.Context, to types.JID, msg *waE2E.Message) (whatsmeow.SendResponse, error) {
		msgs = append(msgs, sent{to, msg})
		return whatsmeow.SendResponse{ID: fmt.Sprint("OUT", len(msgs))}, nil
	}
	c.upload = func(_ context.Context, data []byte, kind whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
		ups = append(ups, uploaded{data, kind})
		return upResp(len(data)), nil
	}
	return c, &msgs, &ups
}

func upResp(n int) whatsmeow.UploadResponse {
	return whatsmeow.UploadResponse{
		URL: "https://mmg.whatsapp.net/o1/v/t62/A.enc", DirectPath: "/o1/v/t62/A.enc",
		MediaKey: bytes.Repeat([]byte{4}, 32), FileEncSHA256: bytes.Repeat([]byte{5}, 32), FileSHA256: bytes.Repeat([]byte{6}, 32),
		FileLength: uint64(n),
	}
}

func TestSendFile(t *testing.T) {
	up := upResp(5)
	doc := func(name, mime, caption string) *waE2E.DocumentMessage {
		d := &waE2E.DocumentMessage{FileName: proto.String(name), Title: proto.String(name), Mimetype: proto.String(mime),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(5)}
		if caption != "" {
			d.Caption = proto.String(caption)
		}
		return d
	}
	for _, tc := range []struct {
		name     string
		file     channel.File
		wantType whatsmeow.MediaType
		want     *waE2E.Message
	}{
		{"a photo", channel.File{Name: "cat.jpg", MIME: "image/jpeg", Kind: channel.KindImage, Caption: "our cat"}, whatsmeow.MediaImage,
			&waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("our cat"), Mimetype: proto.String("image/jpeg"),
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(5)}}},
		{"a video", channel.File{Name: "a.mp4", MIME: "video/mp4", Kind: channel.KindVideo}, whatsmeow.MediaVideo,
			&waE2E.Message{VideoMessage: &waE2E.VideoMessage{Mimetype: proto.String("video/mp4"),
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(5)}}},
		{"an mp3", channel.File{Name: "song.mp3", MIME: "audio/mpeg", Kind: channel.KindAudio}, whatsmeow.MediaAudio,
			&waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(false), Mimetype: proto.String("audio/mpeg"),
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(5)}}},
		{"a voice note in Ogg, as sniffed", channel.File{Name: "reply.ogg", MIME: "application/ogg", Kind: channel.KindVoice}, whatsmeow.MediaAudio,
			&waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true), Mimetype: proto.String("audio/ogg; codecs=opus"),
				URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
				FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(5)}}},
		{"a PDF", channel.File{Name: "report.pdf", MIME: "application/pdf", Kind: channel.KindDocument}, whatsmeow.MediaDocument,
			&waE2E.Message{DocumentMessage: doc("report.pdf", "application/pdf", "")}},
		{"a PDF with a caption, wrapped as WhatsApp's apps send it", channel.File{Name: "report.pdf", MIME: "application/pdf", Kind: channel.KindDocument, Caption: "Q1"},
			whatsmeow.MediaDocument, &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
				DocumentMessage: doc("report.pdf", "application/pdf", "Q1")}}}},
		{"a GIF image goes as a document", channel.File{Name: "dance.gif", MIME: "image/gif", Kind: channel.KindImage}, whatsmeow.MediaDocument,
			&waE2E.Message{DocumentMessage: doc("dance.gif", "image/gif", "")}},
		{"a WAV goes as a document", channel.File{Name: "a.wav", MIME: "audio/wave", Kind: channel.KindAudio}, whatsmeow.MediaDocument,
			&waE2E.Message{DocumentMessage: doc("a.wav", "audio/wave", "")}},
		{"audio with a caption goes as a document, which has one", channel.File{Name: "memo.mp3", MIME: "audio/mpeg", Kind: channel.KindAudio, Caption: "listen"},
			whatsmeow.MediaDocument, &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
				DocumentMessage: doc("memo.mp3", "audio/mpeg", "listen")}}}},
		{"a sticker goes as a document", channel.File{Name: "s.webp", MIME: "image/webp", Kind: channel.KindSticker}, whatsmeow.MediaDocument,
			&waE2E.Message{DocumentMessage: doc("s.webp", "image/webp", "")}},
		{"a name made one line, a type unknown", channel.File{Name: "a\nb\u202e.txt", Kind: channel.KindDocument}, whatsmeow.MediaDocument,
			&waE2E.Message{DocumentMessage: doc("a b.txt", "application/octet-stream", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, msgs, ups := sending(t)
			tc.file.Data = []byte("12345")
			id, err := c.SendFile(context.Background(), group.String(), tc.file)
			if err != nil || id != "OUT1" {
				t.Fatalf("SendFile = %q, %v", id, err)
			}
			if len(*ups) != 1 || (*ups)[0].kind != tc.wantType || string((*ups)[0].data) != "12345" {
				t.Errorf("uploaded %+v, want the data as %q", *ups, tc.wantType)
			}
			if len(*msgs) != 1 || (*msgs)[0].to != group || !proto.Equal((*msgs)[0].msg, tc.want) {
				t.Errorf("sent %v\nwant %v", *msgs, tc.want)
			}
		})
	}

	c, msgs, ups := sending(t)
	ctx := context.Background()
	if _, err := c.SendFile(ctx, group.String(), channel.File{Name: "empty", Kind: channel.KindDocument}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("SendFile of nothing = %v", err)
	}
	if _, err := c.SendFile(ctx, "local:main", channel.File{Name: "a", Data: []byte("x")}); err == nil {
		t.Error("SendFile to a chat that is not WhatsApp's succeeded")
	}
	c.upload = func(context.Context, []byte, whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
		return whatsmeow.UploadResponse{}, errors.New("upload failed with status 500")
	}
	if _, err := c.SendFile(ctx, group.String(), channel.File{Name: "a.pdf", Data: []byte("x")}); err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("SendFile with a failed upload = %v", err)
	}
	if len(*msgs)+len(*ups) != 0 {
		t.Errorf("sent %d, uploaded %d for refused files", len(*msgs), len(*ups))
	}
}

// A file takes its turn in the chat's send limit like a text (R9).
func TestSendFileKeepsToTheChatLimit(t *testing.T) {
	c, _, _ := sending(t)
	synctest.Test(t, func(t *testing.T) {
		c.limit = channel.NewSendLimit(20, 1)
		start := time.Now()
		var at []time.Duration
		c.send = func(context.Context, types.JID, *waE2E.Message) (whatsmeow.SendResponse, error) {
			at = append(at, time.Since(start))
			return whatsmeow.SendResponse{ID: "X"}, nil
		}
		f := channel.File{Name: "a.jpg", MIME: "image/jpeg", Kind: channel.KindImage, Data: []byte("x")}
		for range 2 {
			if _, err := c.SendFile(context.Background(), bobPN.String(), f); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Send(context.Background(), bobPN.String(), "and a text"); err != nil {
			t.Fatal(err)
		}
		if want := []time.Duration{0, 3 * time.Second, 6 * time.Second}; !slices.Equal(at, want) {
			t.Errorf("sent at %v, want %v", at, want)
		}
	})
}

// groupMessage delivers a message from Bob, addressed by LID as WhatsApp
// does in groups that hide numbers, and returns its id.
func groupMessage(t *testing.T, c *Channel, id string) {
	t.Helper()
	evt := msgEvent(types.MessageInfo{ID: id, MessageSource: types.MessageSource{
		Chat: group, Sender: withDevice(bobLID, 5), SenderAlt: bobPN, IsGroup: true, AddressingMode: types.AddressingModeLID,
	}}, text("@Andy what's for dinner?"))
	if !c.handleEvent(evt) {
		t.Fatal("message not stored")
	}
}

func TestReact(t *testing.T) {
	key := func(chat types.JID, id string, fromMe bool, participant string) *waE2E.Message {
		k := &waCommon.MessageKey{RemoteJID: proto.String(chat.String()), FromMe: proto.Bool(fromMe), ID: proto.String(id)}
		if participant != "" {
			k.Participant = proto.String(participant)
		}
		return &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: k}}
	}
	for _, tc := range []struct {
		name  string
		chat  types.JID
		ref   channel.MessageRef
		emoji string
		want  *waE2E.Message
	}{
		// The key names the sender as the message arrived: by LID.
		{"a message just received in a group", group, channel.MessageRef{ID: "G1", Sender: bobPN.String()}, "👀",
			key(group, "G1", false, "4242@lid")},
		{"an older message in a group: its stored sender", group, channel.MessageRef{ID: "OLD", Sender: bobPN.String()}, "✅",
			key(group, "OLD", false, "4915112345678@s.whatsapp.net")},
		{"the account's own message", group, channel.MessageRef{ID: "MINE", FromMe: true}, "❌",
			key(group, "MINE", true, "")},
		{"in a direct chat: no participant", bobPN, channel.MessageRef{ID: "D1", Sender: bobPN.String()}, "👀",
			key(bobPN, "D1", false, "")},
		{"removing a reaction", group, channel.MessageRef{ID: "G1", Sender: bobPN.String()}, "",
			key(group, "G1", false, "4242@lid")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, msgs, _ := sending(t)
			groupMessage(t, c, "G1")
			if err := c.React(context.Background(), tc.chat.String(), tc.ref, tc.emoji); err != nil {
				t.Fatal(err)
			}
			if len(*msgs) != 1 || (*msgs)[0].to != tc.chat {
				t.Fatalf("sent %v", *msgs)
			}
			got := (*msgs)[0].msg
			if got.GetReactionMessage().GetSenderTimestampMS() == 0 {
				t.Error("reaction without its time")
			}
			tc.want.ReactionMessage.Text = proto.String(tc.emoji)
			got.ReactionMessage.SenderTimestampMS = nil
			if !proto.Equal(got, tc.want) {
				t.Errorf("sent %v\nwant %v", got, tc.want)
			}
		})
	}
	c, msgs, _ := sending(t)
	for _, ref := range []channel.MessageRef{{ID: ""}, {ID: "A B"}, {ID: "X", Sender: "bob"}} {
		if err := c.React(context.Background(), group.String(), ref, "👀"); err == nil {
			t.Errorf("React to %+v succeeded", ref)
		}
	}
	if len(*msgs) != 0 {
		t.Errorf("sent %v for refused reactions", *msgs)
	}
}

func TestSendQuoting(t *testing.T) {
	c, msgs, _ := sending(t)
	groupMessage(t, c, "G1")
	long := strings.Repeat("word ", MaxMessageRunes/5+10)
	q := channel.MessageRef{ID: "G1", Sender: bobPN.String(), Text: "@Andy what's for dinner?\n" + strings.Repeat("x", 400)}
	ids, err := c.SendQuoting(context.Background(), group.String(), long, q)
	if err != nil || !slices.Equal(ids, []string{"OUT1", "OUT2"}) {
		t.Fatalf("SendQuoting = %v, %v", ids, err)
	}
	parts := SplitText(long, MaxMessageRunes)
	want := []*waE2E.Message{
		{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(parts[0]), ContextInfo: &waE2E.ContextInfo{
			StanzaID: proto.String("G1"), Participant: proto.String("4242@lid"),
			QuotedMessage: &waE2E.Message{Conversation: proto.String(clip(q.Text, quotePreviewRunes))},
		}}},
		{Conversation: proto.String(parts[1])}, // only the first part quotes
	}
	if len(*msgs) != 2 {
		t.Fatalf("sent %d messages", len(*msgs))
	}
	for i := range want {
		if (*msgs)[i].to != group || !proto.Equal((*msgs)[i].msg, want[i]) {
			t.Errorf("part %d: sent %v\nwant %v", i+1, (*msgs)[i].msg, want[i])
		}
	}
	if n := utf8.RuneCountInString((*msgs)[0].msg.GetExtendedTextMessage().GetContextInfo().GetQuotedMessage().GetConversation()); n != quotePreviewRunes {
		t.Errorf("quote preview of %d runes, want it capped at %d", n, quotePreviewRunes)
	}

	// Quoting the account's own message in a direct chat, not remembered.
	*msgs = nil
	if _, err := c.SendQuoting(context.Background(), bobPN.String(), "done", channel.MessageRef{ID: "MINE", FromMe: true, Text: "on it"}); err != nil {
		t.Fatal(err)
	}
	wantMine := &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("done"), ContextInfo: &waE2E.ContextInfo{
		StanzaID: proto.String("MINE"), Participant: proto.String(ownPN.String()), QuotedMessage: &waE2E.Message{Conversation: proto.String("on it")},
	}}}
	if len(*msgs) != 1 || !proto.Equal((*msgs)[0].msg, wantMine) {
		t.Errorf("sent %v\nwant %v", *msgs, wantMine)
	}
	*msgs = nil
	if _, err := c.SendQuoting(context.Background(), group.String(), "x", channel.MessageRef{ID: "bad id"}); err == nil || len(*msgs) != 0 {
		t.Errorf("SendQuoting a bad id = %v, sent %d", err, len(*msgs))
	}
}
