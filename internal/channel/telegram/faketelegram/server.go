// Package faketelegram is a fake of Telegram's Bot API for tests, served on
// loopback: the Telegram channel (and the daemon through it) talks to it
// as to api.telegram.org, given its URL as the server URL.
//
// It keeps one bot, its users' messages as updates (getUpdates with
// Telegram's offset semantics: asking for an offset forgets every update
// before it; the long poll's timeout honoured), and everything the bot
// did: messages with their HTML checked as Telegram checks it (a malformed
// one is refused with 400 "can't parse entities"), files, reactions (400
// REACTION_INVALID for an emoji Telegram does not offer), chat actions.
// A test makes users write (Post), scripts failures (Flood, Fail, Down,
// Drop, Revoke), reads what the bot sent (Sent) and waits for conditions
// (Wait).
package faketelegram

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// Options configures a fake.
type Options struct {
	Token    string // the bot's token; "" means DefaultToken
	Username string // the bot's username; "" means DefaultUsername
}

// The default bot.
const (
	DefaultToken    = "7000001:AAtest-token_abcdefghijklmnopqrstu"
	DefaultUsername = "nanoclaw_test_bot"
)

// Server is a fake Bot API. All methods are safe for concurrent use.
type Server struct {
	ts       *httptest.Server
	token    string
	botID    int64
	username string

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	revoked  bool
	down     bool
	nextID   int64    // the next update id
	pending  []update // updates not yet forgotten
	offset   int64    // the highest offset a getUpdates asked for
	lastMsg  int      // the last message id given, in any chat
	exists   map[[2]int64]bool
	files    map[string][]byte // file id → content
	sent     []Sent
	calls    []Call
	flood    []time.Duration // the next sends' 429s
	failures []int           // the next sends' 5xx statuses
	migrated map[int64]int64 // chat → the supergroup it became
}

type update struct {
	id  int64
	raw json.RawMessage
}

// New starts a fake on 127.0.0.1 at a random port. Close it when done.
func New(opts Options) *Server {
	s := &Server{
		token: cmp.Or(opts.Token, DefaultToken), username: cmp.Or(opts.Username, DefaultUsername),
		changed: make(chan struct{}), nextID: 100, exists: map[[2]int64]bool{},
		files: map[string][]byte{},
	}
	id, _, _ := strings.Cut(s.token, ":")
	s.botID, _ = strconv.ParseInt(id, 10, 64)
	s.ts = httptest.NewServer(s)
	return s
}

// Migrate makes group chat from the supergroup to, as Telegram does: sends
// to from are refused with a 400 that names to (the service message in the
// old chat is the test's to post).
func (s *Server) Migrate(from, to int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated == nil {
		s.migrated = map[int64]int64{}
	}
	s.migrated[from] = to
}

// URL is the server URL to give the channel, e.g. "http://127.0.0.1:34567".
func (s *Server) URL() string { return s.ts.URL }

// Client is an HTTP client for the fake.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Token is the bot's token.
func (s *Server) Token() string { return s.token }

// BotID is the bot's user id.
func (s *Server) BotID() int64 { return s.botID }

// Username is the bot's username, without the @.
func (s *Server) Username() string { return s.username }

// Close stops the fake; long polls in flight are cut, and requests that
// arrive meanwhile go unanswered.
func (s *Server) Close() {
	s.Down(true)
	s.ts.Close()
}

// Sent is one thing the bot did, as the fake received it.
type Sent struct {
	Method    string // "sendMessage", "sendPhoto", …, "setMessageReaction", "sendChatAction"
	Chat      int64
	MessageID int    // the id the fake gave the message; 0 for reactions and actions
	Text      string // as sent (HTML with parse_mode HTML), or a file's caption
	ParseMode string
	Shown     string // the text as Telegram shows it: HTML tags dropped, entities decoded
	ReplyTo   int    // reply_parameters' message_id
	FileName  string // a file's name
	File      []byte // a file's content
	Target    int    // the message reacted to
	Emoji     string // the reaction; "" when removed
	Action    string // the chat action
	Time      time.Time
}

