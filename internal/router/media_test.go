package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/scheduler"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// chatChannel is a channel that can do everything a channel may: it
// records sends, quotes, files and reactions, and fails the next sends
// while failures > 0.
type chatChannel struct {
	mu       sync.Mutex
	log      []string
	failures int
}

func (c *chatChannel) Name() string                                      { return "chat" }
func (c *chatChannel) Owns(string) bool                                  { return true }
func (c *chatChannel) Connect(context.Context, channel.Handler) error    { return nil }
func (c *chatChannel) SetTyping(context.Context, string, bool) error     { return nil }
func (c *chatChannel) Chats(context.Context) ([]channel.ChatInfo, error) { return nil, nil }
func (c *chatChannel) Self() string                                      { return "" }
func (c *chatChannel) Close() error                                      { return nil }

func (c *chatChannel) record(line string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures > 0 && !strings.HasPrefix(line, "react ") {
		c.failures--
		c.log = append(c.log, "failed "+line)
		return nil, errors.New("the service is down")
	}
	c.log = append(c.log, line)
	return []string{fmt.Sprintf("out-%d", len(c.log))}, nil
}

func (c *chatChannel) Send(_ context.Context, jid, text string) ([]string, error) {
	return c.record("send " + text)
}

func (c *chatChannel) SendQuoting(_ context.Context, jid, text string, q channel.MessageRef) ([]string, error) {
	return c.record(fmt.Sprintf("quote %s/%s %s", q.ID, q.Sender, text))
}

