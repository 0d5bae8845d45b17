package channeltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// patience bounds every wait of the suite: long, because the machines the
// suite runs on are shared and slow at times; a passing adapter is never
// waited on for long.
const patience = 20 * time.Second

// ackWindow is how long the suite watches a message whose handler has not
// returned, to catch an adapter that acknowledges it anyway (an ack sent
// on its own goroutine, an update offset committed by the next poll). It
// shows an absence across a real fake server, so it cannot be fake time;
// a passing adapter passes whatever its length.
const ackWindow = 500 * time.Millisecond

// floodWait is the wait the suite's flood answer asks for (RateLimit).
const floodWait = time.Second

// Explainer is a Service that says why it lacks a feature; the suite puts
// the reason in the message of the check it skips.
type Explainer interface {
	// WhyNot says why the service lacks f, in a sentence.
	WhyNot(f Feature) string
}

// Conformance runs the checks every channel adapter passes, as subtests,
// against an adapter's channel on the fake service s: connect; receive
// text, media, replies and mentions; store before acknowledging; send text,
// long text split, files; typing; reactions; quotes; waiting out a flood
// answer; reconnecting without loss or duplicates; revoked credentials
// reported with what to do. A check of a feature s lacks is skipped,
// saying so.
//
// It makes one channel (s.Channel), connects it to a handler of its own
// and runs the checks in order on it; revocation, which ends the channel's
// use, comes last, then Close. The context given to Connect ends with the
// connect check: it bounds the connecting only, and the connection lives
// until Close (the daemon's WhatsApp connection works the same way).
//
// Every wait has a deadline of 20 s and polls, so a slow machine slows the
// suite down but does not fail it; the one absence shown by watching is
// the acknowledgement of a message being stored (half a second).
func Conformance(t *testing.T, s Service) {
	x := &suite{s: s, ch: s.Channel(t), h: newHandler()}
	t.Cleanup(func() {
		x.h.end() // a held handler returns, so that Close need not wait for it
		x.ch.Close()
	})
	if !t.Run("connect", x.connect) {
		t.Fatal("the channel did not connect: the other checks need a connected channel")
	}
	t.Run("receive text", x.receiveText)
	t.Run("receive media", x.receiveMedia)
	t.Run("receive reply", x.receiveReply)
	t.Run("receive mention", x.receiveMention)
	t.Run("store before ack", x.storeBeforeAck)
	t.Run("send text", x.sendText)
	t.Run("split long text", x.splitLongText)
	t.Run("send file", x.sendFile)
	t.Run("typing", x.typing)
	t.Run("reaction", x.reaction)
	t.Run("quote", x.quote)
	t.Run("rate limit", x.rateLimit)
	t.Run("reconnect", x.reconnect)
	t.Run("revoked", x.revoked)
	t.Run("close", x.close)
}

// suite is one run of Conformance.
type suite struct {
	s  Service
	ch channel.Channel
	h  *handler
}

// need skips the check unless the service has feature f.
func (x *suite) need(t *testing.T, f Feature) {
	t.Helper()
	if x.s.Supports(f) {
		return
	}
	why := fmt.Sprintf("the service has no %s", f)
	if e, ok := x.s.(Explainer); ok {
		why += ": " + e.WhyNot(f)
	}
	t.Skip(why)
}

// callCtx is a context for one call of the adapter's, ended with the check.
func callCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), patience)
	t.Cleanup(cancel)
	return c
}

// eventually waits until cond holds, or fails the check saying what did
// not happen.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receive has another member send in and returns the id and the message
// as the handler got it.
func (x *suite) receive(t *testing.T, in Inbound) (string, received) {
	t.Helper()
	id := x.s.Inbound(t, in)
	return id, x.h.await(t, id)
}

// since is what the service received from the adapter after mark entries.
func (x *suite) since(mark int) []Outbound {
	out := x.s.Outbound()
	if mark > len(out) {
		return nil
	}
	return out[mark:]
}

// awaitOut waits for an Outbound after mark that matches, and returns the
// first.
func (x *suite) awaitOut(t *testing.T, mark int, what string, match func(Outbound) bool) Outbound {
	t.Helper()
	var found Outbound
	eventually(t, what+" reached the service", func() bool {
		out := x.since(mark)
		i := slices.IndexFunc(out, match)
		if i >= 0 {
			found = out[i]
		}
		return i >= 0
	})
	return found
}