// Call is one request the fake answered.
type Call struct {
	Method string
	Offset int64 // getUpdates' offset
	Status int
	Time   time.Time
}

// Sent returns what the bot did, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// Calls returns every request answered, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Offset is the highest offset the bot asked for: every update before it
// is forgotten (acknowledged).
func (s *Server) Offset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset
}

// Acked reports whether update id is acknowledged: a getUpdates asked for
// an offset past it.
func (s *Server) Acked(id int64) bool { return s.Offset() > id }

// Pending is the number of updates not yet acknowledged.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Wait blocks until cond holds or ctx ends; cond is called without the
// fake's lock, after every change.
func (s *Server) Wait(ctx context.Context, what string, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("faketelegram: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// changedLocked wakes waiters and long polls; s.mu is held.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Flood makes the fake answer the bot's next n sends (messages and files)
// with 429 Too Many Requests, asking it to retry after retryAfter (whole
// seconds, at least 1).
func (s *Server) Flood(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.flood = append(s.flood, retryAfter)
	}
}

// Fail makes the fake answer the bot's next n sends with status (a 5xx).
func (s *Server) Fail(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// Down cuts every request's connection without an answer while down is
// true, as a lost network does.
func (s *Server) Down(down bool) {
	s.mu.Lock()
	s.down = down
	s.changedLocked()
	s.mu.Unlock()
	if down {
		s.ts.CloseClientConnections()
	}
}

// Drop cuts the connections open now (a long poll in flight among them);
// later requests are answered.
func (s *Server) Drop() { s.ts.CloseClientConnections() }

// Revoke makes the token invalid: every request is answered 401.
func (s *Server) Revoke() {
	s.mu.Lock()
	s.revoked = true
	s.changedLocked()
	s.mu.Unlock()
}

// User is a Telegram user.
type User struct {
	ID        int64
	FirstName string
	LastName  string
	Username  string
}

// Chat is a chat: ID negative for a group, Type "private", "group",
// "supergroup" or "channel".
type Chat struct {
	ID    int64
	Type  string
	Title string
}

// Private is the private chat of u with the bot.
func Private(u User) Chat { return Chat{ID: u.ID, Type: "private"} }

// Media is a file a message carries.
type Media struct {
	Kind string // "photo", "document", "voice", "audio", "video", "sticker"
	MIME string
	Name string
	Data []byte
	Size int64 // the claimed size; 0 means len(Data)
}

// In is a message a user sends.
type In struct {
	Chat       Chat
	From       User
	Text       string // the text, or the media's caption
	Media      *Media
	ReplyTo    int  // the id of a message of the chat it replies to
	MentionBot bool // "@<bot username> " before the text, marked as a mention
}

// Posted names a message the fake queued as an update.
type Posted struct {
	UpdateID  int64
	MessageID int
}

// Post makes a user's message arrive as an update.
func (s *Server) Post(in In) Posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Message ids are unique in the whole fake, not only in their chat
	// as Telegram promises: a test can name a message by its id alone.
	s.lastMsg++
	id := s.lastMsg
	s.exists[[2]int64{in.Chat.ID, int64(id)}] = true
	msg := map[string]any{
		"message_id": id, "date": time.Now().Unix(),
		"chat": chatJSON(in.Chat, in.From),
		"from": map[string]any{"id": in.From.ID, "is_bot": false, "first_name": in.From.FirstName, "last_name": in.From.LastName, "username": in.From.Username},
	}
	text := in.Text
	var entities []map[string]any
	if in.MentionBot {
		mention := "@" + s.username
		text = mention + " " + text
		entities = append(entities, map[string]any{"type": "mention", "offset": 0, "length": len(utf16.Encode([]rune(mention)))})
	}
	textKey, entKey := "text", "entities"
	if in.Media != nil {
		textKey, entKey = "caption", "caption_entities"
		s.addMedia(msg, in.Media)
	}
	if text != "" {
		msg[textKey] = text
	}
	if entities != nil {
		msg[entKey] = entities
	}
	if in.ReplyTo > 0 {
		msg["reply_to_message"] = map[string]any{"message_id": in.ReplyTo, "date": time.Now().Unix(), "chat": chatJSON(in.Chat, in.From)}
	}
	upd := s.queueLocked(map[string]any{"message": msg})
	return Posted{UpdateID: upd, MessageID: id}
}

// PostRaw queues an update whose content (all but update_id) is given, such
// as {"edited_message": …}; it returns the update's id.
func (s *Server) PostRaw(content map[string]any) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queueLocked(content)
}

