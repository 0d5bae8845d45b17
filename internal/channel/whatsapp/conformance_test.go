package whatsapp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
)

// The WhatsApp channel passes the suite every channel passes, against a
// fake at its seams: whatsmeow has no fake server.
func TestConformance(t *testing.T) {
	channeltest.Conformance(t, &service{acked: map[string]bool{}, texts: map[string]string{}, media: map[string][]byte{}})
}

// service fakes WhatsApp where the channel meets whatsmeow:
//
//   - inbound: whatsmeow decrypts a message and calls the channel's event
//     handler (handleEvent) with it, one event after another; the fake
//     does the same on one goroutine of its own, with events built as
//     whatsmeow builds them (a group member by LID, a direct chat by LID
//     with the phone number beside it).
//   - acknowledgement: with SynchronousAck, whatsmeow sends a message's
//     receipt, after which WhatsApp forgets it, only once handleEvent has
//     returned true; so here a message is acknowledged when handleEvent
//     returned true. One it returned false for, WhatsApp delivers again
//     after the next reconnect, and so does the fake.
//   - media: downloads (Channel.download) read what the fake keeps under a
//     message's direct path; uploads (Channel.upload) keep the bytes under
//     a new direct path, which the message that sends them names.
//   - sending and typing: Channel.send and Channel.presence record what
//     WhatsApp would have been sent.
//   - the connection: whatsmeow logs in against WhatsApp's servers, so the
//     client dials a dead end (and retries there in the background, as it
//     does offline), and the fake dispatches the events whatsmeow
//     dispatches: Connected after a login, Disconnected then Connected for
//     a dropped and restored connection, LoggedOut when the phone unlinks
//     the device.
type service struct {
	t        *testing.T // the suite's: events outlive the check that sent them
	c        *Channel
	dispatch chan func() // whatsmeow's event loop
	loop     sync.WaitGroup

	mu      sync.Mutex
	n       int
	acked   map[string]bool
	unacked []*events.Message
	texts   map[string]string // inbound message id → its text, for quotes
	media   map[string][]byte // direct path → the file's bytes
	out     []channeltest.Outbound
	revoked bool
}

var _ channeltest.Explainer = (*service)(nil)

// seamed is the channel with its login done by the fake (see service).
type seamed struct {
	*Channel
	s *service
}

func (c seamed) Connect(ctx context.Context, h channel.Handler) error {
	c.s.event(func() {
		// Connected once Connect waits for the login, as whatsmeow's
		// login takes a round trip.
		for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			c.mu.Lock()
			waiting := c.waiter != nil
			c.mu.Unlock()
			if waiting {
				c.handleEvent(&events.Connected{})
				return
			}
		}
	})
	return c.Channel.Connect(ctx, h)
}

func (s *service) Channel(t *testing.T) channel.Channel {
	s.t = t
	hc, _ := deadEnd(t)
	st := openStore(t, filepath.Join(t.TempDir(), "nanoclaw.db"), nil)
	pairDevice(t, st)
	// A limit the suite's dozen sends stay under: pacing is send_test.go's.
	c, err := New(context.Background(), st.DB(), Options{Logger: quiet, HTTPClient: hc, SendLimit: channel.NewSendLimit(600, 100)})
	if err != nil {
		t.Fatal(err)
	}
	c.send, c.upload, c.presence, c.download = s.send, s.upload, s.presence, s.download
	s.c = c
	s.dispatch = make(chan func(), 100)
	s.loop.Go(func() {
		for f := range s.dispatch {
			f()
		}
	})
	t.Cleanup(func() {
		c.Close()
		close(s.dispatch)
		s.loop.Wait()
	})
	return seamed{c, s}
}

// event has whatsmeow's event loop run f, after the events before it.
func (s *service) event(f func()) { s.dispatch <- f }

// eventWait is event, returning once f has run.
func (s *service) eventWait(f func()) {
	done := make(chan struct{})
	s.event(func() { f(); close(done) })
	<-done
}

// deliver hands a message event to the channel as whatsmeow does, and
// keeps what came of it.
func (s *service) deliver(evt *events.Message) {
	ok := s.c.handleEvent(evt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.acked[evt.Info.ID] = true
	} else {
		s.unacked = append(s.unacked, evt)
	}
}

func (s *service) Supports(f channeltest.Feature) bool { return f != channeltest.RateLimits }