// texts are the texts sent to chat after mark.
func (x *suite) texts(mark int, chat string) []Outbound {
	var out []Outbound
	for _, o := range x.since(mark) {
		if o.Kind == OutText && o.Chat == chat {
			out = append(out, o)
		}
	}
	return out
}

// chats are the chats of the service, the group first; a kind the service
// lacks is left out.
func (x *suite) chats() []string {
	var out []string
	for _, group := range []bool{true, false} {
		if c := x.s.Chat(group); c != "" {
			out = append(out, c)
		}
	}
	return out
}

func (x *suite) connect(t *testing.T) {
	if err := x.ch.Connect(callCtx(t), x.h); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if x.ch.Name() == "" {
		t.Error("Name is empty")
	}
	if x.s.Chat(true) == "" {
		t.Error("the service has no group chat to run the suite in")
	}
	for _, c := range x.chats() {
		if !x.ch.Owns(c) {
			t.Errorf("Owns(%q) = false for the service's own chat", c)
		}
	}
	if x.ch.Owns("") {
		t.Error(`Owns("") = true`)
	}
	if self := x.ch.Self(); self != "" && !x.ch.Owns(self) {
		t.Errorf("Self = %q, a chat the channel does not own", self)
	}
}

func (x *suite) receiveText(t *testing.T) {
	for _, chat := range x.chats() {
		group := chat == x.s.Chat(true)
		text := fmt.Sprintf("hello from another member of %s", chat)
		id, got := x.receive(t, Inbound{Chat: chat, Text: text})
		m := got.msg
		if m.ChatJID != chat || m.Text != text || m.IsGroup != group {
			t.Errorf("message arrived as chat %q, text %q, group %v; want %q, %q, %v", m.ChatJID, m.Text, m.IsGroup, chat, text, group)
		}
		if m.Sender == "" || m.SenderName == "" || m.Timestamp.IsZero() {
			t.Errorf("message %s lacks its sender (%q, %q) or time (%v)", id, m.Sender, m.SenderName, m.Timestamp)
		}
		if m.ReplyTo != "" || m.MentionsSelf || len(m.Attachments) != 0 {
			t.Errorf("a plain text arrived with reply to %q, mention %v, %d attachments", m.ReplyTo, m.MentionsSelf, len(m.Attachments))
		}
	}
}

func (x *suite) receiveMedia(t *testing.T) {
	x.need(t, Media)
	chat := x.s.Chat(true)
	img, pdf := photo(), pdfDoc()

	_, got := x.receive(t, Inbound{Chat: chat, Text: "our cat", Media: &InMedia{Kind: channel.KindImage, MIME: "image/jpeg", Data: img}})
	x.checkMedia(t, got, "our cat", channel.KindImage, "image/jpeg", "", img)

	_, got = x.receive(t, Inbound{Chat: chat, Media: &InMedia{Kind: channel.KindDocument, MIME: "application/pdf", Data: pdf, FileName: "report.pdf"}})
	x.checkMedia(t, got, "", channel.KindDocument, "application/pdf", "report.pdf", pdf)

	// Over the host's limit: Fetch refuses, and the message still arrives.
	const caption = "a photo over the media limit"
	max := int64(len(img)) - 1
	x.h.limit(caption, max)
	_, got = x.receive(t, Inbound{Chat: chat, Text: caption, Media: &InMedia{Kind: channel.KindImage, MIME: "image/jpeg", Data: img}})
	if got.msg.Text != caption || len(got.fetched) != 1 {
		t.Fatalf("oversized photo arrived as text %q with %d attachments", got.msg.Text, len(got.fetched))
	}
	if f := got.fetched[0]; !errors.Is(f.err, channel.ErrTooLarge) || int64(len(f.data)) > max {
		t.Errorf("Fetch of %d bytes with a limit of %d = %v after writing %d bytes; want channel.ErrTooLarge, at most the limit written",
			len(img), max, f.err, len(f.data))
	}
}

