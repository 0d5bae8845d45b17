package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/status"
)

// ErrNotRunning matches (errors.Is) the error of a call made while no daemon
// listens on the control socket.
var ErrNotRunning = errors.New("nanoclaw is not running")

// notRunning is ErrNotRunning with why ("no control socket at …", "…
// refuses connections") and what to do.
func notRunning(why string) error {
	return fmt.Errorf("%w (%s): start it with 'nanoclaw run'", ErrNotRunning, why)
}

// APIError is an error answer of the daemon: its status and message.
type APIError struct {
	Status  int
	Message string
}

// Error is the daemon's message.
func (e *APIError) Error() string { return e.Message }

// Client calls the control API of the daemon. Make it with Dial.
type Client struct {
	path string
	hc   *http.Client
}

// Dial returns a client for the control socket at path. It does not connect:
// each call does, and fails with an error matching ErrNotRunning when the
// daemon is not there.
func Dial(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", path)
			switch {
			case err == nil:
				return c, nil
			case errors.Is(err, fs.ErrNotExist):
				return nil, notRunning("no control socket at " + path)
			case errors.Is(err, syscall.ECONNREFUSED):
				return nil, notRunning("the control socket " + path + " refuses connections, left over from a stopped nanoclaw?")
			case errors.Is(err, fs.ErrPermission):
				return nil, fmt.Errorf("cannot connect to the control socket %s: permission denied (is nanoclaw running as another user?)", path)
			}
			return nil, fmt.Errorf("connect to the control socket: %w", err)
		},
		DisableCompression: true,
	}
	// No client timeout: streams last as long as a run. Calls are bounded
	// by their context.
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// PostMessage injects a message and returns once it is stored.
func (c *Client) PostMessage(ctx context.Context, q MessageRequest) (Receipt, error) {
	q.Wait = false
	resp, err := c.do(ctx, http.MethodPost, "/v1/local/messages", q)
	if err != nil {
		return Receipt{}, err
	}
	defer resp.Body.Close()
	var r Receipt
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return Receipt{}, fmt.Errorf("read the daemon's receipt: %w", err)
	}
	return r, nil
}

// PostMessageWait injects a message and returns the stream of its events: the
// stored event first, then typing and reply events, ending after the done
// event of the run that covers it (right after stored when WillAnswer is
// false).
func (c *Client) PostMessageWait(ctx context.Context, q MessageRequest) (*EventStream, error) {
	q.Wait = true
	return c.stream(ctx, http.MethodPost, "/v1/local/messages", q)
}

// Events streams every event of a local chat from now until ctx ends or the
// stream is closed. It returns once the daemon has subscribed.
func (c *Client) Events(ctx context.Context, chat string) (*EventStream, error) {
	return c.stream(ctx, http.MethodGet, "/v1/local/events?chat="+url.QueryEscape(chat), nil)
}

// Tool calls an owner tool (a task or group tool, with the main group's
// rights) and decodes its answer into out.
func (c *Client) Tool(ctx context.Context, tool string, args, out any) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/tools/"+tool, args)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// StatusJSON fetches the daemon's status report, as the daemon wrote it
// (JSON): of every group, or of the group in folder with its trace.
func (c *Client) StatusJSON(ctx context.Context, folder string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/status?"+url.Values{"group": {folder}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return raw, nil
}

// Status fetches the daemon's status report and decodes it.
func (c *Client) Status(ctx context.Context, folder string) (*status.Report, error) {
	raw, err := c.StatusJSON(ctx, folder)
	if err != nil {
		return nil, err
	}
	var rep status.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	return &rep, nil
}

// do sends one request; a status other than 200 becomes an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://nanoclaw"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && errors.Is(err, ErrNotRunning) {
			return nil, ue.Err // the *url.Error around it only repeats the fake URL
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("control socket %s: %w", c.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var eb errorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s %s: %s", method, path, bytes.TrimSpace(data))
		}
		return nil, &APIError{Status: resp.StatusCode, Message: eb.Error}
	}
	return resp, nil
}

// EventStream reads an NDJSON stream of local events.
type EventStream struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// stream sends one request whose answer is an event stream.
func (c *Client) stream(ctx context.Context, method, path string, body any) (*EventStream, error) {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	return &EventStream{body: resp.Body, dec: json.NewDecoder(resp.Body)}, nil
}

// Next returns the next event; io.EOF when the daemon ended the stream, the
// context's error when the call's context ended.
func (s *EventStream) Next() (local.Event, error) {
	var ev local.Event
	err := s.dec.Decode(&ev)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF // cut mid-line: the daemon went away
	}
	return ev, err
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
