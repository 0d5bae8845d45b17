package control

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// maxMessageBody bounds a message post without files: the text's 64 KiB may
// grow six-fold when every byte is JSON-escaped (\u0001), plus the other
// fields.
const maxMessageBody = 6*local.MaxTextBytes + 4096

// MessageBodyLimit is the largest message post a channel with media limit
// mediaMax accepts: the text's, plus its files together at mediaMax in
// base64 (4 bytes for every 3), plus each file's escaped name and keys.
func MessageBodyLimit(mediaMax int64) int64 {
	return maxMessageBody + (mediaMax+2)/3*4 + local.MaxFiles*(6*local.MaxFileNameBytes+64)
}

// MessageRequest is the body of POST /v1/local/messages.
type MessageRequest struct {
	// Chat is the local chat, "local:<folder>".
	Chat string `json:"chat"`
	// Sender is the display name; empty means the daemon's user name.
	Sender string `json:"sender,omitempty"`
	// Text is the message, at most local.MaxTextBytes bytes.
	Text string `json:"text"`
	// ID is a message id chosen by the client (local.ValidateID), so that
	// a retry after a failure cannot store the message twice; empty means
	// a new random one.
	ID string `json:"id,omitempty"`
	// ReplyTo is the id of the message of the chat this one replies to.
	ReplyTo string `json:"reply_to,omitempty"`
	// Files are attached (at most local.MaxFiles, together at most the
	// daemon's MEDIA_MAX_BYTES); with files, Text is an optional caption.
	Files []local.DraftFile `json:"files,omitempty"`
	// Wait asks for an NDJSON stream of the message's events up to the end
	// of the run that answers it, instead of a Receipt.
	Wait bool `json:"wait,omitempty"`
}

// Receipt answers POST /v1/local/messages without wait: the message is
// stored at position Seq of Chat. Duplicate means a message with this ID was
// stored before and nothing new was (Seq is 0 then).
type Receipt struct {
	Chat       string `json:"chat"`
	ID         string `json:"id"`
	Seq        int64  `json:"seq"`
	WillAnswer bool   `json:"will_answer"`
	Duplicate  bool   `json:"duplicate,omitempty"`
	// Taken is what the host answered when it took the message itself
	// (the owner's answer to an egress question): no run starts.
	Taken string `json:"taken,omitempty"`
}

// notRegistered is the 404 of a message to a chat no group is bound to.
func notRegistered(w http.ResponseWriter, chat string) {
	folder, _ := local.ParseChat(chat)
	writeError(w, http.StatusNotFound, "%s is not a registered group, so the message was not stored: register the group %q first", chat, folder)
}