// checkMedia checks a message with one attachment, fetched.
func (x *suite) checkMedia(t *testing.T, got received, text string, kind channel.MediaKind, mime, name string, data []byte) {
	t.Helper()
	m := got.msg
	if m.Text != text || len(m.Attachments) != 1 {
		t.Fatalf("%s arrived with text %q and %d attachments; want %q and one", kind, m.Text, len(m.Attachments), text)
	}
	a, f := m.Attachments[0], got.fetched[0]
	if a.Kind != kind || a.MIME != mime || (name != "" && a.FileName != name) {
		t.Errorf("%s arrived as kind %q, type %q, name %q; want %q, %q, %q", kind, a.Kind, a.MIME, a.FileName, kind, mime, name)
	}
	if a.Size != 0 && a.Size != int64(len(data)) {
		t.Errorf("%s claims %d bytes; it has %d", kind, a.Size, len(data))
	}
	if f.err != nil || !bytes.Equal(f.data, data) {
		t.Errorf("Fetch of the %s = %d bytes, %v; want the %d bytes sent", kind, len(f.data), f.err, len(data))
	}
}

func (x *suite) receiveReply(t *testing.T) {
	x.need(t, Replies)
	chat := x.s.Chat(true)
	first, got := x.receive(t, Inbound{Chat: chat, Text: "pizza tonight"})
	if got.msg.ReplyTo != "" {
		t.Errorf("a message that replies to nothing has ReplyTo %q", got.msg.ReplyTo)
	}
	_, got = x.receive(t, Inbound{Chat: chat, Text: "sounds good", ReplyTo: first})
	if got.msg.ReplyTo != first || got.msg.Text != "sounds good" {
		t.Errorf("reply arrived with ReplyTo %q, text %q; want %q, %q", got.msg.ReplyTo, got.msg.Text, first, "sounds good")
	}
}

func (x *suite) receiveMention(t *testing.T) {
	x.need(t, Mentions)
	chat := x.s.Chat(true)
	_, got := x.receive(t, Inbound{Chat: chat, Text: "what do you think", MentionsSelf: true})
	if !got.msg.MentionsSelf {
		t.Error("a message that mentions the account arrived with MentionsSelf false")
	}
	_, got = x.receive(t, Inbound{Chat: chat, Text: "not you this time"})
	if got.msg.MentionsSelf {
		t.Error("a message that mentions nobody arrived with MentionsSelf true")
	}
}

// Durable before acknowledged: while the handler stores a message, the
// service must not learn it was delivered; once stored, it must.
func (x *suite) storeBeforeAck(t *testing.T) {
	x.need(t, Acks)
	const text = "keep this one until it is stored"
	g := x.h.hold(text)
	defer g.open()
	id := x.s.Inbound(t, Inbound{Chat: x.s.Chat(true), Text: text})
	select {
	case <-g.entered:
	case <-time.After(patience):
		t.Fatalf("the handler was not called within %s", patience)
	}
	for end := time.Now().Add(ackWindow); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if x.s.Acked(id) {
			t.Fatal("the service counts the message as delivered while the handler is still storing it")
		}
	}
	g.open()
	eventually(t, "the service counts the stored message as delivered", func() bool { return x.s.Acked(id) })
}

func (x *suite) sendText(t *testing.T) {
	for _, chat := range x.chats() {
		text := "hello from the assistant to " + chat
		mark := len(x.s.Outbound())
		ids, err := x.ch.Send(callCtx(t), chat, text)
		if err != nil {
			t.Fatalf("Send to %s: %v", chat, err)
		}
		if len(ids) != 1 || ids[0] == "" {
			t.Errorf("Send of a short text returned ids %q, want one", ids)
		}
		x.awaitOut(t, mark, "the text", func(o Outbound) bool { return o.Kind == OutText && o.Chat == chat && o.Text == text })
	}
}

