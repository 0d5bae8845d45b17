package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// What go-telegram/bot is and is not trusted with:
//
//   - Its methods (SendMessage, SendPhoto, SetMessageReaction, GetFile…)
//     and models are used as they are: they build the requests, multipart
//     uploads included, and decode the answers.
//   - Its polling loop (Bot.Start, get_updates.go) is not: it moves its
//     offset past an update as soon as the update is queued for a handler,
//     so Telegram forgets a message before NanoClaw stored it. getUpdates
//     is our own call (api.updates), and the offset moves only after the
//     handler returned (see Channel.poll).
//   - It reads an answer whole (io.ReadAll) and classifies errors by
//     wrapping sentinel values, without the HTTP status for 5xx. So the
//     HTTP client it is given (doer) bounds every answer's body and records
//     each call's status, from which api.call decides what may be retried.

// DefaultServerURL is the Bot API's address.
const DefaultServerURL = "https://api.telegram.org"

// Bounds of one call.
const (
	callTimeout   = 60 * time.Second // an ordinary call
	uploadTimeout = 5 * time.Minute  // a file sent
	pollSeconds   = 50               // getUpdates' long poll, in seconds
	maxAnswer     = 32 << 20         // the longest answer body read (a full getUpdates batch is a few MB)
)

// Retry bounds: a 429 is waited out at most maxRetries times, and for at
// most maxRetryAfter each (Telegram asks for seconds, rarely minutes); 5xx
// and network failures are retried with back-off from minBackoff to
// maxBackoff.
const (
	maxRetries    = 5
	maxRetryAfter = 5 * time.Minute
	minBackoff    = 500 * time.Millisecond
	maxBackoff    = 30 * time.Second
)

// errRevoked is what a 401 means: the token was revoked (@BotFather
// /revoke) or is wrong.
var errRevoked = errors.New("the bot token was revoked or is wrong: pair again with '" + PairCommand + "'")

// api talks to one bot's Bot API: the library's client for the methods,
// and our own requests for getUpdates and file downloads, all on the same
// HTTP client and server.
type api struct {
	b     *bot.Bot
	hc    *http.Client
	base  string // the server's URL, without a trailing slash
	token string // secret: never logged, never in an error
	log   *slog.Logger
	// sleep waits d or until ctx ends; tests shorten it.
	sleep func(ctx context.Context, d time.Duration) error
}

func newAPI(token, serverURL string, hc *http.Client, log *slog.Logger) (*api, error) {
	if hc == nil {
		// No overall timeout: each call's context bounds it (a long poll
		// lasts pollSeconds).
		hc = &http.Client{}
	}
	// Every URL holds the token: a redirect would carry it, in the path
	// or the Referer, to wherever the answer points.
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc = &noRedirect
	base := strings.TrimRight(serverURL, "/")
	if base == "" {
		base = DefaultServerURL
	}
	a := &api{hc: hc, base: base, token: token, log: log, sleep: sleepCtx}
	b, err := bot.New(token, bot.WithServerURL(base), bot.WithSkipGetMe(),
		bot.WithHTTPClient(callTimeout, doer{hc}),
		bot.WithErrorsHandler(func(err error) { log.Debug("telegram library", "err", a.redact(err.Error())) }))
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	a.b = b
	return a, nil
}

// callInfo is what doer learned of one call: the answer's HTTP status (0
// when no answer came), and whether the whole request went out (its body
// read to the end): a call that failed before that cannot have been done.
type callInfo struct {
	status int
	sent   bool
}

type callKey struct{}

// doer is the library's HTTP client: it records each answer's status in
// the call's callInfo and bounds the body it reads.
type doer struct{ hc *http.Client }

func (d doer) Do(req *http.Request) (*http.Response, error) {
	info, _ := req.Context().Value(callKey{}).(*callInfo)
	if info != nil && req.Body != nil {
		req.Body = &sentBody{ReadCloser: req.Body, info: info, size: req.ContentLength}
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if info != nil {
		info.status, info.sent = resp.StatusCode, true
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxAnswer}
	return resp, nil
}

// sentBody marks its call sent once the transport read it whole.
type sentBody struct {
	io.ReadCloser
	info *callInfo
	size int64 // -1 or 0: unknown, until EOF
	read int64
}

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if err == io.EOF || b.size > 0 && b.read >= b.size {
		b.info.sent = true
	}
	return n, err
}

// boundedBody fails a read past left bytes.
type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the Bot API's answer is longer than %d bytes", maxAnswer)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// apiError is a call's failure, with the token taken out of its text.
type apiError struct {
	method string
	status int // the HTTP status; 0 when no answer came
	msg    string
	err    error
}

func (e *apiError) Error() string { return "telegram " + e.method + ": " + e.msg }
func (e *apiError) Unwrap() error { return e.err }

// redact takes the token out of s.
func (a *api) redact(s string) string {
	if a.token == "" {
		return s
	}
	return strings.ReplaceAll(s, a.token, "<token>")
}

// Whether a failed call may be made again.
type retry int

const (
	// onlyUnsent: retried after a 429, a 5xx, or a network failure before
	// the request left (a refused connection): never when Telegram may
	// have done it, as a second sendMessage would be a duplicate message.
	onlyUnsent retry = iota
	// idempotent: retried after any network failure too (getMe, getFile,
	// a reaction, a chat action: doing them twice does no harm).
	idempotent
)

