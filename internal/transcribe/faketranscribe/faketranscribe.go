// Package faketranscribe is a scripted fake of an OpenAI-compatible
// transcription endpoint (POST /v1/audio/transcriptions) for tests: the
// daemon, given TRANSCRIBE_URL pointing at it, transcribes voice notes
// offline. A test scripts the answers (a transcript, an error status, a
// slow answer), then asserts on every request: the form's model, response
// format, file name, content type and audio, and the key.
//
// It checks what a real endpoint checks — a multipart form with a model and
// a file, and the key when RequireKey set one — and answers a request that
// fails a check as OpenAI does, with 400 or 401 and an error body.
//
// A daemon under test reaches it like this:
//
//	fake := faketranscribe.New()
//	defer fake.Close()
//	fake.RequireKey("test-key")
//	fake.Script(faketranscribe.Text("@Andy what's on today?"))
//	env = append(env, "TRANSCRIBE_URL="+fake.URL(), "TRANSCRIBE_API_KEY=test-key")
//	… send the voice note, then fake.Wait(ctx, 1) and fake.Requests()
package faketranscribe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Path is the endpoint's path; URL returns it on the fake's address.
const Path = "/v1/audio/transcriptions"

// DefaultTranscript is what a request is answered with once the script has
// run out.
const DefaultTranscript = "(fake transcript)"

// maxBody bounds a request the fake reads: more than any audio a test sends.
const maxBody = 64 << 20

// Reply is one scripted answer. Text and Error make the usual ones.
type Reply struct {
	Status int         // 0: 200
	Header http.Header // extra headers, e.g. Location for a redirect
	Body   []byte
	// Delay holds the answer back this long, or until the client gives up:
	// a slow endpoint.
	Delay time.Duration
}

// Text is a 200 answer carrying transcript, as {"text": transcript}.
func Text(transcript string) Reply {
	b, _ := json.Marshal(map[string]string{"text": transcript})
	return Reply{Status: http.StatusOK, Body: b}
}

// Error is an answer of status with OpenAI's error body carrying message.
func Error(status int, message string) Reply {
	return Reply{Status: status, Body: errorBody(message)}
}

func errorBody(message string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": "invalid_request_error"}})
	return b
}

// Request is one request the fake received, as it read it.
type Request struct {
	Seq    int // 0-based arrival order
	Method string
	Path   string
	Header http.Header
	// ContentLength is the body's declared length; -1 when it came
	// chunked.
	ContentLength int64
	// Fields are the form's text fields (model, response_format, …); the
	// last value of each.
	Fields map[string]string
	// FileName and FileType are the file part's name and Content-Type;
	// Audio its bytes. All empty when no file part came.
	FileName string
	FileType string
	Audio    []byte
	// Problem says which check the request failed ("" for none); Status is
	// what it was answered (0 while it is being answered).
	Problem string
	Status  int
}

// Model is the form's model field.
func (r *Request) Model() string { return r.Fields["model"] }

// Server is the fake endpoint: an http.Handler that New also serves on a
// loopback port. All methods are safe for concurrent use.
type Server struct {
	ts *httptest.Server

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every answered request
	key      string
	script   []Reply
	requests []*Request
}

// New starts a fake on 127.0.0.1 at a random port. Close it when done.
func New() *Server {
	s := &Server{changed: make(chan struct{})}
	s.ts = httptest.NewServer(s)
	return s
}

// URL is the endpoint to give as TRANSCRIBE_URL, e.g.
// "http://127.0.0.1:34567/v1/audio/transcriptions".
func (s *Server) URL() string { return s.ts.URL + Path }

// Close stops the fake; a delayed answer in flight is cut.
func (s *Server) Close() {
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// RequireKey makes the fake answer 401, as OpenAI does, to every request
// without "Authorization: Bearer key". "" accepts any or none.
func (s *Server) RequireKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = key
}

// Script appends answers: in order, to the next requests that pass the
// checks.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Requests returns every request received so far, in arrival order, as
// snapshots.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

// Wait blocks until at least n requests have been answered (their answer
// recorded; it may still be on its way) or ctx is done.
func (s *Server) Wait(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got := 0
		for _, r := range s.requests {
			if r.Status != 0 {
				got++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("faketranscribe: %d of %d requests answered: %w", got, n, ctx.Err())
		}
	}
}

// ServeHTTP records the request, checks it and answers it: a request that
// fails a check with 404, 401 or 400 and an error body naming the problem,
// any other with the next scripted Reply (DefaultTranscript when the
// script has run out).
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	r := &Request{Method: hr.Method, Path: hr.URL.Path, Header: hr.Header.Clone(), ContentLength: hr.ContentLength, Fields: map[string]string{}}
	readErr := readForm(hr, r)

	s.mu.Lock()
	r.Seq = len(s.requests)
	s.requests = append(s.requests, r)
	reply := Text(DefaultTranscript)
	switch {
	case r.Method != http.MethodPost || r.Path != Path:
		r.Problem = "no such endpoint: " + r.Method + " " + r.Path
		reply = Error(http.StatusNotFound, "faketranscribe: "+r.Problem)
	case s.key != "" && hr.Header.Get("Authorization") != "Bearer "+s.key:
		r.Problem = "no or wrong key"
		reply = Error(http.StatusUnauthorized, "Incorrect API key provided")
	case readErr != nil:
		r.Problem = readErr.Error()
		reply = Error(http.StatusBadRequest, "faketranscribe: "+r.Problem)
	case r.Fields["model"] == "":
		r.Problem = "no model field"
		reply = Error(http.StatusBadRequest, "faketranscribe: you must provide a model parameter")
	case r.FileName == "" || len(r.Audio) == 0:
		r.Problem = "no file, or an empty one"
		reply = Error(http.StatusBadRequest, "faketranscribe: a file with a name is required")
	case len(s.script) > 0:
		reply, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()

	if reply.Delay > 0 {
		t := time.NewTimer(reply.Delay)
		select {
		case <-t.C:
		case <-hr.Context().Done():
			t.Stop()
		}
	}
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}

	// Record the answer before sending it, so that whoever has read the
	// answer finds it recorded.
	s.mu.Lock()
	r.Status = status
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	for k, v := range reply.Header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	w.Write(reply.Body) //nolint:errcheck // the client went away; nothing to do
}

// readForm reads hr's multipart form into r: text fields and the one file
// part, "file".
func readForm(hr *http.Request, r *Request) error {
	mt, params, err := mime.ParseMediaType(hr.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return fmt.Errorf("content type %q is not multipart/form-data with a boundary", hr.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(io.LimitReader(hr.Body, maxBody), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the form: %w", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return fmt.Errorf("reading part %q: %w", p.FormName(), err)
		}
		if p.FormName() == "file" {
			r.FileName, r.FileType, r.Audio = p.FileName(), p.Header.Get("Content-Type"), b
		} else {
			r.Fields[p.FormName()] = string(b)
		}
	}
}
