package telegram

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
	"github.com/nanoclaw/nanoclaw/internal/channel/telegram/faketelegram"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// The people of the tests: the owner paired the bot; the stranger did not.
var (
	owner    = faketelegram.User{ID: 4242, FirstName: "Olive", LastName: "Owner"}
	stranger = faketelegram.User{ID: 777, FirstName: "Sam", Username: "sam"}
	family   = faketelegram.Chat{ID: -1001234, Type: "supergroup", Title: "Family"}
)

// env is a fake Bot API, a store with the bot paired to owner, and a
// channel on them.
type env struct {
	fake *faketelegram.Server
	st   *store.Store
	ch   *Channel
	h    *channeltest.Handler
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newEnv makes the env, the channel not connected.
func newEnv(t *testing.T) *env {
	t.Helper()
	fake := faketelegram.New(faketelegram.Options{})
	t.Cleanup(fake.Close)
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir()+"/db", store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.PutTelegramSession(ctx, store.TelegramSession{Token: fake.Token(), BotID: fake.BotID(),
		Username: fake.Username(), OwnerChat: owner.ID}); err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, st: st, ch: newChannel(t, st, fake), h: &channeltest.Handler{}}
}

func newChannel(t *testing.T, st *store.Store, fake *faketelegram.Server) *Channel {
	t.Helper()
	ch, err := New(context.Background(), st, Options{Logger: quiet(), ServerURL: fake.URL(), SendLimit: channel.NewSendLimit(6000, 100)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// connected makes the env and connects its channel.
func connected(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if err := e.ch.Connect(ctxFor(t, 10*time.Second), e.h); err != nil {
		t.Fatal(err)
	}
	return e
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitMessages waits until the handler stored n messages.
func (e *env) waitMessages(t *testing.T, n int) []channel.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.h.Messages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages stored, want %d: %+v", len(e.h.Messages()), n, e.h.Messages())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e.h.Messages()
}

func (e *env) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := e.fake.Wait(ctxFor(t, 10*time.Second), what, cond); err != nil {
		t.Fatal(err)
	}
}

func TestInbound(t *testing.T) {
	e := connected(t)
	first := e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "hello"})
	e.fake.Post(faketelegram.In{Chat: faketelegram.Private(stranger), From: stranger, Text: "who are you?"})
	e.fake.Post(faketelegram.In{Chat: family, From: stranger, Text: "what's for dinner", MentionBot: true})
	e.fake.Post(faketelegram.In{Chat: family, From: owner, Text: "pasta", ReplyTo: 3}) // to the mention
	e.fake.PostRaw(map[string]any{"edited_message": map[string]any{"message_id": 1, "date": 1, "chat": map[string]any{"id": owner.ID, "type": "private"}, "text": "edited"}})
	e.fake.PostRaw(map[string]any{"message": map[string]any{"message_id": 9, "date": 1, "chat": map[string]any{"id": -100999, "type": "channel", "title": "News"}, "text": "a channel post"}})
	e.fake.PostRaw(map[string]any{"message": map[string]any{"message_id": 5, "date": 1, "chat": map[string]any{"id": family.ID, "type": "supergroup", "title": "Family"},
		"from": map[string]any{"id": stranger.ID, "first_name": "Sam"}, "new_chat_title": "Family!"}})
	last := e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "bye"})
	msgs := e.waitMessages(t, 5)

	want := []channel.Message{
		{ChatJID: "tg:4242", ID: "1", Sender: "tg:4242", SenderName: "Olive Owner", Text: "hello", FromMe: true},
		{ChatJID: "tg:777", ID: "2", Sender: "tg:777", SenderName: "Sam", Text: "who are you?"},
		{ChatJID: "tg:-1001234", ID: "3", Sender: "tg:777", SenderName: "Sam", Text: "@nanoclaw_test_bot what's for dinner", IsGroup: true, MentionsSelf: true},
		{ChatJID: "tg:-1001234", ID: "4", Sender: "tg:4242", SenderName: "Olive Owner", Text: "pasta", IsGroup: true, FromMe: true, ReplyTo: "3"},
		{ChatJID: "tg:4242", ID: "5", Sender: "tg:4242", SenderName: "Olive Owner", Text: "bye", FromMe: true},
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d: %+v", len(msgs), len(want), msgs)
	}
	for i, m := range msgs {
		if m.Timestamp.IsZero() {
			t.Errorf("message %d has no time", i)
		}
		m.Timestamp = time.Time{}
		if m.ChatJID != want[i].ChatJID || m.ID != want[i].ID || m.Sender != want[i].Sender || m.SenderName != want[i].SenderName ||
			m.Text != want[i].Text || m.FromMe != want[i].FromMe || m.IsGroup != want[i].IsGroup ||
			m.MentionsSelf != want[i].MentionsSelf || m.ReplyTo != want[i].ReplyTo || len(m.Attachments) != 0 {
			t.Errorf("message %d = %+v\nwant %+v", i, m, want[i])
		}
	}
	e.wait(t, "every update acknowledged", func() bool { return e.fake.Acked(last.UpdateID) })
	if !e.fake.Acked(first.UpdateID) || e.fake.Pending() != 0 {
		t.Errorf("updates left unacknowledged: %d", e.fake.Pending())
	}
	chats, _ := e.ch.Chats(context.Background())
	names := map[string]string{}
	for _, c := range chats {
		names[c.JID] = c.Name
	}
	if names["tg:-1001234"] != "Family" || names["tg:4242"] != "Olive Owner" || names["tg:-100999"] != "" {
		t.Errorf("chats = %+v", chats)
	}
	if got := e.h.Chats(); len(got) < 3 {
		t.Errorf("OnChat announced %+v, want the three chats", got)
	}
	if e.ch.Self() != "tg:4242" {
		t.Errorf("Self = %q, want the owner's private chat", e.ch.Self())
	}
}

