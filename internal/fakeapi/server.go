package fakeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// DefaultText is what a main turn is answered with once the script has run
// out.
const DefaultText = "(fake: no more scripted turns)"

// AuxText is what an auxiliary Messages request (one that is not a main
// turn, see IsMain) is answered with.
const AuxText = "fake"

// Server is a scripted fake of the Anthropic Messages API. It is an
// http.Handler; New also serves it on a loopback TCP port. All methods are
// safe for concurrent use.
type Server struct {
	ts *httptest.Server

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every recorded request
	script   []Turn
	requests []*Request
	mains    int // main requests received
	answered int // main requests answered
	isMain   func(*Request) bool
	extra    []*http.Server
	key      string // when set, every request must carry it (RequireCredential)
}

// RequireCredential makes the fake answer 401 authentication_error, as the
// real API does, to every request that carries neither X-Api-Key: key nor
// Authorization: Bearer key.
func (s *Server) RequireCredential(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = key
}

// New starts a fake on 127.0.0.1 at a random port. Close it when done.
func New() *Server {
	s := &Server{changed: make(chan struct{}), isMain: IsMain}
	s.ts = httptest.NewServer(s)
	return s
}

// URL is the base URL to give Claude Code as ANTHROPIC_BASE_URL, e.g.
// "http://127.0.0.1:34567" (no trailing slash).
func (s *Server) URL() string { return s.ts.URL }

// Serve serves the fake on l as well (e.g. a unix socket listener), in the
// background, until Close.
func (s *Server) Serve(l net.Listener) {
	hs := &http.Server{Handler: s}
	s.mu.Lock()
	s.extra = append(s.extra, hs)
	s.mu.Unlock()
	go hs.Serve(l) //nolint:errcheck // returns ErrServerClosed on Close
}

// Close stops every listener; streams in flight are cut.
func (s *Server) Close() {
	s.mu.Lock()
	extra := s.extra
	s.extra = nil
	s.mu.Unlock()
	for _, hs := range extra {
		hs.Close()
	}
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Script appends turns to the script: the answers, in order, to the next
// main-loop requests.
func (s *Server) Script(turns ...Turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, turns...)
}

// Remaining is the number of scripted turns not yet used.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.script)
}

// SetMatcher replaces the rule deciding which Messages requests are main
// turns (default IsMain). A nil f restores the default. f is called with
// the server's lock held and must not call the Server's methods.
func (s *Server) SetMatcher(f func(*Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		f = IsMain
	}
	s.isMain = f
}

// IsMain is the default rule for which POST /v1/messages requests are
// turns of Claude Code's agent loop and so consume a scripted turn:
//
//   - a request that offers the model tools is a main turn: the agent loop
//     always sends its tool list (Bash, Read, …; with deferred MCP tools at
//     least ToolSearch), while side calls are plain completions;
//   - a request without tools is a main turn only if it is streamed, asks
//     for more than one token and does not go to a small "haiku" model:
//     this keeps `claude --tools ""` sessions working while leaving out
//     the side calls earlier Claude Code versions are known to make —
//     quota probes (max_tokens 1), and title, topic or command-prefix
//     generation on the small fast model.
//
// Subagent requests (the Agent tool) carry tools and are main turns too:
// they are model turns a test scripts like any other.
//
// The rule looks only at the request's shape, not at prompt wording, which
// changes with every Claude Code version. Claude Code 2.1.332 in -p mode
// sends no side calls to the Messages API at all (only HEAD /api/hello
// when non-essential traffic is allowed); SetMatcher replaces the rule if
// a later version needs it.
func IsMain(r *Request) bool {
	m := r.Messages
	if m == nil || r.Method != http.MethodPost || r.Path != "/v1/messages" {
		return false
	}
	if len(m.Tools) > 0 {
		return true
	}
	return m.Stream && m.MaxTokens > 1 && !strings.Contains(strings.ToLower(m.Model), "haiku")
}

// Requests returns every request received so far, in arrival order, as
// snapshots: a request still being answered has Status 0.
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Request, len(s.requests))
	for i, r := range s.requests {
		c := *r
		out[i] = &c
	}
	return out
}

// MainRequests returns the main-turn requests so far, in order: element i
// is the request that was answered with scripted turn i.
func (s *Server) MainRequests() []*Request {
	var out []*Request
	for _, r := range s.Requests() {
		if r.Main {
			out = append(out, r)
		}
	}
	return out
}

// Main returns main-turn request n (0-based), or nil if there were not that
// many.
func (s *Server) Main(n int) *Request {
	m := s.MainRequests()
	if n < 0 || n >= len(m) {
		return nil
	}
	return m[n]
}

// WaitMain blocks until at least n main-turn requests have been answered
// (their answer decided and recorded; it may still be streaming) or ctx is
// done.
func (s *Server) WaitMain(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := s.answered, s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakeapi: %d of %d main turns: %w", got, n, ctx.Err())
		}
	}
}

