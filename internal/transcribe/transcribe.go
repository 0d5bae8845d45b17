// Package transcribe turns voice notes into text on the host, through an
// OpenAI-compatible transcription endpoint (TRANSCRIBE_URL): OpenAI's own,
// or a local whisper server that speaks the same API. The endpoint's key
// stays on the host, like the Anthropic one; no container ever sees it.
//
// It is one multipart POST and one small JSON answer, so the standard
// library's HTTP client does it: an SDK would bring a dependency tree for
// one call and follow redirects and retry on its own, which this must
// control (a key is never sent to another host).
package transcribe

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Defaults of Options.
const (
	DefaultModel = "whisper-1"
	// DefaultMaxAudioBytes is OpenAI's own limit for one file.
	DefaultMaxAudioBytes = 25 << 20
	DefaultTimeout       = 2 * time.Minute
)

// MaxTranscriptBytes bounds a transcript: it becomes a chat message's text.
// 64 KiB is the local channel's longest message, and more than an hour of
// speech.
const MaxTranscriptBytes = 64 << 10

// maxResponseBytes bounds the endpoint's answer, read whole before it is
// decoded: a transcript of MaxTranscriptBytes in JSON, with room for the
// fields some servers add (segments, usage).
const maxResponseBytes = 1 << 20

// ErrDisabled is Transcribe's error when no endpoint is set.
var ErrDisabled = errors.New("voice notes are not transcribed: set TRANSCRIBE_URL to an OpenAI-compatible transcription endpoint")

// Options configure a Client; the zero value of each field but URL takes
// its default.
type Options struct {
	// URL is the endpoint itself, e.g.
	// https://api.openai.com/v1/audio/transcriptions; nil: voice notes are
	// not transcribed.
	URL *url.URL
	// APIKey is sent as "Authorization: Bearer APIKey"; "" sends no
	// Authorization (a local server without keys).
	APIKey string
	// Model is the model the endpoint is asked for (DefaultModel).
	Model string
	// MaxAudioBytes is the largest audio sent (DefaultMaxAudioBytes).
	MaxAudioBytes int64
	// Timeout bounds one transcription, upload to answer (DefaultTimeout).
	Timeout time.Duration
}

// Client transcribes audio through one endpoint. It is safe for concurrent
// use. A Client made without a URL, and a nil *Client, are disabled.
type Client struct {
	endpoint *url.URL // nil: disabled
	key      string
	model    string
	maxAudio int64
	timeout  time.Duration
	client   *http.Client
}