func (s *Server) queueLocked(content map[string]any) int64 {
	id := s.nextID
	s.nextID++
	content["update_id"] = id
	raw, err := json.Marshal(content)
	if err != nil {
		panic(err)
	}
	s.pending = append(s.pending, update{id: id, raw: raw})
	s.changedLocked()
	return id
}

// chatJSON is c as the Bot API shows it; a private chat carries its
// user's names.
func chatJSON(c Chat, from User) map[string]any {
	m := map[string]any{"id": c.ID, "type": cmp.Or(c.Type, "private")}
	if c.Title != "" {
		m["title"] = c.Title
	}
	if m["type"] == "private" {
		m["first_name"], m["last_name"], m["username"] = from.FirstName, from.LastName, from.Username
	}
	return m
}

// addMedia stores m's file and describes it in msg; s.mu is held.
func (s *Server) addMedia(msg map[string]any, m *Media) {
	fileID := "file-" + rand.Text()[:12]
	s.files[fileID] = m.Data
	size := cmp.Or(m.Size, int64(len(m.Data)))
	f := map[string]any{"file_id": fileID, "file_unique_id": fileID, "file_size": size}
	if m.MIME != "" {
		f["mime_type"] = m.MIME
	}
	if m.Name != "" {
		f["file_name"] = m.Name
	}
	switch m.Kind {
	case "photo":
		small := map[string]any{"file_id": fileID + "-s", "file_unique_id": fileID + "-s", "width": 90, "height": 60, "file_size": 100}
		s.files[fileID+"-s"] = []byte("small")
		msg["photo"] = []any{small, map[string]any{"file_id": fileID, "file_unique_id": fileID, "width": 1280, "height": 853, "file_size": size}}
	case "sticker":
		f["type"], f["width"], f["height"] = "regular", 512, 512
		msg["sticker"] = f
	default:
		msg[m.Kind] = f
	}
}

// ServeHTTP answers the Bot API's methods and file downloads.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down, revoked := s.down, s.revoked
	s.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	if path, ok := strings.CutPrefix(r.URL.Path, "/file/bot"+s.token+"/"); ok && !revoked {
		s.download(w, path)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, _ := strings.Cut(rest, "/")
	if !ok || token != s.token || revoked {
		s.answerErr(w, "?", http.StatusUnauthorized, "Unauthorized", 0)
		return
	}
	p, err := readParams(r)
	if err != nil {
		s.answerErr(w, method, http.StatusBadRequest, "Bad Request: "+err.Error(), 0)
		return
	}
	switch method {
	case "getMe":
		s.answer(w, method, map[string]any{"id": s.botID, "is_bot": true, "first_name": "NanoClaw test", "username": s.username})
	case "getUpdates":
		s.getUpdates(w, r, p)
	case "sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendAudio", "sendVideo":
		s.send(w, method, p)
	case "setMessageReaction":
		s.react(w, p)
	case "sendChatAction":
		s.chatAction(w, p)
	case "getFile":
		s.getFile(w, p)
	default:
		s.answerErr(w, method, http.StatusNotFound, "Not Found: method not found", 0)
	}
}