// blocking is a handler whose OnMessage waits for release; entered says
// it was called.
type blocking struct {
	channeltest.Handler
	entered chan string
	release chan struct{}
}

func (b *blocking) OnMessage(ctx context.Context, ch channel.Channel, m channel.Message) (channel.Stored, error) {
	b.entered <- m.Text
	<-b.release
	return b.Handler.OnMessage(ctx, ch, m)
}

// The offset moves past a message only after OnMessage returned, and the
// store keeps it.
func TestOffsetAfterStored(t *testing.T) {
	e := newEnv(t)
	h := &blocking{entered: make(chan string, 10), release: make(chan struct{})}
	if err := e.ch.Connect(ctxFor(t, 10*time.Second), h); err != nil {
		t.Fatal(err)
	}
	one := e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "one"})
	two := e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "two"})
	if got := <-h.entered; got != "one" {
		t.Fatalf("first handled %q", got)
	}
	time.Sleep(200 * time.Millisecond) // time for a wrong poll to go out
	if e.fake.Acked(one.UpdateID) {
		t.Fatal("update acknowledged while its message was being stored")
	}
	for _, c := range e.fake.Calls() {
		if c.Method == "getUpdates" && c.Offset > one.UpdateID {
			t.Fatalf("getUpdates asked for offset %d before message one was stored", c.Offset)
		}
	}
	h.release <- struct{}{}
	<-h.entered
	if e.fake.Acked(two.UpdateID) {
		t.Fatal("update two acknowledged while being stored")
	}
	if sess, _, _ := e.st.TelegramSession(context.Background()); sess.Offset != one.UpdateID+1 {
		t.Errorf("stored offset %d, want %d", sess.Offset, one.UpdateID+1)
	}
	close(h.release)
	e.wait(t, "update two acknowledged", func() bool { return e.fake.Acked(two.UpdateID) })
	if sess, _, _ := e.st.TelegramSession(context.Background()); sess.Offset != two.UpdateID+1 {
		t.Errorf("stored offset %d, want %d", sess.Offset, two.UpdateID+1)
	}
}

// A message the handler fails to store is fetched again, then stored once.
func TestStoreFailureFetchesAgain(t *testing.T) {
	e := newEnv(t)
	h := &failing{}
	h.fail.Store(true)
	if err := e.ch.Connect(ctxFor(t, 10*time.Second), h); err != nil {
		t.Fatal(err)
	}
	p := e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "keep me"})
	e.wait(t, "two polls that failed", func() bool {
		n := 0
		for _, c := range e.fake.Calls() {
			if c.Method == "getUpdates" {
				n++
			}
		}
		return n >= 3
	})
	if e.fake.Acked(p.UpdateID) {
		t.Fatal("an update that was not stored is acknowledged")
	}
	h.fail.Store(false)
	e.wait(t, "acknowledged", func() bool { return e.fake.Acked(p.UpdateID) })
	if msgs := h.Messages(); len(msgs) != 1 || msgs[0].Text != "keep me" {
		t.Errorf("stored %+v", msgs)
	}
}

// failing is a handler that fails to store while fail is set.
type failing struct {
	channeltest.Handler
	fail atomic.Bool
}

func (f *failing) OnMessage(ctx context.Context, ch channel.Channel, m channel.Message) (channel.Stored, error) {
	if f.fail.Load() {
		return channel.Stored{}, errors.New("disk full")
	}
	return f.Handler.OnMessage(ctx, ch, m)
}