// Summary lists every request received, one line each (see
// Request.String): handy in a failure message.
func (s *Server) Summary() string {
	var b strings.Builder
	for _, r := range s.Requests() {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// ServeHTTP records the request and answers it: POST /v1/messages with the
// next scripted turn (main) or AuxText (auxiliary), streamed if asked;
// count_tokens with a count; HEAD anything with an empty 200 (Claude Code
// probes HEAD /api/hello); GET /v1/models with an empty list; anything else
// with 404 not_found_error. Every request is recorded.
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	body, err := io.ReadAll(hr.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r := &Request{
		Method: hr.Method, Path: hr.URL.Path, Query: hr.URL.Query(),
		Header: hr.Header.Clone(), Body: body, Turn: -1,
	}
	isMessages := hr.Method == http.MethodPost && (r.Path == "/v1/messages" || r.Path == "/v1/messages/count_tokens")
	if isMessages {
		var mb MessagesBody
		if json.Unmarshal(body, &mb) == nil {
			r.Messages = &mb
		}
	}

	// Record and pick the turn under the lock, so concurrent requests take
	// turns in arrival order; answer outside it.
	s.mu.Lock()
	r.Seq = len(s.requests)
	var turn Turn
	if s.key != "" && hr.Header.Get("X-Api-Key") != s.key && hr.Header.Get("Authorization") != "Bearer "+s.key {
		s.requests = append(s.requests, r)
		r.Status = http.StatusUnauthorized
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write(errorBody("authentication_error", "invalid x-api-key"))
		return
	}
	if r.Path == "/v1/messages" && r.Messages != nil && s.isMain(r) {
		r.Main, r.Turn = true, s.mains
		s.mains++
		if len(s.script) > 0 {
			turn, s.script = s.script[0], s.script[1:]
		} else {
			turn = Text(DefaultText)
		}
	} else {
		turn = Text(AuxText)
	}
	s.requests = append(s.requests, r)
	s.mu.Unlock()
	if turn.react != nil {
		turn = turn.react(r)
	}

	resp := respond(r, isMessages, turn)

	// Record the answer before sending it, so that whoever reads the
	// response to its end finds it recorded.
	s.mu.Lock()
	r.Status, r.Usage = resp.status, resp.usage
	if r.Main {
		s.answered++
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	resp.write(w, r.Seq)
}

// response is an answer decided but not yet sent.
type response struct {
	status int
	body   []byte  // JSON body (nil for HEAD and for streams)
	events []Event // server-sent events, if streamed
	usage  Usage   // token counts of a message answer
}

// respond decides the answer to r: see ServeHTTP.
func respond(r *Request, isMessages bool, turn Turn) response {
	jsonResp := func(status int, b []byte) response { return response{status: status, body: b} }
	switch {
	case isMessages && r.Messages == nil:
		return jsonResp(http.StatusBadRequest, errorBody("invalid_request_error", "fakeapi: body is not a JSON Messages request"))
	case r.Path == "/v1/messages/count_tokens":
		b, _ := json.Marshal(map[string]int{"input_tokens": len(r.Body)/4 + 1})
		return jsonResp(http.StatusOK, b)
	case r.Path == "/v1/messages":
		// handled below
	case r.Method == http.MethodHead:
		return response{status: http.StatusOK} // connectivity checks, e.g. HEAD /api/hello
	case r.Method == http.MethodGet && r.Path == "/v1/models":
		return jsonResp(http.StatusOK, []byte(`{"data":[],"has_more":false,"first_id":null,"last_id":null}`))
	default:
		return jsonResp(http.StatusNotFound, errorBody("not_found_error", "fakeapi: no such endpoint: "+r.Method+" "+r.Path))
	}
	if turn.err != nil {
		return jsonResp(turn.err.status, errorBody(turn.err.typ, turn.err.message))
	}
	if len(turn.blocks) == 0 {
		turn = Text(DefaultText) // a React that answered nothing
	}
	usage := usageFor(r.Body, turn)
	model := r.Messages.Model
	if !r.Messages.Stream {
		b, _ := json.Marshal(fullMessage(turn, r.Seq, model, usage))
		return response{status: http.StatusOK, body: b, usage: usage}
	}
	return response{status: http.StatusOK, events: events(turn, r.Seq, model, usage), usage: usage}
}

// write sends the response; errors mean the client went away.
func (resp response) write(w http.ResponseWriter, seq int) {
	w.Header().Set("request-id", fmt.Sprintf("req_fake%04d", seq))
	switch {
	case resp.events != nil:
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(resp.status)
		writeEvents(w, resp.events)
	case resp.body != nil:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.status)
		w.Write(resp.body) //nolint:errcheck // the client went away; nothing to do
	default:
		w.WriteHeader(resp.status)
	}
}