// params are a request's parameters, however encoded.
type params struct {
	values map[string]string
	files  map[string]upload
}

type upload struct {
	name string
	data []byte
}

func (p params) get(k string) string { return p.values[k] }

func (p params) int(k string) int64 {
	v, _ := strconv.ParseInt(p.values[k], 10, 64)
	return v
}

// readParams reads JSON, form or multipart parameters; JSON values that
// are not strings are kept as their JSON text, as multipart carries them.
func readParams(r *http.Request) (params, error) {
	p := params{values: map[string]string{}, files: map[string]upload{}}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil && err != io.EOF {
			return p, err
		}
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				p.values[k] = str
			} else {
				p.values[k] = string(v)
			}
		}
	case "multipart/form-data":
		// The library sends a call without parameters (getMe) as an empty
		// body, not even a closing boundary; Telegram takes it.
		if err := r.ParseMultipartForm(64 << 20); errors.Is(err, io.EOF) || (err != nil && strings.HasSuffix(err.Error(), "EOF")) {
			return p, nil
		} else if err != nil {
			return p, err
		}
		for k, v := range r.MultipartForm.Value {
			p.values[k] = v[0]
		}
		for k, fhs := range r.MultipartForm.File {
			f, err := fhs[0].Open()
			if err != nil {
				return p, err
			}
			data, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return p, err
			}
			p.files[k] = upload{name: fhs[0].Filename, data: data}
		}
	default:
		if err := r.ParseForm(); err != nil {
			return p, err
		}
		for k, v := range r.Form {
			p.values[k] = v[0]
		}
	}
	return p, nil
}

// answer writes a successful result.
func (s *Server) answer(w http.ResponseWriter, method string, result any) {
	s.record(method, 0, http.StatusOK)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result}) //nolint:errcheck // the client is gone
}

// answerErr writes a failure as the Bot API does.
func (s *Server) answerErr(w http.ResponseWriter, method string, status int, desc string, retryAfter int) {
	s.record(method, 0, status)
	body := map[string]any{"ok": false, "error_code": status, "description": desc}
	if retryAfter > 0 {
		body["parameters"] = map[string]any{"retry_after": retryAfter}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) //nolint:errcheck // the client is gone
}

func (s *Server) record(method string, offset int64, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Method: method, Offset: offset, Status: status, Time: time.Now()})
	s.changedLocked()
}

// getUpdates forgets the updates before offset and answers those after,
// waiting up to timeout seconds for one.
func (s *Server) getUpdates(w http.ResponseWriter, r *http.Request, p params) {
	offset, timeout := p.int("offset"), p.int("timeout")
	limit := int(p.int("limit"))
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	s.mu.Lock()
	if offset > s.offset {
		s.offset = offset
		s.pending = slices.DeleteFunc(s.pending, func(u update) bool { return u.id < offset })
	}
	s.calls = append(s.calls, Call{Method: "getUpdates", Offset: offset, Status: http.StatusOK, Time: time.Now()})
	s.changedLocked()
	s.mu.Unlock()
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		var out []json.RawMessage
		for _, u := range s.pending {
			if len(out) < limit {
				out = append(out, u.raw)
			}
		}
		ch, revoked, down := s.changed, s.revoked, s.down
		s.mu.Unlock()
		switch {
		case down:
			return // Down cut the connection already
		case revoked:
			s.answerErr(w, "getUpdates", http.StatusUnauthorized, "Unauthorized", 0)
			return
		case len(out) > 0 || timeout <= 0:
			if out == nil {
				out = []json.RawMessage{}
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": out}) //nolint:errcheck // the client is gone
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			timeout = 0
		case <-r.Context().Done():
			return
		}
	}
}