// A restart resumes at the stored offset: nothing lost, nothing repeated.
func TestRestartResumes(t *testing.T) {
	e := connected(t)
	one := e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "one"})
	e.waitMessages(t, 1)
	e.wait(t, "acknowledged", func() bool { return e.fake.Acked(one.UpdateID) })
	e.ch.Close()
	e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "two"})

	again := newChannel(t, e.st, e.fake)
	h := &channeltest.Handler{}
	if err := again.Connect(ctxFor(t, 10*time.Second), h); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.Messages()) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if got := h.Messages(); len(got) != 1 || got[0].Text != "two" {
		t.Errorf("after the restart the handler got %+v, want only message two", got)
	}
}

// The connection cut in the middle of a long poll, and the service down
// for a while, lose nothing and repeat nothing.
func TestReconnect(t *testing.T) {
	e := connected(t)
	e.wait(t, "a long poll", func() bool { return len(e.fake.Calls()) >= 2 })
	e.fake.Drop()
	e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "after the drop"})
	e.waitMessages(t, 1)

	e.fake.Down(true)
	deadline := time.Now().Add(10 * time.Second)
	for e.ch.Connected() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.ch.Connected() {
		t.Fatal("still reported connected while Telegram is unreachable")
	}
	e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "while down"})
	e.fake.Down(false)
	msgs := e.waitMessages(t, 2)
	time.Sleep(100 * time.Millisecond)
	if got := e.h.Messages(); len(got) != 2 || msgs[1].Text != "while down" {
		t.Errorf("messages %+v", got)
	}
	for time.Now().Before(deadline) && !e.ch.Connected() {
		time.Sleep(5 * time.Millisecond)
	}
	if !e.ch.Connected() {
		t.Error("not reported connected again")
	}
}

func TestRevoked(t *testing.T) {
	e := newEnv(t)
	e.fake.Revoke()
	err := e.ch.Connect(ctxFor(t, 10*time.Second), e.h)
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "revoked or is wrong: pair again with 'nanoclaw pair telegram'") {
		t.Fatalf("Connect with a revoked token = %v", err)
	}

	e = connected(t)
	e.fake.Revoke()
	e.fake.Drop()
	deadline := time.Now().Add(10 * time.Second)
	for e.ch.Self() != "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.ch.Self() != "" || e.ch.Connected() {
		t.Fatal("a revoked channel still reports itself connected")
	}
	if _, err := e.ch.Send(context.Background(), "tg:4242", "hi"); !errors.Is(err, ErrRevoked) {
		t.Errorf("Send after revocation = %v, want ErrRevoked", err)
	}
}

func TestNotPaired(t *testing.T) {
	e := newEnv(t)
	if err := e.st.DeleteTelegramSession(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.ch.Connect(context.Background(), e.h); !errors.Is(err, ErrNotPaired) {
		t.Errorf("Connect = %v, want ErrNotPaired", err)
	}
}

// The token appears in no error, even when a URL that holds it fails.
func TestTokenNeverInErrors(t *testing.T) {
	e := newEnv(t)
	e.ch.sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() } // retries at once
	if err := e.ch.Connect(ctxFor(t, 10*time.Second), e.h); err != nil {
		t.Fatal(err)
	}
	e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "a photo",
		Media: &faketelegram.Media{Kind: "photo", Data: []byte("jpeg")}})
	m := e.waitMessages(t, 1)[0]
	e.fake.Close()
	errs := []error{m.Attachments[0].Fetch(context.Background(), io.Discard, 1<<20)}
	_, err := e.ch.Send(context.Background(), "tg:4242", "hello")
	errs = append(errs, err, e.ch.React(context.Background(), "tg:4242", channel.MessageRef{ID: "1"}, "👀"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errs = append(errs, newChannel(t, e.st, e.fake).Connect(ctx, e.h))
	for _, err := range errs {
		if err == nil {
			t.Error("a call to a closed server succeeded")
		} else if strings.Contains(err.Error(), e.fake.Token()) || strings.Contains(err.Error(), "AAtest") {
			t.Errorf("the token is in the error: %v", err)
		}
	}
}

func TestInboundMedia(t *testing.T) {
	e := connected(t)
	photo := bytes.Repeat([]byte("p"), 5000)
	e.fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "look", Media: &faketelegram.Media{Kind: "photo", Data: photo}})
	e.fake.Post(faketelegram.In{Chat: family, From: stranger, Media: &faketelegram.Media{Kind: "voice", MIME: "audio/ogg", Data: []byte("OggS voice")}})
	e.fake.Post(faketelegram.In{Chat: family, From: stranger, Media: &faketelegram.Media{Kind: "document", MIME: "application/pdf", Name: "../../etc/passwd\n.pdf", Data: []byte("%PDF")}})
	e.fake.Post(faketelegram.In{Chat: family, From: stranger, Media: &faketelegram.Media{Kind: "video", MIME: "video/mp4", Data: []byte("big"), Size: 30 << 20}})
	e.fake.Post(faketelegram.In{Chat: family, From: stranger, Media: &faketelegram.Media{Kind: "sticker", Data: []byte("RIFF")}})
	msgs := e.waitMessages(t, 5)

	a := msgs[0].Attachments
	if len(a) != 1 || a[0].Kind != channel.KindImage || a[0].MIME != "image/jpeg" || a[0].Size != 5000 || msgs[0].Text != "look" {
		t.Fatalf("photo = %+v, text %q", a, msgs[0].Text)
	}
	var buf bytes.Buffer
	if err := a[0].Fetch(context.Background(), &buf, 1<<20); err != nil || !bytes.Equal(buf.Bytes(), photo) {
		t.Fatalf("photo fetch: %v, %d bytes (want the largest size's %d)", err, buf.Len(), len(photo))
	}
	if err := a[0].Fetch(context.Background(), io.Discard, 100); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("fetch over the host's limit = %v, want ErrTooLarge", err)
	}
	if v := msgs[1].Attachments; len(v) != 1 || v[0].Kind != channel.KindVoice || v[0].MIME != "audio/ogg" {
		t.Errorf("voice = %+v", v)
	}
	d := msgs[2].Attachments
	if len(d) != 1 || d[0].Kind != channel.KindDocument || d[0].MIME != "application/pdf" || strings.ContainsAny(d[0].FileName, "\n") {
		t.Errorf("document = %+v", d)
	}
	big := msgs[3].Attachments[0]
	calls := len(e.fake.Calls())
	if err := big.Fetch(context.Background(), io.Discard, 100<<20); err == nil || errors.Is(err, channel.ErrTooLarge) || !strings.Contains(err.Error(), "20 MB") {
		t.Errorf("fetch of a 30 MB video = %v, want Telegram's 20 MB limit", err)
	}
	if err := big.Fetch(context.Background(), io.Discard, 1<<20); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("fetch of a 30 MB video under a 1 MB limit = %v, want ErrTooLarge", err)
	}
	if got := len(e.fake.Calls()); got != calls {
		t.Errorf("a file claimed too large was asked for anyway (%d calls)", got-calls)
	}
	if s := msgs[4].Attachments; len(s) != 1 || s[0].Kind != channel.KindSticker || s[0].MIME != "image/webp" {
		t.Errorf("sticker = %+v", s)
	}
}

