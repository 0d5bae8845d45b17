// Package hostclient is nanoclaw-agent's client of the host: HTTP requests
// on the group's gateway socket for the next input, the turn's output and
// the MCP tools. Nothing here names the group: the host knows it from the
// socket the request arrives on.
package hostclient

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Timeouts and limits of one call.
const (
	// PollTimeout bounds one long poll of PathNext: the host answers 204
	// well before it, and a longer silence means the host is gone.
	PollTimeout = 2 * time.Minute
	// CallTimeout bounds a posted output and a tool call, which the host
	// answers at once or after one chat send.
	CallTimeout = 2 * time.Minute
	// MaxToolResponseBytes bounds a tool's answer (a task list with run
	// history is the biggest).
	MaxToolResponseBytes = 4 << 20
	// maxErrorBody is how much of an error response is kept for the message.
	maxErrorBody = 512
	// maxInputBytes bounds an Input on the wire: its text escaped as JSON
	// may take up to six bytes for each byte of the prompt.
	maxInputBytes = 6*ipc.MaxPromptBytes + 4096
)

// Retry policy: transient failures (the socket not there or refusing, a
// 503; for calls that may be repeated, any 5xx or cut connection) are
// retried with exponential backoff for at most RetryFor.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
	// RetryFor is how long a call keeps retrying transient failures before
	// it gives up.
	RetryFor = time.Minute
)

// ErrInvalidInput marks an input the host handed out that does not decode
// or validate: it arrived, so asking again is no cure.
var ErrInvalidInput = errors.New("invalid input")

// ErrRefused marks an output the host received and refused (a 4xx): it
// will not take it however often it is sent.
var ErrRefused = errors.New("refused by the host")

// Client calls the host over one unix socket. It is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client
	log    *slog.Logger
	// retryFor overrides RetryFor in tests.
	retryFor time.Duration
}

// New returns a client of the gateway socket at path. A nil logger discards.
func New(socket string, log *slog.Logger) *Client {
	log = cmp.Or(log, slog.New(slog.DiscardHandler))
	var d net.Dialer
	tr := &http.Transport{
		// Every request goes to the one socket, whatever the URL says.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		Proxy:                 nil, // never an HTTP(S)_PROXY: this is the host itself
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: PollTimeout + 10*time.Second,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}, log: log, retryFor: RetryFor}
}

// Close drops idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Next long-polls the host for the agent's next input. It returns ok false
// when the host had nothing within its poll time (204): ask again. The input
// is validated; a bad one is an error naming what was wrong.
func (c *Client) Next(ctx context.Context) (in ipc.Input, ok bool, err error) {
	// A lost answer to a poll loses nothing the host will not hand out
	// again, so every transient failure is retried.
	status, body, err := c.do(ctx, http.MethodGet, ipc.PathNext, nil, PollTimeout, maxInputBytes, true)
	if err != nil {
		return ipc.Input{}, false, err
	}
	switch status {
	case http.StatusNoContent:
		return ipc.Input{}, false, nil
	case http.StatusOK:
	default:
		return ipc.Input{}, false, fmt.Errorf("GET %s: status %d: %s", ipc.PathNext, status, clip(body))
	}
	if err := ipc.DecodeStrict(body, &in); err != nil {
		return ipc.Input{}, false, fmt.Errorf("GET %s: %w: not an input: %v", ipc.PathNext, ErrInvalidInput, err)
	}
	if err := in.Validate(); err != nil {
		return ipc.Input{}, false, fmt.Errorf("GET %s: %w: %v", ipc.PathNext, ErrInvalidInput, err)
	}
	return in, true, nil
}

// PostOutput hands the host one turn's output. It is retried on transient
// failures: the host recognises a repeated Output by its InputID.
func (c *Client) PostOutput(ctx context.Context, out ipc.Output) error {
	if err := out.Validate(); err != nil {
		return fmt.Errorf("post output: %w", err)
	}
	// A valid Output marshals, within ipc.MaxOutputBytes: its texts are
	// bounded for that.
	b, _ := json.Marshal(out)
	status, body, err := c.do(ctx, http.MethodPost, ipc.PathOutput, b, CallTimeout, maxErrorBody, true)
	if err != nil {
		return fmt.Errorf("post output %s: %w", out.InputID, err)
	}
	if status/100 == 4 {
		return fmt.Errorf("post output %s: %w: status %d: %s", out.InputID, ErrRefused, status, clip(body))
	}
	if status/100 != 2 {
		return fmt.Errorf("post output %s: status %d: %s", out.InputID, status, clip(body))
	}
	return nil
}