// scripted takes the next scripted 429 or 5xx, if any.
func (s *Server) scripted() (status, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.flood) > 0 {
		d := s.flood[0]
		s.flood = s.flood[1:]
		return http.StatusTooManyRequests, max(int((d+time.Second-1)/time.Second), 1)
	}
	if len(s.failures) > 0 {
		st := s.failures[0]
		s.failures = s.failures[1:]
		return st, 0
	}
	return 0, 0
}

// fileField is the parameter that carries each send method's file.
var fileField = map[string]string{"sendPhoto": "photo", "sendDocument": "document", "sendVoice": "voice", "sendAudio": "audio", "sendVideo": "video"}

// send answers sendMessage and the file methods.
func (s *Server) send(w http.ResponseWriter, method string, p params) {
	if status, retry := s.scripted(); status != 0 {
		desc := "Internal Server Error"
		if retry > 0 {
			desc = fmt.Sprintf("Too Many Requests: retry after %d", retry)
		}
		s.answerErr(w, method, status, desc, retry)
		return
	}
	chat := p.int("chat_id")
	if chat == 0 {
		s.answerErr(w, method, http.StatusBadRequest, "Bad Request: chat not found", 0)
		return
	}
	s.mu.Lock()
	to := s.migrated[chat]
	s.mu.Unlock()
	if to != 0 {
		s.record(method, 0, http.StatusBadRequest)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error_code": 400, //nolint:errcheck // the client is gone
			"description": "Bad Request: group chat was upgraded to a supergroup chat", "parameters": map[string]any{"migrate_to_chat_id": to}})
		return
	}
	out := Sent{Method: method, Chat: chat, ParseMode: p.get("parse_mode"), Time: time.Now()}
	textKey, limit := "caption", 1024
	if method == "sendMessage" {
		textKey, limit = "text", 4096
	} else {
		f, ok := p.files[fileField[method]]
		if !ok || len(f.data) == 0 {
			s.answerErr(w, method, http.StatusBadRequest, "Bad Request: there is no file in the request", 0)
			return
		}
		out.FileName, out.File = f.name, f.data
	}
	out.Text = p.get(textKey)
	out.Shown = out.Text
	if out.ParseMode == "HTML" {
		shown, err := ParseHTML(out.Text)
		if err != nil {
			s.answerErr(w, method, http.StatusBadRequest, "Bad Request: "+err.Error(), 0)
			return
		}
		out.Shown = shown
	} else if out.ParseMode != "" {
		s.answerErr(w, method, http.StatusBadRequest, "Bad Request: unsupported parse_mode in this fake", 0)
		return
	}
	switch n := len(utf16.Encode([]rune(out.Shown))); {
	case method == "sendMessage" && strings.TrimSpace(out.Shown) == "":
		s.answerErr(w, method, http.StatusBadRequest, "Bad Request: message text is empty", 0)
		return
	case n > limit && method == "sendMessage":
		s.answerErr(w, method, http.StatusBadRequest, "Bad Request: message is too long", 0)
		return
	case n > limit:
		s.answerErr(w, method, http.StatusBadRequest, "Bad Request: message caption is too long", 0)
		return
	}
	if rp := p.get("reply_parameters"); rp != "" {
		var r struct {
			MessageID                int  `json:"message_id"`
			AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
		}
		if err := json.Unmarshal([]byte(rp), &r); err != nil {
			s.answerErr(w, method, http.StatusBadRequest, "Bad Request: can't parse reply parameters JSON object", 0)
			return
		}
		s.mu.Lock()
		found := s.exists[[2]int64{chat, int64(r.MessageID)}]
		s.mu.Unlock()
		if !found && !r.AllowSendingWithoutReply {
			s.answerErr(w, method, http.StatusBadRequest, "Bad Request: message to be replied not found", 0)
			return
		}
		out.ReplyTo = r.MessageID
	}
	s.mu.Lock()
	s.lastMsg++
	out.MessageID = s.lastMsg
	s.exists[[2]int64{chat, int64(out.MessageID)}] = true
	s.sent = append(s.sent, out)
	s.mu.Unlock()
	s.answer(w, method, map[string]any{"message_id": out.MessageID, "date": out.Time.Unix(),
		"chat": map[string]any{"id": chat, "type": chatType(chat)}, "from": map[string]any{"id": s.botID, "is_bot": true, "first_name": "NanoClaw test"}})
}