// sentBy returns what the bot did with method.
func sentBy(f *faketelegram.Server, method string) []faketelegram.Sent {
	var out []faketelegram.Sent
	for _, s := range f.Sent() {
		if s.Method == method {
			out = append(out, s)
		}
	}
	return out
}

func TestSend(t *testing.T) {
	e := connected(t)
	ids, err := e.ch.Send(context.Background(), "tg:4242", "**Done** & dusted: <ok>")
	if err != nil || len(ids) != 1 {
		t.Fatalf("Send = %v, %v", ids, err)
	}
	s := sentBy(e.fake, "sendMessage")
	if len(s) != 1 || s[0].Chat != 4242 || s[0].ParseMode != "HTML" || s[0].Text != "<b>Done</b> &amp; dusted: &lt;ok&gt;" ||
		s[0].Shown != "Done & dusted: <ok>" || ids[0] != "1" || s[0].ReplyTo != 0 {
		t.Errorf("sent %+v, ids %v", s, ids)
	}

	q := e.fake.Post(faketelegram.In{Chat: family, From: stranger, Text: "question"})
	ids, err = e.ch.SendQuoting(context.Background(), "tg:-1001234", "answer", channel.MessageRef{ID: strconv.Itoa(q.MessageID)})
	if err != nil {
		t.Fatal(err)
	}
	s = sentBy(e.fake, "sendMessage")
	if last := s[len(s)-1]; last.Chat != family.ID || last.ReplyTo != q.MessageID || last.Shown != "answer" || ids[0] != "3" {
		t.Errorf("quoting sent %+v, ids %v", last, ids)
	}
	if _, err := e.ch.SendQuoting(context.Background(), "tg:-1001234", "x", channel.MessageRef{ID: "abc"}); err == nil {
		t.Error("SendQuoting took a message id that is not Telegram's")
	}
	if _, err := e.ch.Send(context.Background(), "123@s.whatsapp.net", "x"); err == nil {
		t.Error("Send took a WhatsApp chat")
	}
}