func (c *chatChannel) SendFile(_ context.Context, jid string, f channel.File) (string, error) {
	ids, err := c.record(fmt.Sprintf("file %s %s %s %q %q", f.Name, f.Kind, f.MIME, f.Data, f.Caption))
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

func (c *chatChannel) React(_ context.Context, jid string, to channel.MessageRef, emoji string) error {
	_, err := c.record("react " + to.ID + " " + emoji)
	return err
}

func (c *chatChannel) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// waitLines waits until the channel has recorded want, in order.
func (c *chatChannel) waitLines(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(c.lines(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("channel lines:\n got %q\nwant %q", c.lines(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scriptedAgents start sessions that record each prompt's text and answer
// with the next of results ("" no reply; "error" a failed run).
type scriptedAgents struct {
	mu      sync.Mutex
	prompts []string
	results []string
	got     chan time.Time // when set, gets the time of each prompt
}

func (a *scriptedAgents) Start(context.Context, store.Group, agent.StartOptions) (Container, error) {
	return &scriptedSession{a: a, done: make(chan struct{})}, nil
}

func (a *scriptedAgents) texts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.prompts)
}

type scriptedSession struct {
	a    *scriptedAgents
	done chan struct{}
	once sync.Once
}

func (s *scriptedSession) Prompt(_ context.Context, text string) (ipc.Output, error) {
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	s.a.prompts = append(s.a.prompts, text)
	if s.a.got != nil {
		s.a.got <- time.Now()
	}
	result := "ok"
	if len(s.a.results) > 0 {
		result, s.a.results = s.a.results[0], s.a.results[1:]
	}
	if result == "error" {
		return ipc.Output{IsError: true, Error: "the model failed"}, nil
	}
	return ipc.Output{Result: result}, nil
}
func (s *scriptedSession) Done() <-chan struct{} { return s.done }
func (s *scriptedSession) Close(context.Context) { s.once.Do(func() { close(s.done) }) }

// dirMedia keeps media in a directory, as the runner keeps them in a
// group's folder.
type dirMedia struct{ dir string }

func (m dirMedia) SaveMedia(_ context.Context, folder, name string, fetch func(io.Writer) error) (int64, error) {
	if err := store.ValidateMediaPath("media/" + name); err != nil {
		return 0, err
	}
	p := filepath.Join(m.dir, folder, name)
	os.MkdirAll(filepath.Dir(p), 0o700)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := fetch(f); err != nil {
		os.Remove(p)
		return 0, err
	}
	st, err := f.Stat()
	return st.Size(), err
}

// fakeTranscriber transcribes every voice note as text, and records what
// it was sent.
type fakeTranscriber struct {
	text  string
	err   error
	heard [][]byte
}

func (f *fakeTranscriber) Enabled() bool { return true }
func (f *fakeTranscriber) Transcribe(_ context.Context, audio io.Reader, name, mimeType string) (string, error) {
	b, _ := io.ReadAll(audio)
	f.heard = append(f.heard, b)
	return f.text, f.err
}

// chatWorld is a router with every optional part: media, transcriber, a
// channel that can do everything; groups main and family (trigger @Andy).
type chatWorld struct {
	st     *store.Store
	r      *Router
	ch     *chatChannel
	agents *scriptedAgents
	media  string
	spool  string
	chats  *Channels
}

func newChatWorld(t testing.TB, tr Transcriber, family store.ContainerConfig) *chatWorld {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	st.PutGroup(ctx, store.Group{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()})
	st.BindChat(ctx, "local:main", "main")
	st.PutGroup(ctx, store.Group{Folder: "family", Name: "Family", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now(), Config: family})
	st.UpsertChat(ctx, store.Chat{JID: "fam@g.us", Channel: "chat", IsGroup: true, LastActivity: time.Now()})
	st.BindChat(ctx, "fam@g.us", "family")
	w := &chatWorld{st: st, ch: &chatChannel{}, agents: &scriptedAgents{}, media: t.TempDir(), spool: t.TempDir()}
	w.chats = NewChannels(st, "Andy", nil)
	w.chats.retry = time.Millisecond
	w.chats.Spool(w.spool, 1<<20)
	w.chats.Add(w.ch)
	w.r = New(Options{Store: st, Agents: w.agents, AssistantName: "Andy", MaxConcurrent: 3, IdleTimeout: time.Minute,
		Caps: Caps{MaxMessages: 50, MaxBytes: 32 << 10, MaxMessageBytes: 4096}, Channels: w.chats,
		Media: dirMedia{w.media}, MediaMaxBytes: 1 << 20, Transcriber: tr})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { w.r.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *chatWorld) deliver(t testing.TB, m channel.Message) channel.Stored {
	t.Helper()
	if m.Timestamp.IsZero() {
		m.Timestamp = time.Now()
	}
	if m.ChatJID == "" {
		m.ChatJID, m.IsGroup = "fam@g.us", true
	}
	if m.Sender == "" {
		m.Sender, m.SenderName = "49151@s.whatsapp.net", "Carol"
	}
	stored, err := w.r.OnMessage(context.Background(), w.ch, m)
	if err != nil {
		t.Fatalf("OnMessage(%+v): %v", m, err)
	}
	return stored
}

// waitPrompt waits for the n-th prompt (from 1) and returns it.
func (w *chatWorld) waitPrompt(t *testing.T, n int) string {
	t.Helper()
	waitFor(t, fmt.Sprintf("prompt %d", n), func() bool { return len(w.agents.texts()) >= n })
	return w.agents.texts()[n-1]
}

// bytesFetch is a Fetch of data that honours the limit, as adapters must.
func bytesFetch(data []byte) func(context.Context, io.Writer, int64) error {
	return func(_ context.Context, w io.Writer, max int64) error {
		if int64(len(data)) > max {
			return fmt.Errorf("%d bytes: %w", len(data), channel.ErrTooLarge)
		}
		_, err := w.Write(data)
		return err
	}
}

var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

// A photo is kept in the group's media folder under a name the host
// chose, and reaches the prompt as a reference inside its message; media
// over the limit, or that cannot be fetched, are noted and the message is
// kept all the same.
func TestInboundMediaReachThePromptByReference(t *testing.T) {
	w := newChatWorld(t, nil, store.ContainerConfig{})
	fetched := false
	stored := w.deliver(t, channel.Message{ID: "M1", Text: "@Andy what is this?", Attachments: []channel.Attachment{
		{Kind: channel.KindImage, MIME: "image/png", FileName: "../../etc/passwd", Fetch: bytesFetch(png)},
		{Kind: channel.KindDocument, MIME: "application/pdf", Size: 50 << 20, FileName: "huge.pdf",
			Fetch: func(context.Context, io.Writer, int64) error { fetched = true; return nil }},
		{Kind: channel.KindVideo, MIME: "video/mp4", Fetch: bytesFetch(bytes.Repeat([]byte("v"), 2<<20))},
		{Kind: channel.KindSticker, MIME: "image/webp", Fetch: func(context.Context, io.Writer, int64) error { return errors.New("media server said 404") }},
	}})
	if !stored.WillAnswer {
		t.Fatalf("stored = %+v, want answered", stored)
	}
	if fetched {
		t.Error("media claimed over the limit were fetched")
	}
	kept, err := os.ReadFile(filepath.Join(w.media, "family", "M1-0.png"))
	if err != nil || !bytes.Equal(kept, png) {
		t.Fatalf("kept photo = %q, %v", kept, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.media, "family")); len(entries) != 1 {
		t.Errorf("media folder holds %d files, want the photo alone (no partial video)", len(entries))
	}
	prompt := w.waitPrompt(t, 1)
	for _, want := range []string{
		`@Andy what is this?<attachment kind="image" type="image/png" path="/workspace/group/media/M1-0.png" bytes="` + fmt.Sprint(len(png)) + `" name="../../etc/passwd"/>`,
		`<attachment kind="document" type="application/pdf" name="huge.pdf" note="not fetched: 50.0 MiB is over the limit of 1.0 MiB (MEDIA_MAX_BYTES)"/>`,
		`<attachment kind="video" type="video/mp4" note="not fetched: over the limit of 1.0 MiB (MEDIA_MAX_BYTES)"/>`,
		`<attachment kind="sticker" type="image/webp" note="could not be fetched: media server said 404"/>`,
	} {
		if !strings.Contains(prompt, want) {
			t.Errorf("prompt lacks %s:\n%s", want, prompt)
		}
	}
	// A name the host would choose that is taken already (a file the agent
	// made, or this message's own before a crash) gets another name.
	os.WriteFile(filepath.Join(w.media, "family", "M2-0.png"), []byte("planted"), 0o600)
	w.deliver(t, channel.Message{ID: "M2", Text: "and this", Attachments: []channel.Attachment{
		{Kind: channel.KindImage, MIME: "image/png", Fetch: bytesFetch(png)}}})
	m2, _, _ := w.st.MessageByID(context.Background(), "fam@g.us", "M2")
	if len(m2.Attachments) != 1 || !regexp.MustCompile(`^media/M2-0-[A-Z2-7]{8}\.png$`).MatchString(m2.Attachments[0].Path) {
		t.Errorf("a taken name: kept as %+v", m2.Attachments)
	}
	if b, _ := os.ReadFile(filepath.Join(w.media, "family", "M2-0.png")); string(b) != "planted" {
		t.Errorf("the file in the way was changed: %q", b)
	}
	// The content decides the type, not the sender's claim: a PDF that
	// claims to be a photo is kept as a PDF.
	w.deliver(t, channel.Message{ID: "M3", Text: "a photo?", Attachments: []channel.Attachment{
		{Kind: channel.KindImage, MIME: "image/jpeg", Fetch: bytesFetch([]byte("%PDF-1.7\n%fake photo"))}}})
	if m3, _, _ := w.st.MessageByID(context.Background(), "fam@g.us", "M3"); len(m3.Attachments) != 1 ||
		m3.Attachments[0].MIME != "application/pdf" || m3.Attachments[0].Path != "media/M3-0.pdf" {
		t.Errorf("a PDF claimed as a photo: kept as %+v", m3.Attachments)
	}
	// A redelivery is not fetched again.
	again := w.deliver(t, channel.Message{ID: "M1", Text: "@Andy what is this?", Attachments: []channel.Attachment{
		{Kind: channel.KindImage, MIME: "image/png", Fetch: func(context.Context, io.Writer, int64) error {
			t.Error("a redelivered message's media were fetched again")
			return nil
		}}}})
	if again.Seq != 0 {
		t.Errorf("redelivery stored = %+v", again)
	}
}

// The claim refines what the content cannot tell, and never makes bytes a
// photo or a video.
func TestContentType(t *testing.T) {
	for _, tc := range []struct {
		head, claim, want string
	}{
		{string(png), "image/jpeg", "image/png"}, // the content knows better
		{string(png), "", "image/png"},
		{"%PDF-1.4", "image/jpeg", "application/pdf"},
		{"OggS\x00\x02", "audio/ogg", "audio/ogg"},
		{"\x00\x01\x02\x03", "audio/amr", "audio/amr"},
		{"\x00\x01\x02\x03", "image/png", "application/octet-stream"},
		{`{"a": 1}`, "application/json", "application/json"},
		{"plain words", "image/png", "text/plain"},
		{"PK\x03\x04", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	} {
		if got := contentType([]byte(tc.head), tc.claim); got != tc.want {
			t.Errorf("contentType(%q, %q) = %q, want %q", tc.head, tc.claim, got, tc.want)
		}
	}
}

// A voice note is transcribed on the host: the transcript is the message's
// text (so the trigger counts on it), marked as such, and the audio is kept.
// With no transcriber, or when transcription fails, the prompt says so.
func TestVoiceNotes(t *testing.T) {
	voice := []byte("OggS\x00\x02voice")
	tr := &fakeTranscriber{text: "@Andy remind me to buy milk"}
	w := newChatWorld(t, tr, store.ContainerConfig{})
	stored := w.deliver(t, channel.Message{ID: "V1", Attachments: []channel.Attachment{{Kind: channel.KindVoice, MIME: "audio/ogg; codecs=opus", Fetch: bytesFetch(voice)}}})
	if !stored.WillAnswer {
		t.Fatal("a voice note whose transcript starts with the trigger did not ask for an answer")
	}
	if len(tr.heard) != 1 || !bytes.Equal(tr.heard[0], voice) {
		t.Errorf("transcriber heard %q", tr.heard)
	}
	prompt := w.waitPrompt(t, 1)
	want := `transcript="true">@Andy remind me to buy milk<attachment kind="voice" type="audio/ogg" path="/workspace/group/media/V1-0.ogg" bytes="11"/></message>`
	if !strings.Contains(prompt, want) {
		t.Errorf("prompt lacks %s:\n%s", want, prompt)
	}

	tr.err = errors.New("transcription endpoint: 500 Internal Server Error")
	if s := w.deliver(t, channel.Message{ID: "V2", Attachments: []channel.Attachment{{Kind: channel.KindVoice, MIME: "audio/ogg", Fetch: bytesFetch(voice)}}}); s.WillAnswer {
		t.Error("an untranscribed voice note in a trigger group asked for an answer")
	}
	m, _, _ := w.st.MessageByID(context.Background(), "fam@g.us", "V2")
	if len(m.Attachments) != 1 || m.Attachments[0].Note != "not transcribed: transcription endpoint: 500 Internal Server Error" || m.Attachments[0].Path == "" {
		t.Errorf("untranscribed voice note kept as %+v", m.Attachments)
	}

	plain := newChatWorld(t, nil, store.ContainerConfig{})
	plain.deliver(t, channel.Message{ChatJID: "local:main", ID: "V3", Attachments: []channel.Attachment{{Kind: channel.KindVoice, MIME: "audio/ogg", Fetch: bytesFetch(voice)}}})
	if p := plain.waitPrompt(t, 1); !strings.Contains(p, `note="not transcribed: no transcriber is set (TRANSCRIBE_URL)"/>`) {
		t.Errorf("prompt without a transcriber:\n%s", p)
	}
}

// In a trigger group, a reply to the assistant's own message and an
// @-mention of the account ask for an answer without the trigger word; a
// reply to someone else's message does not. With trigger_senders, only
// those senders (and the owner) start runs; the others' messages go along
// as context.
func TestRepliesMentionsAndTriggerSenders(t *testing.T) {
	ctx := context.Background()
	w := newChatWorld(t, nil, store.ContainerConfig{TriggerSenders: []string{"49151@s.whatsapp.net"}})
	o := store.NewOutgoing("fam@g.us", "family", "Andy: the shop closes at six")
	if err := w.st.Enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := w.st.MarkSent(ctx, o, []string{"BOT1"}, "Andy"); err != nil {
		t.Fatal(err)
	}
	w.deliver(t, channel.Message{ID: "H1", Sender: "49170@s.whatsapp.net", SenderName: "Dan", Text: "hello all"})
	for _, tc := range []struct {
		m    channel.Message
		want bool
	}{
		{channel.Message{ID: "R1", Text: "and on Sunday?", ReplyTo: "H1"}, false},
		{channel.Message{ID: "R2", Text: "and on Sunday?", ReplyTo: "BOT1", Quote: "made up", QuoteSender: "4900@s.whatsapp.net"}, true},
		{channel.Message{ID: "R3", Text: "what do you think?", MentionsSelf: true}, true},
		{channel.Message{ID: "R4", Sender: "49170@s.whatsapp.net", SenderName: "Dan", Text: "@Andy me too"}, false},
		{channel.Message{ID: "R5", Sender: "4900@s.whatsapp.net", SenderName: "Owner", FromMe: true, Text: "@Andy and me"}, true},
	} {
		if got := w.deliver(t, tc.m); got.WillAnswer != tc.want {
			t.Errorf("message %s asks for an answer: %v, want %v", tc.m.ID, got.WillAnswer, tc.want)
		}
	}
	r2, _, _ := w.st.MessageByID(ctx, "fam@g.us", "R2")
	if !r2.Addressed || r2.Quote != "Andy: the shop closes at six" || r2.QuoteSender != "Andy" || r2.ReplyTo != "BOT1" {
		t.Errorf("the reply to the assistant is stored as %+v", r2)
	}
	r1, _, _ := w.st.MessageByID(ctx, "fam@g.us", "R1")
	if r1.Addressed || r1.Quote != "hello all" || r1.QuoteSender != "49170@s.whatsapp.net" {
		t.Errorf("the reply to Dan is stored as %+v", r1)
	}
	_, evs := kinds(t, w.st, "family")
	var why []string
	for _, e := range evs {
		if e.Kind == store.EventIgnored {
			why = append(why, e.Detail)
		}
	}
	if len(why) != 3 || !strings.Contains(why[2], "only the senders in trigger_senders") {
		t.Errorf("reasons for not answering: %q", why)
	}
	prompt := w.waitPrompt(t, 1)
	if !strings.Contains(prompt, `quoted="hello all" quoted_sender="49170@s.whatsapp.net">and on Sunday?`) {
		t.Errorf("the prompt does not show who was quoted:\n%s", prompt)
	}
}

// The message that asked is reacted to (👀 at the start, ✅ when answered,
// ❌ when the run failed) and, in a group, the reply quotes it; a group can
// turn reactions off.
func TestReactionsAndQuotedReplies(t *testing.T) {
	w := newChatWorld(t, nil, store.ContainerConfig{})
	w.agents.results = []string{"it is a cat", "error"}
	w.deliver(t, channel.Message{ID: "Q1", Text: "@Andy what is this?"})
	w.ch.waitLines(t, "react Q1 👀", "quote Q1/49151@s.whatsapp.net Andy: it is a cat", "react Q1 ✅")
	w.deliver(t, channel.Message{ID: "Q2", Text: "@Andy and this?"})
	w.ch.waitLines(t, "react Q1 👀", "quote Q1/49151@s.whatsapp.net Andy: it is a cat", "react Q1 ✅", "react Q2 👀", "react Q2 ❌")

	off := false
	quiet := newChatWorld(t, nil, store.ContainerConfig{Reactions: &off})
	quiet.deliver(t, channel.Message{ID: "Q3", Text: "@Andy hi"})
	quiet.ch.waitLines(t, "quote Q3/49151@s.whatsapp.net Andy: ok")
	// A chat that is no group gets its reply unquoted.
	quiet.deliver(t, channel.Message{ID: "Q4", ChatJID: "local:main", Text: "hi"})
	quiet.ch.waitLines(t, "quote Q3/49151@s.whatsapp.net Andy: ok", "react Q4 👀", "send Andy: ok", "react Q4 ✅")
}

// A reply the channel cannot deliver is tried again, then given up: the
// trace says so, it is not sent at the next start, and the group's next
// prompt tells the agent, once.
func TestUndeliveredReplyIsToldToTheNextRun(t *testing.T) {
	ctx := context.Background()
	w := newChatWorld(t, nil, store.ContainerConfig{})
	w.ch.failures = deliverAttempts
	w.agents.results = []string{"the answer", "second", "third"}
	w.deliver(t, channel.Message{ID: "U1", ChatJID: "local:main", Text: "first"})
	waitFor(t, "the given-up send", func() bool {
		return len(slices.DeleteFunc(w.ch.lines(), func(l string) bool { return !strings.HasPrefix(l, "failed ") })) == deliverAttempts
	})
	waitFor(t, "the failure traced", func() bool {
		_, evs := kinds(t, w.st, "main")
		return slices.ContainsFunc(evs, func(e store.Event) bool {
			return e.Kind == store.EventFailed && strings.Contains(e.Detail, "could not be delivered") && strings.Contains(e.Detail, "the service is down")
		})
	})
	if unsent, _ := w.st.Unsent(ctx); len(unsent) != 0 {
		t.Errorf("a given-up reply is still to be sent at the next start: %+v", unsent)
	}
	w.deliver(t, channel.Message{ID: "U2", ChatJID: "local:main", Text: "second"})
	p := w.waitPrompt(t, 2)
	if !strings.Contains(p, `reason="the service is down">Your earlier message was not delivered: the answer</not_delivered>`) {
		t.Errorf("second prompt does not tell of the lost reply:\n%s", p)
	}
	w.deliver(t, channel.Message{ID: "U3", ChatJID: "local:main", Text: "third"})
	if p := w.waitPrompt(t, 3); strings.Contains(p, "not_delivered") {
		t.Errorf("the lost reply was told twice:\n%s", p)
	}
}

// A file the agent sends goes from the spool through the channel's
// FileSender, with its caption; the spooled copy is removed once sent. A
// channel that cannot send files gives it up at once, with the reason.
func TestFilesAreDeliveredFromTheSpool(t *testing.T) {
	ctx := context.Background()
	// No router runs here: its first act, sending what is unsent, would
	// race the Deliver calls below.
	w := &chatWorld{st: openStore(t), ch: &chatChannel{}, spool: t.TempDir()}
	w.chats = NewChannels(w.st, "Andy", nil)
	w.chats.retry = time.Millisecond
	w.chats.Spool(w.spool, 1<<20)
	w.chats.Add(w.ch)
	o := store.NewOutgoing("fam@g.us", "family", "Andy: [file plan.pdf]")
	o.File = &store.OutFile{Spool: o.ID + ".pdf", Name: "plan.pdf", MIME: "application/pdf", Kind: "document", Caption: "the plan"}
	if err := os.WriteFile(filepath.Join(w.spool, o.File.Spool), []byte("%PDF-1.4"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.st.Enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !w.chats.Deliver(ctx, o) {
		t.Fatal("the file was not delivered")
	}
	if got := w.ch.lines(); !slices.Equal(got, []string{`file plan.pdf document application/pdf "%PDF-1.4" "the plan"`}) {
		t.Errorf("channel got %q", got)
	}
	if _, err := os.Stat(filepath.Join(w.spool, o.File.Spool)); !os.IsNotExist(err) {
		t.Errorf("the spooled copy is still there: %v", err)
	}

	textOnly := NewChannels(w.st, "Andy", nil)
	textOnly.Spool(w.spool, 1<<20)
	textOnly.Add(&fakeChannel{})
	o2 := store.NewOutgoing("fam@g.us", "family", "Andy: [file plan.pdf]")
	o2.File = &store.OutFile{Spool: o2.ID + ".pdf", Name: "plan.pdf", MIME: "application/pdf", Kind: "document"}
	os.WriteFile(filepath.Join(w.spool, o2.File.Spool), []byte("%PDF-1.4"), 0o600)
	if err := w.st.Enqueue(ctx, o2); err != nil {
		t.Fatal(err)
	}
	if textOnly.Deliver(ctx, o2) {
		t.Fatal("a channel without files delivered a file")
	}
	und, _ := w.st.Undelivered(ctx, "family")
	if len(und) != 1 || und[0].Error != "the fake channel cannot send files" {
		t.Errorf("undelivered = %+v", und)
	}
}

// BenchmarkImageToPrompt reports how long the host takes from a 5 MB
// photo's arrival to the agent's prompt: the fetch written into the
// group's media folder by the real runner (os.Root, fsync, the container
// user's file), the store, the queue and the prompt; no container.
func BenchmarkImageToPrompt(b *testing.B) {
	w := newChatWorld(b, nil, store.ContainerConfig{})
	runner := agent.NewRunner(agent.Options{GroupsDir: b.TempDir(), Store: w.st})
	w.r.opt.Media = runner
	w.r.opt.MediaMaxBytes = 25e6
	w.agents.got = make(chan time.Time, 1)
	photo := append(slices.Clone(png), bytes.Repeat([]byte{0x42}, 5e6-len(png))...)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		w.deliver(b, channel.Message{ChatJID: "local:main", ID: fmt.Sprint("P", i), Text: "look",
			Attachments: []channel.Attachment{{Kind: channel.KindImage, MIME: "image/png", Fetch: bytesFetch(photo)}}})
		total += (<-w.agents.got).Sub(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-to-prompt")
}

// A group can stop counting @-mentions of the account as the trigger (on
// WhatsApp the account is the owner's own); replies to the assistant
// still count.
func TestMentionsOff(t *testing.T) {
	ctx := context.Background()
	w := newChatWorld(t, nil, store.ContainerConfig{Mentions: new(false)})
	o := store.NewOutgoing("fam@g.us", "family", "Andy: hello")
	w.st.Enqueue(ctx, o)
	w.st.MarkSent(ctx, o, []string{"BOT1"}, "Andy")
	if s := w.deliver(t, channel.Message{ID: "N1", Text: "@Dad can you fetch the kids?", MentionsSelf: true}); s.WillAnswer {
		t.Error("a mention asked for an answer in a group that turned mentions off")
	}
	if s := w.deliver(t, channel.Message{ID: "N2", Text: "thanks", ReplyTo: "BOT1"}); !s.WillAnswer {
		t.Error("a reply to the assistant did not ask for an answer")
	}
}

// Transcription costs the owner: only senders who may start a run are
// transcribed, and a group only 30 at once, then one a minute.
func TestTranscriptionIsBounded(t *testing.T) {
	voice := []byte("OggS\x00\x02voice")
	tr := &fakeTranscriber{text: "hello"}
	w := newChatWorld(t, tr, store.ContainerConfig{TriggerSenders: []string{"49151@s.whatsapp.net"}})
	note := func(id string) string {
		m, _, _ := w.st.MessageByID(context.Background(), "fam@g.us", id)
		if len(m.Attachments) != 1 {
			t.Fatalf("message %s kept %+v", id, m.Attachments)
		}
		return m.Attachments[0].Note
	}
	w.deliver(t, channel.Message{ID: "X", Sender: "4917@s.whatsapp.net", Attachments: []channel.Attachment{{Kind: channel.KindVoice, MIME: "audio/ogg", Fetch: bytesFetch(voice)}}})
	if n := note("X"); !strings.Contains(n, "only the senders in trigger_senders") || len(tr.heard) != 0 {
		t.Errorf("a voice note of a sender who may not trigger: note %q, %d transcribed", n, len(tr.heard))
	}
	for i := range 31 {
		w.deliver(t, channel.Message{ID: fmt.Sprint("V", i), Attachments: []channel.Attachment{{Kind: channel.KindVoice, MIME: "audio/ogg", Fetch: bytesFetch(voice)}}})
	}
	if len(tr.heard) != 30 || !strings.Contains(note("V30"), "30 at once") || note("V29") != "" {
		t.Errorf("%d of 31 voice notes transcribed; the 31st's note %q", len(tr.heard), note("V30"))
	}
}

// cancelling is a channel whose send succeeds just as nanoclaw stops.
type cancelling struct {
	chatChannel
	cancel context.CancelFunc
}

func (c *cancelling) Send(ctx context.Context, jid, text string) ([]string, error) {
	c.cancel()
	return c.chatChannel.Send(ctx, jid, text)
}

// A send that succeeded is marked sent, whatever happens to ctx after: the
// next start must not send it again.
func TestSentIsMarkedSentWhileStopping(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st := openStore(t)
	chats := NewChannels(st, "Andy", nil)
	chats.Add(&cancelling{cancel: cancel})
	o := store.NewOutgoing("local:main", "main", "Andy: hello")
	if err := st.Enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !chats.Deliver(ctx, o) {
		t.Error("a send that succeeded reads as not delivered")
	}
	if unsent, _ := st.Unsent(context.Background()); len(unsent) != 0 {
		t.Errorf("sent, yet kept to be sent again: %+v", unsent)
	}
}

// partial is a channel whose send gets its first part out, then fails.
type partial struct {
	chatChannel
	sends int
}

func (c *partial) Send(ctx context.Context, jid, text string) ([]string, error) {
	c.sends++
	return []string{"part-1"}, errors.New("part 2 of 2: the service refused it")
}

// A reply whose first parts went is never sent again from the start (they
// would arrive twice): it is given up at once, and the agent told.
func TestPartlySentIsNotSentAgain(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ch := &partial{}
	chats := NewChannels(st, "Andy", nil)
	chats.retry = time.Millisecond
	chats.Add(ch)
	o := store.NewOutgoing("local:main", "main", "Andy: a long answer")
	if err := st.Enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}
	if chats.Deliver(ctx, o) || ch.sends != 1 {
		t.Fatalf("a partly sent reply: delivered, or sent %d times", ch.sends)
	}
	if und, _ := st.Undelivered(ctx, "main"); len(und) != 1 || !strings.Contains(und[0].Error, "only part of it arrived") {
		t.Errorf("undelivered = %+v", und)
	}
}

// overAll is a Budgets that finds every group over its daily budget.
type overAll struct{}

func (overAll) OverBudget(context.Context, string) (gateway.BudgetHit, bool, error) {
	return gateway.BudgetHit{Limit: 500, Spent: 612, Resets: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, true, nil
}

// A budget reached: the group's chat is told once that it pauses and
// until when, the owner in main which budget; a due task of the group is
// logged as skipped, not run.
func TestBudgetReached(t *testing.T) {
	w := newChatWorld(t, nil, store.ContainerConfig{})
	w.r.opt.Budgets = overAll{}
	var mu sync.Mutex
	var recorded []error
	w.r.opt.Runs = recordFunc(func(_ context.Context, task store.Task, _ time.Time, _ string, err error) error {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, err)
		return nil
	})
	runs := func() []error {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(recorded)
	}
	w.r.BudgetReached("family", gateway.BudgetHit{Limit: 500, Spent: 612, Resets: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
	waitFor(t, "both told", func() bool { return len(w.ch.lines()) == 2 })
	lines := strings.Join(w.ch.lines(), "\n")
	if !strings.Contains(lines, "send Andy: I have used this chat's model budget for now; I answer again after 2026-12-01") ||
		!strings.Contains(lines, "send Andy: nanoclaw: group family's daily budget of 500 tokens is reached (612 tokens used)") {
		t.Errorf("told:\n%s", lines)
	}
	task := store.Task{ID: "t1", Folder: "family", ChatJID: "fam@g.us", Prompt: "p", ScheduleType: store.ScheduleInterval,
		ScheduleValue: "3600000", Timezone: "UTC", ContextMode: store.ContextIsolated, Status: store.TaskActive, CreatedAt: time.Now()}
	if err := w.st.CreateTaskWithin(context.Background(), task, store.TaskCaps{}); err != nil {
		t.Fatal(err)
	}
	w.r.RunTask(task)
	waitFor(t, "the task's run recorded", func() bool { return len(runs()) > 0 })
	if got := runs(); len(got) != 1 || !errors.Is(got[0], scheduler.ErrSkipped) || !strings.Contains(got[0].Error(), "budget") {
		t.Errorf("the task's run: %v", got)
	}
	if len(w.agents.texts()) != 0 {
		t.Errorf("an over-budget group's task ran: %q", w.agents.texts())
	}
}