func (x *suite) splitLongText(t *testing.T) {
	chat, max := x.s.Chat(true), x.s.MaxText()
	text := longText(max * 5 / 2)
	if max <= 0 {
		text = longText(100_000)
	}
	mark := len(x.s.Outbound())
	ids, err := x.ch.Send(callCtx(t), chat, text)
	if err != nil {
		t.Fatalf("Send of %d characters: %v", len(text), err)
	}
	eventually(t, fmt.Sprintf("the %d messages Send returned", len(ids)), func() bool { return len(x.texts(mark, chat)) >= len(ids) })
	parts := x.texts(mark, chat)
	if len(parts) != len(ids) || slices.Contains(ids, "") {
		t.Errorf("Send returned ids %q for %d messages", ids, len(parts))
	}
	if max <= 0 {
		if len(parts) != 1 || parts[0].Text != text {
			t.Errorf("a service without a limit got %d messages for one long text, want it whole in one", len(parts))
		}
		return
	}
	if len(parts) < 3 {
		t.Errorf("%d characters went as %d messages; with a limit of %d, want at least 3", len(text), len(parts), max)
	}
	var all []string
	for i, p := range parts {
		if n := utf8.RuneCountInString(p.Text); n > max {
			t.Errorf("part %d has %d characters, over the limit of %d", i+1, n, max)
		}
		all = append(all, strings.Fields(p.Text)...)
	}
	if want := strings.Fields(text); !slices.Equal(all, want) {
		t.Errorf("the parts hold %d words, the text %d: something was lost, doubled or reordered", len(all), len(want))
	}
}

func (x *suite) sendFile(t *testing.T) {
	x.need(t, Media)
	fs, ok := x.ch.(channel.FileSender)
	if !ok {
		t.Fatal("the service has media, but the channel is no channel.FileSender")
	}
	chat := x.s.Chat(true)
	for _, f := range []channel.File{
		{Name: "cat.jpg", MIME: "image/jpeg", Kind: channel.KindImage, Data: photo(), Caption: "our cat"},
		{Name: "report.pdf", MIME: "application/pdf", Kind: channel.KindDocument, Data: pdfDoc()},
	} {
		mark := len(x.s.Outbound())
		id, err := fs.SendFile(callCtx(t), chat, f)
		if err != nil {
			t.Fatalf("SendFile of %s: %v", f.Name, err)
		}
		if id == "" {
			t.Errorf("SendFile of %s returned no id", f.Name)
		}
		o := x.awaitOut(t, mark, f.Name, func(o Outbound) bool { return o.Kind == OutFile && o.Chat == chat })
		if o.File == nil {
			t.Fatalf("the service reports a file without it")
		}
		if o.File.Kind != f.Kind || o.Text != f.Caption || !bytes.Equal(o.File.Data, f.Data) {
			t.Errorf("%s arrived as a %s of %d bytes with caption %q; want a %s of %d bytes with %q",
				f.Name, o.File.Kind, len(o.File.Data), o.Text, f.Kind, len(f.Data), f.Caption)
		}
		if f.Kind == channel.KindDocument && o.File.Name != f.Name {
			t.Errorf("document %q arrived named %q", f.Name, o.File.Name)
		}
	}
}

func (x *suite) typing(t *testing.T) {
	x.need(t, Typing)
	chat := x.s.Chat(true)
	mark := len(x.s.Outbound())
	shown := func(want bool) func() bool {
		return func() bool {
			seen, last := false, false
			for _, o := range x.since(mark) {
				if o.Kind == OutTyping && o.Chat == chat {
					seen, last = true, o.Typing
				}
			}
			return seen && last == want
		}
	}
	if err := x.ch.SetTyping(callCtx(t), chat, true); err != nil {
		t.Fatalf("SetTyping(true): %v", err)
	}
	eventually(t, "typing shown", shown(true))
	if err := x.ch.SetTyping(callCtx(t), chat, false); err != nil {
		t.Fatalf("SetTyping(false): %v", err)
	}
	eventually(t, "typing cleared", shown(false))
}

func (x *suite) reaction(t *testing.T) {
	x.need(t, Reactions)
	r, ok := x.ch.(channel.Reactor)
	if !ok {
		t.Fatal("the service has reactions, but the channel is no channel.Reactor")
	}
	chat := x.s.Chat(true)
	id, got := x.receive(t, Inbound{Chat: chat, Text: "react to this"})
	ref := channel.MessageRef{ID: id, Sender: got.msg.Sender, Text: got.msg.Text}
	for _, emoji := range []string{"👀", ""} {
		mark := len(x.s.Outbound())
		if err := r.React(callCtx(t), chat, ref, emoji); err != nil {
			t.Fatalf("React %q: %v", emoji, err)
		}
		x.awaitOut(t, mark, fmt.Sprintf("reaction %q on %s", emoji, id), func(o Outbound) bool {
			return o.Kind == OutReaction && o.Chat == chat && o.Target == id && o.Emoji == emoji
		})
	}
}