func TestSendSplits(t *testing.T) {
	e := connected(t)
	para := strings.Repeat("word ", 199) + "end." // 1000 characters
	text := strings.Join([]string{para, para, para, para, para, "```go\n" + strings.Repeat("x := 1\n", 800) + "```", "the end"}, "\n\n")
	ids, err := e.ch.Send(context.Background(), "tg:4242", text)
	if err != nil {
		t.Fatal(err)
	}
	s := sentBy(e.fake, "sendMessage")
	if len(ids) != len(s) || len(s) < 3 {
		t.Fatalf("%d ids for %d messages", len(ids), len(s))
	}
	var shown []string
	for i, m := range s {
		if n := units(m.Shown); n > MaxMessageUnits {
			t.Errorf("part %d shows %d characters", i, n)
		}
		if m.ParseMode != "HTML" {
			t.Errorf("part %d went plain: %.80q", i, m.Text)
		}
		shown = append(shown, m.Shown)
	}
	if got := strings.Join(strings.Fields(strings.Join(shown, " ")), ""); got != strings.Join(strings.Fields(strings.NewReplacer("```go", "", "```", "").Replace(text)), "") {
		t.Error("the parts do not add up to the text")
	}
	if !strings.HasSuffix(s[0].Shown, "end.") || !strings.Contains(s[len(s)-2].Text, `<pre><code class="language-go">`) {
		t.Errorf("not cut at paragraphs, or the code block lost: %q … %q", s[0].Shown[len(s[0].Shown)-20:], s[len(s)-2].Text[:40])
	}
}

// A part Telegram cannot parse goes again as plain text.
func TestSendFallsBackToPlain(t *testing.T) {
	e := connected(t)
	e.ch.html = func(md string) (string, bool) { return "<b>" + md, true } // unclosed: Telegram refuses it
	ids, err := e.ch.Send(context.Background(), "tg:4242", "**bold** text")
	if err != nil || len(ids) != 1 {
		t.Fatalf("Send = %v, %v", ids, err)
	}
	var statuses []int
	for _, c := range e.fake.Calls() {
		if c.Method == "sendMessage" {
			statuses = append(statuses, c.Status)
		}
	}
	s := sentBy(e.fake, "sendMessage")
	if len(statuses) != 2 || statuses[0] != http.StatusBadRequest || len(s) != 1 || s[0].ParseMode != "" || s[0].Text != "**bold** text" {
		t.Errorf("statuses %v, sent %+v", statuses, s)
	}
}

// A 429 is waited out as long as Telegram asks, then the message goes
// once; a 5xx is retried; neither duplicates.
func TestSendRateLimited(t *testing.T) {
	e := connected(t)
	e.fake.Flood(1, time.Second)
	start := time.Now()
	if _, err := e.ch.Send(context.Background(), "tg:4242", "patience"); err != nil {
		t.Fatal(err)
	}
	var tries []faketelegram.Call
	for _, c := range e.fake.Calls() {
		if c.Method == "sendMessage" {
			tries = append(tries, c)
		}
	}
	if len(tries) != 2 || tries[0].Status != http.StatusTooManyRequests || tries[1].Status != http.StatusOK {
		t.Fatalf("calls %+v", tries)
	}
	if gap := tries[1].Time.Sub(tries[0].Time); gap < time.Second {
		t.Errorf("retried after %s, before the second Telegram asked for", gap)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("waited far longer than asked")
	}

	e.fake.Fail(1, http.StatusBadGateway)
	if _, err := e.ch.Send(context.Background(), "tg:4242", "again"); err != nil {
		t.Fatal(err)
	}
	if s := sentBy(e.fake, "sendMessage"); len(s) != 2 || s[0].Shown != "patience" || s[1].Shown != "again" {
		t.Errorf("sent %+v", s)
	}

	// A wait longer than the caller allows ends with the caller's context.
	e.fake.Flood(1, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := e.ch.Send(ctx, "tg:4242", "in a hurry"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send under a short deadline = %v", err)
	}
}

func TestSendFile(t *testing.T) {
	e := connected(t)
	jpeg := []byte("\xff\xd8\xff jpeg")
	cases := []struct {
		f      channel.File
		method string
	}{
		{channel.File{Name: "cat.jpg", MIME: "image/jpeg", Kind: channel.KindImage, Data: jpeg, Caption: "a *cat*"}, "sendPhoto"},
		{channel.File{Name: "report.pdf", MIME: "application/pdf", Kind: channel.KindDocument, Data: []byte("%PDF-1.4")}, "sendDocument"},
		{channel.File{Name: "note.ogg", MIME: "audio/ogg", Kind: channel.KindVoice, Data: []byte("OggS")}, "sendVoice"},
		{channel.File{Name: "song.mp3", MIME: "audio/mpeg", Kind: channel.KindAudio, Data: []byte("ID3")}, "sendAudio"},
		{channel.File{Name: "clip.mp4", MIME: "video/mp4", Kind: channel.KindVideo, Data: []byte("ftyp")}, "sendVideo"},
		{channel.File{Name: "anim.gif", MIME: "image/gif", Kind: channel.KindImage, Data: []byte("GIF89a")}, "sendDocument"},
		{channel.File{Name: "dir/../x.txt", MIME: "text/plain", Kind: channel.KindDocument, Data: []byte("x")}, "sendDocument"},
	}
	for _, c := range cases {
		before := len(e.fake.Sent())
		id, err := e.ch.SendFile(context.Background(), "tg:4242", c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.f.Name, err)
		}
		s := e.fake.Sent()[before:]
		if len(s) != 1 || s[0].Method != c.method || !bytes.Equal(s[0].File, c.f.Data) || s[0].Text != c.f.Caption || id == "" {
			t.Errorf("%s went as %+v, want %s", c.f.Name, s, c.method)
			continue
		}
		if strings.Contains(s[0].FileName, "/") {
			t.Errorf("%s sent as %q", c.f.Name, s[0].FileName)
		}
	}

	long := strings.Repeat("caption ", 200) // 1600 characters
	before := len(e.fake.Sent())
	if _, err := e.ch.SendFile(context.Background(), "tg:4242", channel.File{Name: "a.pdf", MIME: "application/pdf", Kind: channel.KindDocument, Data: []byte("%PDF"), Caption: long}); err != nil {
		t.Fatal(err)
	}
	s := e.fake.Sent()[before:]
	if len(s) != 2 || units(s[0].Text) > 1024 || s[1].Method != "sendMessage" ||
		strings.Join(strings.Fields(s[0].Text+" "+s[1].Shown), " ") != strings.TrimSpace(long) {
		t.Errorf("a long caption went as %+v", s)
	}
}