// postLocalMessage is POST /v1/local/messages: it delivers one message to a
// local chat and answers once the message is stored — with a Receipt, or,
// when wait is set, with an NDJSON stream: the message's stored event, then
// every typing and reply event of the chat, ending after the done event of
// the run that covered the message (right after the stored event when the
// message starts no run or is a duplicate). The stream carries the file
// and reaction events of the chat too.
func (s *Server) postLocalMessage(w http.ResponseWriter, r *http.Request) {
	if s.opt.Local == nil {
		writeError(w, http.StatusServiceUnavailable, "the local channel is not enabled in this daemon")
		return
	}
	q, status, err := s.readMessage(w, r)
	if err != nil {
		writeError(w, status, "%v", err)
		return
	}
	draft := local.Draft{Chat: q.Chat, Sender: q.Sender, Text: q.Text, ID: q.ID, ReplyTo: q.ReplyTo, Files: q.Files}
	if err := draft.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ctx := r.Context()
	if s.opt.Registered != nil {
		ok, err := s.opt.Registered(ctx, q.Chat)
		if err != nil {
			s.log.Warn("look up local chat", "chat", q.Chat, "err", err)
			writeError(w, http.StatusInternalServerError, "look up %s: %v", q.Chat, err)
			return
		}
		if !ok {
			notRegistered(w, q.Chat)
			return
		}
	}

	// Subscribe before delivering: with a fast agent even the reply may be
	// published before Deliver returns.
	events, cancel := s.opt.Local.Subscribe(q.Chat)
	defer cancel()
	stored, err := s.opt.Local.Deliver(ctx, draft)
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, local.ErrNotConnected), errors.Is(err, local.ErrClosed):
			status = http.StatusServiceUnavailable
		case errors.Is(err, local.ErrInProgress):
			status = http.StatusConflict
		case errors.Is(err, channel.ErrTooLarge):
			status = http.StatusRequestEntityTooLarge
		}
		s.log.Warn("local message not stored", "chat", q.Chat, "err", err)
		writeError(w, status, "%v", err)
		return
	}
	if stored.Seq == 0 {
		// Nothing new stored. A fresh random id cannot have been stored
		// before, so the router dropped the message: no group is bound to
		// the chat. A client's id may be a retry of a stored message; with
		// Registered checked above it surely is.
		if q.ID == "" {
			notRegistered(w, q.Chat)
			return
		}
		stored.Duplicate = true
	}
	if !q.Wait {
		ipc.WriteJSON(w, http.StatusOK, Receipt{Chat: q.Chat, ID: stored.ID, Seq: stored.Seq, WillAnswer: stored.WillAnswer, Duplicate: stored.Duplicate, Taken: stored.Taken})
		return
	}

	out, err := startNDJSON(w)
	if err == nil {
		err = out.send(stored)
	}
	if err != nil || !stored.WillAnswer {
		return
	}
	for {
		var ev local.Event
		var ok bool
		select {
		case <-ctx.Done(): // client gone, or the daemon stopping
			return
		case ev, ok = <-events:
		}
		if !ok {
			return // channel closed: the daemon is stopping
		}
		switch ev.Type {
		case local.EventReply, local.EventTyping, local.EventFile, local.EventReaction, local.EventLagged:
		case local.EventDone:
			if !ev.Covers(stored.Seq) {
				continue // an earlier run ended; ours is still to come
			}
		default:
			continue // stored events: this message's was sent first
		}
		if out.send(ev) != nil || ev.Type == local.EventDone || ev.Type == local.EventLagged {
			return
		}
	}
}

// readMessage reads a message post: at most MessageBodyLimit of the
// channel's media limit, refused with a 413 (before it is read when its
// length says it is larger: decodeBody would make that a 400); then strictly
// decoded (finding 12), a 400 when that fails.
func (s *Server) readMessage(w http.ResponseWriter, r *http.Request) (MessageRequest, int, error) {
	mediaMax := s.opt.Local.MediaMax()
	limit := MessageBodyLimit(mediaMax)
	tooLarge := fmt.Errorf("message larger than the %d bytes the daemon accepts: a message's files may be %d bytes together (MEDIA_MAX_BYTES)", limit, mediaMax)
	if r.ContentLength > limit {
		return MessageRequest{}, http.StatusRequestEntityTooLarge, tooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return MessageRequest{}, http.StatusRequestEntityTooLarge, tooLarge
	case err != nil:
		return MessageRequest{}, http.StatusBadRequest, fmt.Errorf("request body: %v", err)
	case len(bytes.TrimSpace(b)) == 0:
		return MessageRequest{}, http.StatusBadRequest, errors.New("empty request body: want a JSON object")
	}
	var q MessageRequest
	if err := ipc.DecodeStrict(b, &q); err != nil {
		return MessageRequest{}, http.StatusBadRequest, fmt.Errorf("request body: %w", err)
	}
	return q, http.StatusOK, nil
}

// getLocalEvents is GET /v1/local/events?chat=local:<folder>: an NDJSON
// stream of every event of the chat until the client hangs up. The 200 and
// its headers are flushed once the subscription is in place, so events of a
// message posted after that are not missed.
func (s *Server) getLocalEvents(w http.ResponseWriter, r *http.Request) {
	if s.opt.Local == nil {
		writeError(w, http.StatusServiceUnavailable, "the local channel is not enabled in this daemon")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "chat" {
			writeError(w, http.StatusBadRequest, "unknown query parameter %q (only chat)", k)
			return
		}
	}
	if len(q["chat"]) != 1 {
		writeError(w, http.StatusBadRequest, "chat: required once, like ?chat=%s", local.MainChat)
		return
	}
	chat := q.Get("chat")
	if _, err := local.ParseChat(chat); err != nil {
		writeError(w, http.StatusBadRequest, "chat: %v", err)
		return
	}
	events, cancel := s.opt.Local.Subscribe(chat)
	defer cancel()
	out, err := startNDJSON(w)
	if err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-events:
			if !ok || out.send(ev) != nil || ev.Type == local.EventLagged {
				return
			}
		}
	}
}