// CallTool calls the host tool name with args (a JSON object) and returns
// the host's answer. An error means the host could not be asked or answered
// with something that is not a ToolResponse; a refusal by the host (unknown
// task, not permitted) is a ToolResponse with Error set.
//
// A call is retried only when the host cannot have acted on it (the socket
// refused the connection, or the host answered 503): a tool such as
// send_message must not run twice.
func (c *Client) CallTool(ctx context.Context, name string, args json.RawMessage) (ipc.ToolResponse, error) {
	if !ipc.ValidToolName(name) {
		return ipc.ToolResponse{}, fmt.Errorf("tool name %q: want lower-case letters, digits and '_'", name)
	}
	if len(bytes.TrimSpace(args)) == 0 || bytes.TrimSpace(args)[0] != '{' {
		return ipc.ToolResponse{}, fmt.Errorf("tool %s: arguments must be a JSON object", name)
	}
	// The host refuses larger bodies unread; saying so here names the
	// limit for the model.
	if len(args) > ipc.MaxToolBodyBytes {
		return ipc.ToolResponse{}, fmt.Errorf("tool %s: arguments of %d bytes are over the host's limit of %d bytes: send less at once",
			name, len(args), ipc.MaxToolBodyBytes)
	}
	path := ipc.PathToolPrefix + name
	status, body, err := c.do(ctx, http.MethodPost, path, args, CallTimeout, MaxToolResponseBytes, false)
	if err != nil {
		return ipc.ToolResponse{}, fmt.Errorf("tool %s: %w", name, err)
	}
	var resp ipc.ToolResponse
	derr := ipc.DecodeStrict(body, &resp)
	switch {
	case derr == nil && (resp.Error != "" || len(resp.Result) > 0):
		return resp, nil
	case status/100 != 2:
		return ipc.ToolResponse{}, fmt.Errorf("tool %s: status %d: %s", name, status, clip(body))
	case derr != nil:
		return ipc.ToolResponse{}, fmt.Errorf("tool %s: answer is not a tool response: %w", name, derr)
	}
	return ipc.ToolResponse{}, fmt.Errorf("tool %s: the host answered neither a result nor an error", name)
}

// do sends one request, retrying transient failures with backoff. It
// returns the status and at most limit bytes of body (more is an error).
// idempotent says whether failures after the request may have reached the
// host are retried too.
func (c *Client) do(ctx context.Context, method, path string, body []byte, timeout time.Duration, limit int64, idempotent bool) (int, []byte, error) {
	deadline := time.Now().Add(c.retryFor)
	wait := retryFirst
	for attempt := 1; ; attempt++ {
		status, respBody, err := c.once(ctx, method, path, body, timeout, limit)
		retry := false
		switch {
		case ctx.Err() != nil:
			return 0, nil, ctx.Err()
		case err != nil:
			retry = notSent(err) || idempotent && !errors.Is(err, errTooLarge)
		case status == http.StatusServiceUnavailable:
			retry = true // the host did not act on it
		case status >= 500:
			retry = idempotent
		default:
			return status, respBody, nil
		}
		if !retry || time.Now().Add(wait).After(deadline) {
			if err == nil {
				return status, respBody, nil
			}
			return 0, nil, err
		}
		c.log.Warn("gateway call failed; retrying", "method", method, "path", path, "attempt", attempt, "status", status, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMax)
	}
}

var errTooLarge = errors.New("response too large")

func (c *Client) once(ctx context.Context, method, path string, body []byte, timeout time.Duration, limit int64) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The host part is never dialled (DialContext goes to the socket); it
	// only names the peer in logs and errors.
	req, err := http.NewRequestWithContext(ctx, method, "http://"+ipc.GatewayHost+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on %s: %w", method, path, c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if int64(len(b)) > limit {
		return 0, nil, fmt.Errorf("%s %s: %w: over %d bytes", method, path, errTooLarge, limit)
	}
	return resp.StatusCode, b, nil
}

// notSent reports whether err happened before the request could reach the
// host: the socket is missing or refused the connection.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// clip bounds an error response quoted in an error.
func clip(b []byte) string { return sanitize.Clip(strings.TrimSpace(string(b)), maxErrorBody, "…") }