func TestReact(t *testing.T) {
	e := connected(t)
	e.fake.Post(faketelegram.In{Chat: family, From: stranger, Text: "do it"})
	ctx := context.Background()
	ref := channel.MessageRef{ID: "1", Sender: "tg:777"}
	for _, emoji := range []string{"👀", "✅", "❌", "❤️", ""} {
		if err := e.ch.React(ctx, "tg:-1001234", ref, emoji); err != nil {
			t.Fatalf("React %q: %v", emoji, err)
		}
	}
	var got []string
	for _, s := range sentBy(e.fake, "setMessageReaction") {
		if s.Chat != family.ID || s.Target != 1 {
			t.Errorf("reaction %+v", s)
		}
		got = append(got, s.Emoji)
	}
	if strings.Join(got, ",") != "👀,👍,👎,❤," {
		t.Errorf("reactions %q", got)
	}
	if err := e.ch.React(ctx, "tg:-1001234", ref, "🦜"); err == nil || len(sentBy(e.fake, "setMessageReaction")) != 5 {
		t.Errorf("React with an emoji Telegram lacks = %v", err)
	}
}

// Every emoji the channel maps to is one Telegram offers (the fake's list
// is typed from the Bot API's documentation separately).
func TestReactionList(t *testing.T) {
	for e := range reactions {
		if !strings.Contains(" "+strings.Join(faketelegram.Reactions, " ")+" ", " "+e+" ") {
			t.Errorf("%q is not a Telegram reaction", e)
		}
	}
	for _, r := range reactionFor {
		if !reactions[r] {
			t.Errorf("%q is mapped to %q, which Telegram lacks", r, r)
		}
	}
}

func TestTyping(t *testing.T) {
	e := connected(t)
	e.ch.typingEvery = 20 * time.Millisecond
	ctx := context.Background()
	if err := e.ch.SetTyping(ctx, "tg:4242", true); err != nil {
		t.Fatal(err)
	}
	if err := e.ch.SetTyping(ctx, "tg:4242", true); err != nil { // one renewal goroutine however often shown
		t.Fatal(err)
	}
	e.wait(t, "renewals", func() bool { return len(sentBy(e.fake, "sendChatAction")) >= 5 })
	if err := e.ch.SetTyping(ctx, "tg:4242", false); err != nil {
		t.Fatal(err)
	}
	n := len(sentBy(e.fake, "sendChatAction"))
	time.Sleep(100 * time.Millisecond)
	s := sentBy(e.fake, "sendChatAction")
	if len(s) != n {
		t.Errorf("%d chat actions after typing was cleared", len(s)-n)
	}
	for i := 2; i < len(s); i++ { // 0 and 1: the two SetTyping
		if s[i].Action != "typing" || s[i].Chat != 4242 || s[i].Time.Sub(s[i-1].Time) < 5*time.Millisecond {
			t.Errorf("action %d: %+v (renewed too often?)", i, s[i])
		}
	}

	if err := e.ch.SetTyping(ctx, "tg:-1001234", true); err != nil {
		t.Fatal(err)
	}
	e.ch.Close() // stops the renewal
	n = len(sentBy(e.fake, "sendChatAction"))
	time.Sleep(100 * time.Millisecond)
	if got := len(sentBy(e.fake, "sendChatAction")); got != n {
		t.Errorf("%d chat actions after Close", got-n)
	}
}