// New makes a Client from opt. Without opt.URL the Client is disabled:
// Enabled reports false and Transcribe returns ErrDisabled.
func New(opt Options) *Client {
	if opt.URL == nil {
		return &Client{}
	}
	endpoint := *opt.URL
	return &Client{
		endpoint: &endpoint,
		key:      opt.APIKey,
		model:    cmp.Or(opt.Model, DefaultModel),
		maxAudio: cmp.Or(opt.MaxAudioBytes, DefaultMaxAudioBytes),
		timeout:  cmp.Or(opt.Timeout, DefaultTimeout),
		// Redirects are not followed: Go would re-send the body, and the
		// Authorization header to a host of the same domain, wherever a
		// redirect points.
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// Enabled reports whether an endpoint is set, so the host can say that a
// voice note arrived and was not transcribed.
func (c *Client) Enabled() bool { return c != nil && c.endpoint != nil }

// Transcribe sends audio (at most the Client's MaxAudioBytes) to the
// endpoint and returns its transcript, cleaned for a chat message's text:
// valid UTF-8, no control characters but newlines and tabs, trimmed, at
// most MaxTranscriptBytes ("…" marks a cut). Silence is "" without an
// error. fileName and mimeType describe the audio ("voice.ogg",
// "audio/ogg; codecs=opus"); servers tell the format by the name's
// extension, so only its letters, digits, '.', '_' and '-' are sent, and
// with no usable name one is made from mimeType. Errors are one line that
// never holds the key.
func (c *Client) Transcribe(ctx context.Context, audio io.Reader, fileName, mimeType string) (string, error) {
	if !c.Enabled() {
		return "", ErrDisabled
	}
	data, err := io.ReadAll(io.LimitReader(audio, c.maxAudio+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("read the audio to transcribe: %w", err)
	case int64(len(data)) > c.maxAudio:
		return "", fmt.Errorf("audio larger than %d bytes: not sent for transcription", c.maxAudio)
	case len(data) == 0:
		return "", errors.New("audio is empty: nothing to transcribe")
	}
	ctype := contentType(mimeType)
	head, tail, boundary := c.form(partName(fileName, ctype), ctype)

	parent := ctx
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel() // after the answer is read: the timeout covers it too
	body := func() io.Reader {
		return io.MultiReader(bytes.NewReader(head), bytes.NewReader(data), bytes.NewReader(tail))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint.String(), body())
	if err != nil {
		return "", fmt.Errorf("transcription request to %s: %w", c.endpoint.Host, err)
	}
	req.ContentLength = int64(len(head) + len(data) + len(tail))
	// GetBody lets the transport send it again on a kept-alive connection
	// the server had closed meanwhile.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body()), nil }
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Accept", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}

	resp, err := c.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var text string
		text, err = c.answer(resp)
		if err == nil {
			return text, nil
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the URL, whose query may hold a key
	}
	switch {
	case parent.Err() != nil:
		return "", fmt.Errorf("transcription at %s: %w", c.endpoint.Host, parent.Err())
	case ctx.Err() != nil:
		return "", fmt.Errorf("transcription at %s gave no answer within %s: %w", c.endpoint.Host, c.timeout, ctx.Err())
	case resp == nil:
		return "", fmt.Errorf("cannot reach the transcription endpoint %s: %w", c.endpoint.Host, err)
	}
	return "", err
}

// form returns the multipart body around the audio's bytes: head (the
// model, the response format and the file part's header) and tail (the
// closing boundary), so the audio is not copied and the length is known.
func (c *Client) form(name, ctype string) (head, tail []byte, boundary string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	// Writes to a bytes.Buffer do not fail.
	w.WriteField("model", c.model)          //nolint:errcheck
	w.WriteField("response_format", "json") //nolint:errcheck
	h := textproto.MIMEHeader{}
	// name holds no quote or backslash (partName): nothing to escape.
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	h.Set("Content-Type", ctype)
	w.CreatePart(h) //nolint:errcheck
	n := b.Len()
	w.Close() //nolint:errcheck
	all := b.Bytes()
	return all[:n:n], all[n:], w.Boundary()
}

// contentType is mimeType as a valid media type ("audio/ogg; codecs=opus"),
// or application/octet-stream when it is none: it goes into a header.
func contentType(mimeType string) string {
	mt, params, err := mime.ParseMediaType(mimeType)
	if err == nil {
		if s := mime.FormatMediaType(mt, params); s != "" {
			return s
		}
	}
	return "application/octet-stream"
}

// extensions name the audio formats OpenAI's endpoint takes, by media type,
// for a file sent without a usable name: servers tell the format by the
// extension.
var extensions = map[string]string{
	"audio/ogg": ".ogg", "audio/opus": ".ogg", "audio/mpeg": ".mp3", "audio/mp3": ".mp3",
	"audio/mp4": ".m4a", "audio/m4a": ".m4a", "audio/x-m4a": ".m4a", "audio/aac": ".m4a",
	"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/webm": ".webm",
	"audio/flac": ".flac", "audio/x-flac": ".flac", "video/mp4": ".mp4", "video/webm": ".webm",
}

// maxNameBytes bounds the file name sent with the audio.
const maxNameBytes = 100

// partName is the file name sent with the audio: fileName's last element
// with only letters, digits, '.', '_' and '-' kept (it goes into a header,
// and a sender may have chosen it), or "audio" with the extension of ctype.
func partName(fileName, ctype string) string {
	if i := strings.LastIndexAny(fileName, `/\`); i >= 0 {
		fileName = fileName[i+1:]
	}
	name := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._-", r) {
			return r
		}
		return -1
	}, fileName)
	if len(name) > maxNameBytes {
		name = name[len(name)-maxNameBytes:] // the extension is at the end
	}
	if strings.Trim(name, ".") == "" {
		mt, _, _ := strings.Cut(ctype, ";")
		name = "audio" + extensions[strings.TrimSpace(mt)]
	}
	return name
}

// answer reads the endpoint's answer: {"text": "..."} on 200, an error
// naming the status and a short, cleaned excerpt of the body otherwise.
func (c *Client) answer(resp *http.Response) (string, error) {
	host := c.endpoint.Host
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return "", fmt.Errorf("transcription endpoint %s answered %d, a redirect, which is not followed: set TRANSCRIBE_URL to where it points (%s)",
			host, resp.StatusCode, c.excerpt([]byte(resp.Header.Get("Location"))))
	}
	if resp.ContentLength > maxResponseBytes {
		return "", fmt.Errorf("transcription endpoint %s answered %d with %d bytes, more than the %d read: is TRANSCRIBE_URL the transcription endpoint?",
			host, resp.StatusCode, resp.ContentLength, maxResponseBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return "", fmt.Errorf("transcription endpoint %s: reading its answer: %w", host, err)
	}
	if len(body) > maxResponseBytes {
		return "", fmt.Errorf("transcription endpoint %s answered %d with more than the %d bytes read: is TRANSCRIBE_URL the transcription endpoint?",
			host, resp.StatusCode, maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			body = []byte(e.Error.Message)
		}
		why := c.excerpt(body)
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return "", fmt.Errorf("transcription endpoint %s refused the key (%d: %s): check TRANSCRIBE_API_KEY", host, resp.StatusCode, why)
		case http.StatusNotFound:
			return "", fmt.Errorf("transcription endpoint %s answered 404 (%s): check TRANSCRIBE_URL and TRANSCRIBE_MODEL", host, why)
		}
		return "", fmt.Errorf("transcription endpoint %s answered %d (%s)", host, resp.StatusCode, why)
	}
	var a struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Text == nil {
		return "", fmt.Errorf("transcription endpoint %s answered without a JSON text field (%s): is TRANSCRIBE_URL the transcription endpoint?", host, c.excerpt(body))
	}
	return clean(*a.Text), nil
}

// excerpt is the endpoint's words as an error may quote them: the key
// replaced, one line, no control sequences (R10: errors reach the owner's
// terminal), at most 200 bytes.
func (c *Client) excerpt(b []byte) string {
	s := string(b)
	if c.key != "" {
		s = strings.ReplaceAll(s, c.key, "(the key)")
	}
	if s = sanitize.FirstLine(sanitize.Terminal(s), 200); s == "" {
		s = "no message"
	}
	return s
}

// clean makes a transcript fit to be a chat message's text: the endpoint's
// output is outside text like anything a participant sends. sanitize.Terminal
// removes every control character but newline and tab (a CR of a CRLF
// with them), escape sequences whole, and bidi controls.
func clean(s string) string {
	return sanitize.Clip(strings.TrimSpace(sanitize.Terminal(s)), MaxTranscriptBytes, "…")
}