func (s *service) WhyNot(f channeltest.Feature) string {
	if f == channeltest.RateLimits {
		return "WhatsApp gives no wait to honour; the channel paces itself with each chat's send limit (R9), which send_test.go checks"
	}
	return "the suite asked about a feature it has"
}

// Chat: the group has Bob as its other member; the direct chat is Bob's.
func (s *service) Chat(inGroup bool) string {
	if inGroup {
		return group.String()
	}
	return bobPN.String()
}

func (s *service) Inbound(t *testing.T, in channeltest.Inbound) string {
	t.Helper()
	s.mu.Lock()
	s.n++
	id := fmt.Sprintf("3EB0%016X", s.n)
	s.texts[id] = in.Text
	quoted, hasQuoted := s.texts[in.ReplyTo]
	s.mu.Unlock()

	info := types.MessageInfo{ID: id, Timestamp: time.Now().Truncate(time.Second), PushName: "Bob"}
	switch in.Chat {
	case group.String():
		info.MessageSource = types.MessageSource{Chat: group, Sender: withDevice(bobLID, 5), SenderAlt: bobPN,
			IsGroup: true, AddressingMode: types.AddressingModeLID}
	case bobPN.String():
		info.MessageSource = types.MessageSource{Chat: bobLID, Sender: withDevice(bobLID, 5), SenderAlt: bobPN}
	default:
		t.Fatalf("no chat %q on the fake", in.Chat)
	}
	var ci *waE2E.ContextInfo
	if in.ReplyTo != "" {
		if !hasQuoted {
			t.Fatalf("a reply to %s, which the fake never delivered", in.ReplyTo)
		}
		ci = &waE2E.ContextInfo{StanzaID: proto.String(in.ReplyTo), Participant: proto.String(bobLID.String()), QuotedMessage: text(quoted)}
	}
	if in.MentionsSelf {
		if ci == nil {
			ci = &waE2E.ContextInfo{}
		}
		ci.MentionedJID = []string{ownLID.String()}
	}
	var msg *waE2E.Message
	switch {
	case in.Media != nil:
		msg = s.mediaMessage(t, id, in, ci)
	case ci != nil:
		msg = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(in.Text), ContextInfo: ci}}
	default:
		msg = text(in.Text)
	}
	evt := &events.Message{Info: info, Message: msg, RawMessage: msg}
	s.event(func() { s.deliver(evt) })
	return id
}

// mediaMessage is the message WhatsApp delivers for in's medium, which the
// fake keeps for download.
func (s *service) mediaMessage(t *testing.T, id string, in channeltest.Inbound, ci *waE2E.ContextInfo) *waE2E.Message {
	t.Helper()
	m := in.Media
	path := "/v/t62.7118-24/" + id + ".enc"
	s.mu.Lock()
	s.media[path] = m.Data
	s.mu.Unlock()
	key, encHash, hash := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	size, mime, caption := proto.Uint64(uint64(len(m.Data))), proto.String(m.MIME), optional(in.Text)
	switch m.Kind {
	case channel.KindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: caption, Mimetype: mime, FileLength: size,
			DirectPath: &path, MediaKey: key, FileEncSHA256: encHash, FileSHA256: hash, ContextInfo: ci}}
	case channel.KindDocument:
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Caption: caption, Mimetype: mime, FileLength: size,
			FileName: proto.String(m.FileName), DirectPath: &path, MediaKey: key, FileEncSHA256: encHash, FileSHA256: hash, ContextInfo: ci}}
	}
	t.Fatalf("the fake sends no %s", m.Kind)
	return nil
}

func (s *service) download(_ context.Context, m whatsmeow.DownloadableMessage, f whatsmeow.File) error {
	s.mu.Lock()
	data, ok := s.media[m.GetDirectPath()]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("download failed with status code 404")
	}
	_, err := io.Copy(f, bytes.NewReader(data)) // as whatsmeow writes, 32 KiB at a time
	return err
}