func TestPair(t *testing.T) {
	fake := faketelegram.New(faketelegram.Options{})
	defer fake.Close()
	st, err := store.Open(context.Background(), t.TempDir()+"/db", store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	var progress []string
	type result struct {
		s   store.TelegramSession
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Pair(context.Background(), st, PairOptions{Token: fake.Token(), ServerURL: fake.URL(), Code: "WXYZ-2345", Timeout: 10 * time.Second,
			Logger: quiet(), Progress: func(m string) { mu.Lock(); progress = append(progress, m); mu.Unlock() }})
		done <- result{s, err}
	}()
	fake.Post(faketelegram.In{Chat: faketelegram.Private(stranger), From: stranger, Text: "let me in"})
	fake.Post(faketelegram.In{Chat: family, From: stranger, Text: "WXYZ-2345"}) // in a group: everyone saw it
	fake.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: " wxyz 2345\n"})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.s.OwnerChat != owner.ID || r.s.BotID != fake.BotID() || r.s.Username != fake.Username() || r.s.Token != fake.Token() {
		t.Errorf("session %+v", r.s)
	}
	if got, _, _ := st.TelegramSession(context.Background()); got != r.s {
		t.Errorf("stored %+v, returned %+v", got, r.s)
	}
	if fake.Pending() != 0 {
		t.Errorf("%d updates left after pairing", fake.Pending())
	}
	s := fake.Sent()
	if len(s) != 1 || s[0].Chat != owner.ID {
		t.Errorf("the bot sent %+v: only the owner hears back", s)
	}
	mu.Lock()
	joined := strings.Join(progress, "\n")
	mu.Unlock()
	if !strings.Contains(joined, "WXYZ-2345") || !strings.Contains(joined, "@"+fake.Username()) || strings.Contains(joined, fake.Token()) {
		t.Errorf("progress %q", joined)
	}

	if _, err := Pair(context.Background(), st, PairOptions{Token: fake.Token(), ServerURL: fake.URL()}); err == nil {
		t.Error("paired again without Replace")
	}
	for _, bad := range []string{"nonsense", "123:short", "abc:" + strings.Repeat("x", 30)} {
		if _, err := Pair(context.Background(), st, PairOptions{Token: bad, ServerURL: fake.URL(), Replace: true}); err == nil || strings.Contains(err.Error(), bad) {
			t.Errorf("Pair with token %q = %v", bad, err)
		}
	}
	if _, err := Pair(context.Background(), st, PairOptions{Token: "7000001:AAwrong-token_abcdefghijklmnopqrs", ServerURL: fake.URL(), Replace: true}); err == nil ||
		!strings.Contains(err.Error(), "token was refused") || strings.Contains(err.Error(), "AAwrong") {
		t.Errorf("Pair with a wrong token = %v", err)
	}
}

func TestPairTimesOut(t *testing.T) {
	fake := faketelegram.New(faketelegram.Options{})
	defer fake.Close()
	st, err := store.Open(context.Background(), t.TempDir()+"/db", store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fake.Post(faketelegram.In{Chat: faketelegram.Private(stranger), From: stranger, Text: "WRONG-CODE"})
	_, err = Pair(context.Background(), st, PairOptions{Token: fake.Token(), ServerURL: fake.URL(), Code: "RIGHT-CODE", Timeout: 500 * time.Millisecond, Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "no code arrived") {
		t.Errorf("Pair = %v", err)
	}
	if _, found, _ := st.TelegramSession(context.Background()); found {
		t.Error("a session was stored without the code")
	}
	if len(fake.Sent()) != 0 {
		t.Errorf("the bot answered a stranger: %+v", fake.Sent())
	}
}

// Telegram confirms only the updates below the offset asked for: one it
// sends below the offset (its ids started again lower) is handled, and the
// offset, kept too, follows it down, rather than the poll asking again and
// again for what it skips.
func TestUpdateIDsStartingLowerAreFollowed(t *testing.T) {
	e := newEnv(t)
	if err := e.st.SetTelegramOffset(context.Background(), 5000); err != nil {
		t.Fatal(err)
	}
	e.ch.handler, e.ch.api = e.h, &api{log: quiet()}
	u := &models.Update{ID: 7, Message: &models.Message{ID: 1, Date: int(time.Now().Unix()), Text: "hello",
		Chat: models.Chat{ID: owner.ID, Type: models.ChatTypePrivate}, From: &models.User{ID: owner.ID, FirstName: "Olga"}}}
	offset, err := e.ch.deliver(context.Background(), pollResult{updates: []*models.Update{u}}, 5000)
	if err != nil || offset != 8 || len(e.h.Messages()) != 1 {
		t.Fatalf("deliver = %d, %v, %d messages; want 8, nil, 1", offset, err, len(e.h.Messages()))
	}
	if s, _, _ := e.st.TelegramSession(context.Background()); s.Offset != 8 {
		t.Errorf("the kept offset is %d, want 8", s.Offset)
	}
}

// Every URL holds the token: a redirect is not followed, so the token goes
// nowhere else, in the path or the Referer.
func TestRedirectIsNotFollowed(t *testing.T) {
	var hit atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
	defer elsewhere.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusFound)
	}))
	defer front.Close()
	a, err := newAPI(faketelegram.DefaultToken, front.URL, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.getMe(ctxFor(t, 5*time.Second)); err == nil {
		t.Error("getMe through a redirect succeeded")
	}
	if hit.Load() {
		t.Error("the redirect was followed: the other host got a request")
	}
}

