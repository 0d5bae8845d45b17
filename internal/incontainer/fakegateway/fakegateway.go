// Package fakegateway is a stand-in for the host's gateway socket in tests
// of nanoclaw-agent: it hands out inputs on the long-poll path, collects
// outputs, answers tool calls and records them, and passes everything else
// (the Anthropic API, /v1/...) to a handler such as a fakeapi.Server. Every
// body it receives is decoded strictly and validated as the host would.
package fakegateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// ToolCall is one recorded call of a host tool.
type ToolCall struct {
	Name string
	Args json.RawMessage
}

// ToolFunc answers a tool call.
type ToolFunc func(args json.RawMessage) ipc.ToolResponse

// Gateway is a fake gateway serving on one unix socket. Its methods are
// safe for concurrent use.
type Gateway struct {
	// PollWait is how long a poll waits for input before 204 (default 1 s).
	PollWait time.Duration

	hs  *http.Server
	api http.Handler

	mu      sync.Mutex
	inputs  []ipc.Input
	inputCh chan struct{} // signalled when inputs grows
	outputs chan ipc.Output
	bad     []string // protocol violations seen
	tools   map[string]ToolFunc
	calls   []ToolCall
	polls   int
	egress  []string
}

// New serves a fake gateway on a new unix socket at path (mode 0777, so an
// agent running as another user can connect). api serves everything that
// is not /ipc/...; nil answers 404.
func New(path string, api http.Handler) (*Gateway, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o777); err != nil {
		ln.Close()
		return nil, err
	}
	g := &Gateway{
		PollWait: time.Second,
		api:      api,
		inputCh:  make(chan struct{}, 1),
		outputs:  make(chan ipc.Output, 100),
		tools:    map[string]ToolFunc{},
	}
	g.hs = &http.Server{Handler: g}
	go g.hs.Serve(ln) //nolint:errcheck // ErrServerClosed on Close
	return g, nil
}

// Close stops serving and cuts open connections.
func (g *Gateway) Close() { g.hs.Close() }

// Send queues an input for the agent's next poll.
func (g *Gateway) Send(in ipc.Input) {
	g.mu.Lock()
	g.inputs = append(g.inputs, in)
	g.mu.Unlock()
	select {
	case g.inputCh <- struct{}{}:
	default:
	}
}

// Prompt queues a prompt input.
func (g *Gateway) Prompt(id, text string) {
	g.Send(ipc.Input{Kind: ipc.InputPrompt, ID: id, Text: text})
}

// Output waits for the next output the agent posts.
func (g *Gateway) Output(ctx context.Context) (ipc.Output, error) {
	select {
	case o := <-g.outputs:
		return o, nil
	case <-ctx.Done():
		return ipc.Output{}, fmt.Errorf("fakegateway: no output: %w", ctx.Err())
	}
}

// Tool sets how tool name is answered; an unset tool is answered with an
// error response naming it.
func (g *Gateway) Tool(name string, f ToolFunc) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tools[name] = f
}

// ToolCalls returns the tool calls so far, in order.
func (g *Gateway) ToolCalls() []ToolCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]ToolCall(nil), g.calls...)
}

// Violations returns every protocol violation seen: a body that did not
// decode or validate, an unknown /ipc path or method.
func (g *Gateway) Violations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.bad...)
}

// Egress returns the egress proxy requests seen ("CONNECT host:port" or
// "GET host"), all of which were refused with 403.
func (g *Gateway) Egress() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.egress...)
}

// Polls is the number of polls answered so far.
func (g *Gateway) Polls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.polls
}

func (g *Gateway) violation(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.mu.Lock()
	g.bad = append(g.bad, msg)
	g.mu.Unlock()
	http.Error(w, msg, status)
}

// ServeHTTP routes like the real gateway: /ipc/... here, egress proxy
// requests refused, the rest to api.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/ipc/") && (r.Host != ipc.GatewayHost || !strings.HasPrefix(r.RequestURI, "/")):
		// The host's gateway answers /ipc only on the socket, Host gateway.
		g.violation(w, http.StatusForbidden, "%s %s with Host %q (want %q, on the socket)", r.Method, r.RequestURI, r.Host, ipc.GatewayHost)
	case r.URL.Path == ipc.PathNext:
		if r.Method != http.MethodGet {
			g.violation(w, http.StatusMethodNotAllowed, "%s %s", r.Method, r.URL.Path)
			return
		}
		g.next(w, r)
	case r.URL.Path == ipc.PathOutput:
		if r.Method != http.MethodPost {
			g.violation(w, http.StatusMethodNotAllowed, "%s %s", r.Method, r.URL.Path)
			return
		}
		g.output(w, r)
	case strings.HasPrefix(r.URL.Path, ipc.PathToolPrefix):
		if r.Method != http.MethodPost {
			g.violation(w, http.StatusMethodNotAllowed, "%s %s", r.Method, r.URL.Path)
			return
		}
		g.tool(w, r, strings.TrimPrefix(r.URL.Path, ipc.PathToolPrefix))
	case strings.HasPrefix(r.URL.Path, "/ipc/"):
		g.violation(w, http.StatusNotFound, "unknown ipc path %s", r.URL.Path)
	case r.Method == http.MethodConnect || r.URL.Host != "":
		// Egress proxy requests: refused, and recorded.
		g.mu.Lock()
		g.egress = append(g.egress, r.Method+" "+r.Host)
		g.mu.Unlock()
		http.Error(w, "fakegateway: no egress", http.StatusForbidden)
	case g.api != nil:
		g.api.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (g *Gateway) next(w http.ResponseWriter, r *http.Request) {
	// Under the lock: a test sets PollWait after New, and an agent in
	// another process may poll before the test's next call of its own.
	g.mu.Lock()
	wait := g.PollWait
	g.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		g.mu.Lock()
		if len(g.inputs) > 0 {
			in := g.inputs[0]
			g.inputs = g.inputs[1:]
			g.polls++
			g.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(in) //nolint:errcheck // the agent went away
			return
		}
		g.mu.Unlock()
		select {
		case <-g.inputCh:
		case <-t.C:
			g.mu.Lock()
			g.polls++
			g.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (g *Gateway) output(w http.ResponseWriter, r *http.Request) {
	var o ipc.Output
	b, err := io.ReadAll(io.LimitReader(r.Body, ipc.MaxOutputBytes))
	if err == nil {
		err = ipc.DecodeStrict(b, &o)
	}
	if err != nil {
		g.violation(w, http.StatusBadRequest, "output: %v", err)
		return
	}
	if err := o.Validate(); err != nil {
		g.violation(w, http.StatusBadRequest, "output: %v", err)
		return
	}
	g.outputs <- o
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) tool(w http.ResponseWriter, r *http.Request, name string) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || !json.Valid(b) || !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		g.violation(w, http.StatusBadRequest, "tool %s: arguments are not a JSON object: %q", name, b)
		return
	}
	g.mu.Lock()
	g.calls = append(g.calls, ToolCall{Name: name, Args: b})
	f := g.tools[name]
	g.mu.Unlock()
	resp := ipc.ToolResponse{Error: "fakegateway: no such tool: " + name}
	if f != nil {
		resp = f(b)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp) //nolint:errcheck // the agent went away
}