func (s *service) upload(_ context.Context, data []byte, _ whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked {
		return whatsmeow.UploadResponse{}, whatsmeow.ErrNotConnected
	}
	s.n++
	path := fmt.Sprintf("/o1/v/t62.7119-24/up%d.enc", s.n)
	s.media[path] = slices.Clone(data)
	return whatsmeow.UploadResponse{URL: "https://mmg.whatsapp.net" + path, DirectPath: path,
		MediaKey: bytes.Repeat([]byte{4}, 32), FileEncSHA256: bytes.Repeat([]byte{5}, 32), FileSHA256: bytes.Repeat([]byte{6}, 32),
		FileLength: uint64(len(data))}, nil
}

// send records what a message sent to chat to shows in it.
func (s *service) send(_ context.Context, to types.JID, msg *waE2E.Message) (whatsmeow.SendResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked {
		return whatsmeow.SendResponse{}, whatsmeow.ErrNotConnected
	}
	o := channeltest.Outbound{Chat: to.String()}
	if inner := msg.GetDocumentWithCaptionMessage().GetMessage(); inner != nil {
		msg = inner
	}
	file := func(kind channel.MediaKind, m whatsmeow.DownloadableMessage, mime, name, caption string) {
		o.Kind, o.Text = channeltest.OutFile, caption
		o.File = &channel.File{Kind: kind, MIME: mime, Name: name, Data: s.media[m.GetDirectPath()]}
	}
	switch {
	case msg.Conversation != nil:
		o.Kind, o.Text = channeltest.OutText, msg.GetConversation()
	case msg.ExtendedTextMessage != nil:
		e := msg.GetExtendedTextMessage()
		o.Kind, o.Text, o.ReplyTo = channeltest.OutText, e.GetText(), e.GetContextInfo().GetStanzaID()
	case msg.ReactionMessage != nil:
		r := msg.GetReactionMessage()
		o.Kind, o.Target, o.Emoji = channeltest.OutReaction, r.GetKey().GetID(), r.GetText()
	case msg.ImageMessage != nil:
		m := msg.GetImageMessage()
		file(channel.KindImage, m, m.GetMimetype(), "", m.GetCaption())
	case msg.VideoMessage != nil:
		m := msg.GetVideoMessage()
		file(channel.KindVideo, m, m.GetMimetype(), "", m.GetCaption())
	case msg.AudioMessage != nil:
		m := msg.GetAudioMessage()
		kind := channel.KindAudio
		if m.GetPTT() {
			kind = channel.KindVoice
		}
		file(kind, m, m.GetMimetype(), "", "")
	case msg.DocumentMessage != nil:
		m := msg.GetDocumentMessage()
		file(channel.KindDocument, m, m.GetMimetype(), m.GetFileName(), m.GetCaption())
	default:
		s.t.Errorf("the channel sent a message the fake does not know: %v", msg)
		return whatsmeow.SendResponse{}, fmt.Errorf("unknown message")
	}
	s.out = append(s.out, o)
	return whatsmeow.SendResponse{ID: fmt.Sprintf("3EB0%016X", 1<<40+len(s.out)), Timestamp: time.Now()}, nil
}

func (s *service) presence(_ context.Context, to types.JID, state types.ChatPresence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked {
		return whatsmeow.ErrNotConnected
	}
	s.out = append(s.out, channeltest.Outbound{Kind: channeltest.OutTyping, Chat: to.String(), Typing: state == types.ChatPresenceComposing})
	return nil
}

func (s *service) Acked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id]
}

func (s *service) Outbound() []channeltest.Outbound {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.out)
}

func (s *service) RateLimit(int, time.Duration) { panic("WhatsApp has no flood answer to fake") }

// Drop: the connection drops and whatsmeow reconnects by itself; WhatsApp
// then delivers again what was not acknowledged.
func (s *service) Drop() {
	s.eventWait(func() {
		s.c.handleEvent(&events.Disconnected{})
		s.c.handleEvent(&events.Connected{})
		s.mu.Lock()
		again := s.unacked
		s.unacked = nil
		s.mu.Unlock()
		for _, evt := range again {
			s.deliver(evt)
		}
	})
}

// Revoke: the phone unlinks the device; WhatsApp closes the connection
// with a logout, which whatsmeow dispatches, and answers nothing more.
func (s *service) Revoke() {
	s.mu.Lock()
	s.revoked = true
	s.mu.Unlock()
	s.eventWait(func() {
		s.c.handleEvent(&events.LoggedOut{Reason: events.ConnectFailureLoggedOut})
	})
}

func (s *service) MaxText() int { return MaxMessageRunes }