// A group that becomes a supergroup gets a new id, and its old one takes
// no more messages: the service message in the old chat binds the group to
// the new id too (its tasks and unsent replies follow, store.MoveChat), so
// the group goes on answering; a reply still addressed to the old id is
// sent to the new one, which Telegram names when it refuses it. Only the
// registered chat's own service message binds, never onto another group's
// chat.
func TestSupergroupMigrationMovesTheRegistration(t *testing.T) {
	e := connected(t)
	ctx := context.Background()
	for _, g := range []string{"family", "work"} {
		if err := e.st.PutGroup(ctx, store.Group{Folder: g, Name: g, Trigger: "@Andy", AddedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for jid, g := range map[string]string{"tg:-555": "family", "tg:-666": "work", "tg:-1006660000": "work"} {
		if err := e.st.BindChat(ctx, jid, g); err != nil {
			t.Fatal(err)
		}
	}
	migrate := func(chat faketelegram.Chat, to int64) {
		t.Helper()
		upd := e.fake.PostRaw(map[string]any{"message": map[string]any{"message_id": 40, "date": 1,
			"chat": map[string]any{"id": chat.ID, "type": chat.Type, "title": chat.Title},
			"from": map[string]any{"id": owner.ID, "first_name": "Olive"}, "migrate_to_chat_id": to}})
		e.wait(t, "the migration handled", func() bool { return e.fake.Acked(upd) })
	}
	bound := func(jid string) string {
		g, _, err := e.st.GroupForChat(ctx, jid)
		if err != nil {
			t.Fatal(err)
		}
		return g.Folder
	}

	// A supergroup's claim to migrate, and an unregistered group's: nothing.
	migrate(faketelegram.Chat{ID: -1006660000, Type: "supergroup", Title: "Work"}, -1005550000)
	migrate(faketelegram.Chat{ID: -777, Type: "group", Title: "Strangers"}, -1005550000)
	if g := bound("tg:-1005550000"); g != "" {
		t.Fatalf("tg:-1005550000 bound to %q by a message not from the registered group", g)
	}
	// The registered group's own word: bound at the new id, the old one
	// kept for what it holds unanswered.
	e.fake.Migrate(-555, -1005550000)
	migrate(faketelegram.Chat{ID: -555, Type: "group", Title: "Family"}, -1005550000)
	if g, old := bound("tg:-1005550000"), bound("tg:-555"); g != "family" || old != "family" {
		t.Fatalf("after the migration the new id is bound to %q, the old one to %q", g, old)
	}
	e.fake.Post(faketelegram.In{Chat: faketelegram.Chat{ID: -1005550000, Type: "supergroup", Title: "Family"}, From: owner, Text: "@Andy still there?"})
	if msgs := e.waitMessages(t, 1); msgs[0].ChatJID != "tg:-1005550000" {
		t.Errorf("message stored in %s", msgs[0].ChatJID)
	}
	// An answer to the old chat's backlog, and a file, go to the new id.
	if _, err := e.ch.SendQuoting(ctx, "tg:-555", "yes, still here", channel.MessageRef{ID: "12"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ch.SendFile(ctx, "tg:-555", channel.File{Name: "a.pdf", MIME: "application/pdf", Kind: channel.KindDocument, Data: []byte("%PDF-1.4")}); err != nil {
		t.Fatal(err)
	}
	if sent := e.fake.Sent(); len(sent) != 2 || sent[0].Chat != -1005550000 || sent[0].Shown != "yes, still here" || sent[1].Chat != -1005550000 || sent[1].Method != "sendDocument" {
		t.Errorf("sent %+v; want both at the new id", sent)
	}
	// Onto another group's chat: refused, nothing moves.
	migrate(faketelegram.Chat{ID: -666, Type: "group", Title: "Work"}, -1005550000)
	if g, old := bound("tg:-1005550000"), bound("tg:-666"); g != "family" || old != "work" {
		t.Errorf("a migration onto family's chat: new id bound to %q, old to %q", g, old)
	}
}