// call makes one Bot API call through fn, waiting out 429s as Telegram asks
// and backing off after 5xx and network failures, as far as r allows. A
// 401 is errRevoked.
func (a *api) call(ctx context.Context, method string, r retry, fn func(ctx context.Context) error) error {
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		info := &callInfo{}
		err := fn(context.WithValue(ctx, callKey{}, info))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("telegram %s: %w", method, ctx.Err())
		}
		// The library quotes a body it cannot decode whole (up to 32 MB):
		// one cleaned line of it is enough for an error.
		e := &apiError{method: method, status: info.status, msg: sanitize.FirstLine(a.redact(err.Error()), 300), err: err}
		var wait time.Duration
		var flood *bot.TooManyRequestsError
		switch {
		case info.status == http.StatusUnauthorized || errors.Is(err, bot.ErrorUnauthorized):
			return &apiError{method: method, status: http.StatusUnauthorized, msg: errRevoked.Error(), err: errRevoked}
		case errors.As(err, &flood):
			wait = max(time.Duration(flood.RetryAfter)*time.Second, time.Second)
			if wait > maxRetryAfter {
				return fmt.Errorf("%w: Telegram asks to wait %s before the next message", e, wait)
			}
		case info.status >= 500:
			wait = backoff
		case info.status == 0 && (r == idempotent || unsent(err) || !info.sent):
			wait = backoff
		case info.status == 0:
			return fmt.Errorf("%w: %w", channel.ErrMaybeSent, e)
		default:
			return e
		}
		if attempt+1 >= maxRetries {
			return fmt.Errorf("%w (gave up after %d attempts)", e, attempt+1)
		}
		if wait == backoff {
			backoff = min(backoff*2, maxBackoff)
		}
		a.log.Debug("telegram call failed; retrying", "method", method, "status", info.status, "wait", wait, "err", e.msg)
		if err := a.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%w; not retried: %w", e, err)
		}
	}
}

// unsent reports a network failure that happened before the request
// left: the connection was never made.
func unsent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// getMe asks who the bot is.
func (a *api) getMe(ctx context.Context) (*models.User, error) {
	var me *models.User
	err := a.call(ctx, "getMe", idempotent, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		var err error
		me, err = a.b.GetMe(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if me.ID <= 0 || !me.IsBot {
		return nil, errors.New("telegram getMe: the answer names no bot: is the server URL the Bot API's?")
	}
	return me, nil
}

// envelope is every Bot API answer's frame.
type envelope struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// pollResult is one getUpdates answer: the updates that decoded, and the
// ids of those that did not (a type this library does not know), which
// are skipped.
type pollResult struct {
	updates []*models.Update
	skipped []int64
}

// updates is one getUpdates long poll from offset, waiting up to wait
// seconds for something new. Telegram forgets every update before offset.
// It makes one request: the poll loop decides about retries, and waits
// retryAfter when Telegram asked for it (a 429).
func (a *api) updates(ctx context.Context, offset int64, wait int, allowed []string) (res pollResult, retryAfter time.Duration, err error) {
	body, err := json.Marshal(map[string]any{"offset": offset, "timeout": wait, "allowed_updates": allowed})
	if err != nil {
		return pollResult{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(wait)*time.Second+callTimeout)
	defer cancel()
	var raw []json.RawMessage
	if retryAfter, err = a.raw(ctx, "getUpdates", body, &raw); err != nil {
		return pollResult{}, retryAfter, err
	}
	for _, r := range raw {
		u := new(models.Update)
		if err := json.Unmarshal(r, u); err != nil {
			// One update the library cannot decode must not stall the
			// rest: it is skipped, by its id.
			var id struct {
				ID int64 `json:"update_id"`
			}
			if json.Unmarshal(r, &id) != nil || id.ID <= 0 {
				return pollResult{}, 0, errors.New("telegram getUpdates: an update without an id: is the server URL the Bot API's?")
			}
			res.skipped = append(res.skipped, id.ID)
			continue
		}
		res.updates = append(res.updates, u)
	}
	return res, 0, nil
}

// raw posts body as JSON to method and decodes the result into dest. An
// error is an *apiError; for a 429, retryAfter is the wait Telegram asked
// for.
func (a *api) raw(ctx context.Context, method string, body []byte, dest any) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/bot"+a.token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return 0, &apiError{method: method, msg: a.redact(err.Error()), err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, &apiError{method: method, msg: a.redact(err.Error()), err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(&boundedBody{ReadCloser: resp.Body, left: maxAnswer})
	if err != nil {
		return 0, &apiError{method: method, status: resp.StatusCode, msg: a.redact(err.Error()), err: err}
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return 0, &apiError{method: method, status: resp.StatusCode,
			msg: fmt.Sprintf("HTTP %d, not a Bot API answer", resp.StatusCode), err: err}
	}
	if !env.OK {
		if resp.StatusCode == http.StatusUnauthorized || env.ErrorCode == http.StatusUnauthorized {
			return 0, &apiError{method: method, status: http.StatusUnauthorized, msg: errRevoked.Error(), err: errRevoked}
		}
		e := &apiError{method: method, status: resp.StatusCode,
			msg: fmt.Sprintf("%d %s", env.ErrorCode, a.redact(clip(env.Description, 200)))}
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = max(time.Duration(env.Parameters.RetryAfter)*time.Second, time.Second)
		}
		return retryAfter, e
	}
	if err := json.Unmarshal(env.Result, dest); err != nil {
		return 0, &apiError{method: method, status: resp.StatusCode, msg: "undecodable result", err: err}
	}
	return 0, nil
}