func (x *suite) quote(t *testing.T) {
	x.need(t, Replies)
	q, ok := x.ch.(channel.Quoter)
	if !ok {
		t.Fatal("the service has replies, but the channel is no channel.Quoter")
	}
	chat := x.s.Chat(true)
	id, got := x.receive(t, Inbound{Chat: chat, Text: "can you answer this"})
	const text = "here is my answer"
	mark := len(x.s.Outbound())
	ids, err := q.SendQuoting(callCtx(t), chat, text, channel.MessageRef{ID: id, Sender: got.msg.Sender, Text: got.msg.Text})
	if err != nil {
		t.Fatalf("SendQuoting: %v", err)
	}
	if len(ids) != 1 || ids[0] == "" {
		t.Errorf("SendQuoting returned ids %q, want one", ids)
	}
	o := x.awaitOut(t, mark, "the quoting text", func(o Outbound) bool { return o.Kind == OutText && o.Chat == chat && o.Text == text })
	if o.ReplyTo != id {
		t.Errorf("the text quotes %q, want %q", o.ReplyTo, id)
	}
}

// A flood answer is waited out: the send arrives once, and not before the
// service's wait has passed.
func (x *suite) rateLimit(t *testing.T) {
	x.need(t, RateLimits)
	chat := x.s.Chat(true)
	const text, after = "sent after waiting out the flood answer", "and one more"
	mark := len(x.s.Outbound())
	x.s.RateLimit(1, floodWait)
	start := time.Now()
	ids, err := x.ch.Send(callCtx(t), chat, text)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Send after a flood answer: %v; want it waited out and sent", err)
	}
	if len(ids) != 1 {
		t.Errorf("Send returned ids %q, want one", ids)
	}
	if took < floodWait {
		t.Errorf("Send returned after %s: the service asked for %s", took, floodWait)
	}
	if _, err := x.ch.Send(callCtx(t), chat, after); err != nil {
		t.Fatalf("Send after the wait: %v", err)
	}
	x.awaitOut(t, mark, "the text after it", func(o Outbound) bool { return o.Kind == OutText && o.Chat == chat && o.Text == after })
	n := 0
	for _, o := range x.texts(mark, chat) {
		if o.Text == text {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the text refused once reached the service %d times, want once", n)
	}
}

// After a dropped connection the adapter comes back by itself: what was
// sent meanwhile and after arrives once each, nothing from before arrives
// again, and sending works.
func (x *suite) reconnect(t *testing.T) {
	x.need(t, Reconnect)
	chat := x.s.Chat(true)
	before := x.h.delivered()
	mark := len(before)
	x.s.Drop()
	var ids []string
	for i := range 3 {
		ids = append(ids, x.s.Inbound(t, Inbound{Chat: chat, Text: fmt.Sprintf("sent after the drop, number %d", i+1)}))
	}
	for _, id := range ids {
		x.h.await(t, id)
	}
	// The services deliver in order: a redelivery or a duplicate would come
	// before this last message.
	last, _ := x.receive(t, Inbound{Chat: chat, Text: "the last one"})
	ids = append(ids, last)
	earlier := map[string]bool{}
	for _, m := range before {
		earlier[m.msg.ID] = true
	}
	count := map[string]int{}
	for _, m := range x.h.delivered()[mark:] {
		count[m.msg.ID]++
		if earlier[m.msg.ID] {
			t.Errorf("message %s (%q), delivered before the drop, was delivered again", m.msg.ID, m.msg.Text)
		}
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("message %s was delivered %d times, want once", id, count[id])
		}
	}
	const text = "back after the drop"
	mark = len(x.s.Outbound())
	if _, err := x.ch.Send(callCtx(t), chat, text); err != nil {
		t.Fatalf("Send after the drop: %v", err)
	}
	x.awaitOut(t, mark, "a text after the drop", func(o Outbound) bool { return o.Kind == OutText && o.Chat == chat && o.Text == text })
}

// Revoked credentials are reported with what to do: pair again.
func (x *suite) revoked(t *testing.T) {
	x.need(t, Revocation)
	chat := x.s.Chat(true)
	x.s.Revoke()
	_, err := x.ch.Send(callCtx(t), chat, "is anyone there")
	if err == nil {
		t.Fatal("Send succeeded with revoked credentials")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "pair") {
		t.Errorf("Send with revoked credentials = %q: the error does not tell the user to pair again", err)
	}
}