func chatType(id int64) string {
	if id < 0 {
		return "supergroup"
	}
	return "private"
}

// Reactions are the emoji Telegram offers as reactions.
var Reactions = strings.Fields("👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡")

func (s *Server) react(w http.ResponseWriter, p params) {
	chat, msg := p.int("chat_id"), p.int("message_id")
	var rs []struct {
		Type  string `json:"type"`
		Emoji string `json:"emoji"`
	}
	if r := p.get("reaction"); r != "" {
		if err := json.Unmarshal([]byte(r), &rs); err != nil {
			s.answerErr(w, "setMessageReaction", http.StatusBadRequest, "Bad Request: can't parse reaction types JSON object", 0)
			return
		}
	}
	s.mu.Lock()
	found := s.exists[[2]int64{chat, msg}]
	s.mu.Unlock()
	switch {
	case !found:
		s.answerErr(w, "setMessageReaction", http.StatusBadRequest, "Bad Request: message to react not found", 0)
		return
	case len(rs) > 1:
		s.answerErr(w, "setMessageReaction", http.StatusBadRequest, "Bad Request: REACTIONS_TOO_MANY", 0)
		return
	}
	out := Sent{Method: "setMessageReaction", Chat: chat, Target: int(msg), Time: time.Now()}
	if len(rs) == 1 {
		if rs[0].Type != "emoji" || !slices.Contains(Reactions, rs[0].Emoji) {
			s.answerErr(w, "setMessageReaction", http.StatusBadRequest, "Bad Request: REACTION_INVALID", 0)
			return
		}
		out.Emoji = rs[0].Emoji
	}
	s.mu.Lock()
	s.sent = append(s.sent, out)
	s.mu.Unlock()
	s.answer(w, "setMessageReaction", true)
}

func (s *Server) chatAction(w http.ResponseWriter, p params) {
	action := p.get("action")
	if action == "" {
		s.answerErr(w, "sendChatAction", http.StatusBadRequest, "Bad Request: wrong parameter action in request", 0)
		return
	}
	s.mu.Lock()
	s.sent = append(s.sent, Sent{Method: "sendChatAction", Chat: p.int("chat_id"), Action: action, Time: time.Now()})
	s.mu.Unlock()
	s.answer(w, "sendChatAction", true)
}

// botFileLimit is the largest file the Bot API gives a bot.
const botFileLimit = 20 << 20

func (s *Server) getFile(w http.ResponseWriter, p params) {
	id := p.get("file_id")
	s.mu.Lock()
	data, ok := s.files[id]
	s.mu.Unlock()
	switch {
	case !ok:
		s.answerErr(w, "getFile", http.StatusBadRequest, "Bad Request: invalid file_id", 0)
	case len(data) > botFileLimit:
		s.answerErr(w, "getFile", http.StatusBadRequest, "Bad Request: file is too big", 0)
	default:
		s.answer(w, "getFile", map[string]any{"file_id": id, "file_unique_id": id, "file_size": len(data), "file_path": "documents/" + id})
	}
}

func (s *Server) download(w http.ResponseWriter, path string) {
	id, ok := strings.CutPrefix(path, "documents/")
	s.mu.Lock()
	data, found := s.files[id]
	s.mu.Unlock()
	s.record("file", 0, http.StatusOK)
	if !ok || !found {
		http.NotFound(w, nil)
		return
	}
	w.Write(data) //nolint:errcheck // the client is gone
}