func (x *suite) close(t *testing.T) {
	done := make(chan error, 1)
	go func() { done <- x.ch.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(patience):
		t.Fatalf("Close did not return within %s", patience)
	}
	if _, err := x.ch.Send(callCtx(t), x.s.Chat(true), "after close"); err == nil {
		t.Error("Send after Close succeeded")
	}
}

// handler is the suite's channel.Handler: it fetches each attachment as the
// host does (bounded, inside OnMessage), can hold a message in OnMessage
// until released, and records every delivery, duplicates included. Like
// the store, it stores a chat's message id once: a redelivery gets Seq 0.
type handler struct {
	done chan struct{} // closed when the suite ends: nothing is held after

	mu     sync.Mutex
	got    []received // every delivery, in order
	seen   map[string]bool
	seq    int64
	gates  map[string]*gate // by message text
	limits map[string]int64 // the fetch limit by message text
}

// received is one delivery to the handler, with what Fetch gave for each
// attachment.
type received struct {
	msg     channel.Message
	fetched []fetched
}

type fetched struct {
	data []byte
	err  error
}

// gate holds a message in OnMessage: entered is closed when it arrives,
// and it is stored once open is called.
type gate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// defaultFetchMax is the media limit of the suite's handler.
const defaultFetchMax = 16 << 20

func newHandler() *handler {
	return &handler{done: make(chan struct{}), seen: map[string]bool{}, gates: map[string]*gate{}, limits: map[string]int64{}}
}

func (h *handler) end() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
	default:
		close(h.done)
	}
}

// hold makes the next message with this text wait in OnMessage.
func (h *handler) hold(text string) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gates[text] = g
	return g
}

// limit sets the media limit of messages with this text.
func (h *handler) limit(text string, max int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.limits[text] = max
}

func (h *handler) OnMessage(ctx context.Context, _ channel.Channel, m channel.Message) (channel.Stored, error) {
	h.mu.Lock()
	g := h.gates[m.Text]
	delete(h.gates, m.Text)
	max, ok := h.limits[m.Text]
	h.mu.Unlock()
	if !ok {
		max = defaultFetchMax
	}
	var fs []fetched
	for _, a := range m.Attachments {
		var buf bytes.Buffer
		err := errors.New("the attachment has no Fetch")
		if a.Fetch != nil {
			err = a.Fetch(ctx, &buf, max)
		}
		fs = append(fs, fetched{buf.Bytes(), err})
	}
	if g != nil {
		close(g.entered)
		select {
		case <-g.release:
		case <-h.done:
			return channel.Stored{}, errors.New("the suite ended before the message was stored")
		case <-ctx.Done():
			return channel.Stored{}, ctx.Err()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, received{msg: m, fetched: fs})
	key := m.ChatJID + "\x00" + m.ID
	if h.seen[key] {
		return channel.Stored{}, nil
	}
	h.seen[key] = true
	h.seq++
	return channel.Stored{Seq: h.seq}, nil
}

func (h *handler) OnChat(context.Context, channel.Channel, channel.ChatInfo) {}

// delivered is every delivery so far.
func (h *handler) delivered() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// await waits for the message with id and returns its first delivery.
func (h *handler) await(t *testing.T, id string) received {
	t.Helper()
	var got received
	eventually(t, fmt.Sprintf("message %s reached the handler", id), func() bool {
		for _, r := range h.delivered() {
			if r.msg.ID == id {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// photo is a small JPEG photo, as a chat app sends one.
func photo() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 32, 24))
	for y := range 24 {
		for x := range 32 {
			img.Set(x, y, color.RGBA{uint8(x * 8), uint8(y * 10), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		panic(err) // a memory buffer does not fail
	}
	return b.Bytes()
}

// pdfDoc is a small PDF document.
func pdfDoc() []byte {
	return []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" +
		"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
}

// longText is a text of n characters or a few more: numbered words of
// letters and digits only, so no service's formatting changes them. A few
// short paragraphs come first, then one longer than any limit: a splitter
// must cut it between words, close to the limit, where a part one word too
// long shows.
func longText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		switch {
		case i == 0:
		case i < 60 && i%20 == 0:
			b.WriteString("\n\n")
		default:
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "word%05d", i)
	}
	return b.String()
}
