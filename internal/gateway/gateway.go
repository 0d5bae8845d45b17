// Package gateway serves each group's unix socket: everything a group's
// container can reach on the host goes through it, and the host knows the
// caller's group from which socket a request arrived on, never from
// anything in the request. IPC is request/response on that socket, not
// files written, polled and deleted, so the original's TOCTOU window is
// gone (finding 4).
//
// One socket answers three kinds of HTTP requests:
//
//   - /v1/... is the Anthropic API, reverse-proxied to the upstream with the
//     real credential injected; the container holds only a placeholder
//     (finding 1). Responses stream through unbuffered, and their token
//     usage is counted per group and UTC day, priced by the host's table
//     (usage.go, prices.go). A Messages call of a group over its budget,
//     or over the total of all groups, is refused before it goes upstream
//     (budget.go).
//   - CONNECT host:port and absolute-URI http:// requests are the egress
//     proxy: the group's egress.Policy decides, on the addresses the host
//     resolved, and the connection goes to the checked address (finding 2).
//     Every decision is one log line and is counted.
//   - /ipc/... is the agent's side of the host: its next input and its
//     output, served by a Handler, and the host's Tools.
package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// UsageRecorder stores token usage; *store.Store satisfies it.
type UsageRecorder interface {
	// RecordUsage counts one API response of the group in folder on day
	// (YYYY-MM-DD, UTC) with its tokens as the API reported them and its
	// cost in millionths of a dollar.
	RecordUsage(ctx context.Context, folder, day string, inTokens, outTokens, cacheRead, cacheWrite, costMicro int64) error
}

// Caller is who made a request: the group the socket belongs to.
type Caller struct {
	Folder string
	IsMain bool
	// Browser: the group runs a browser, so its Endpoint also serves the
	// browser's socket (ipc.BrowserSocketName).
	Browser bool
}

// Handler is the host's side of /ipc. Every method gets the caller's group
// from the socket the request came in on.
type Handler interface {
	// Next waits for the group's next input. It returns false when nothing
	// came before ctx ended (the gateway bounds the wait and ends it when
	// the agent goes away); the agent then asks again.
	Next(ctx context.Context, folder string) (in ipc.Input, ok bool, err error)
	// Output delivers one validated answer of the group's agent. An error
	// means the host refused it (no such prompt, no session); the agent
	// gets 409 with the message.
	Output(ctx context.Context, folder string, out ipc.Output) error
}

// Tools are the host's tools (internal/tools in production).
type Tools interface {
	// Call runs the host tool name for caller with args, a JSON object
	// (arguments whose ipc type validates itself are already validated).
	// The result is marshalled as the answer's result; an error is an
	// answer for the model (unknown tool, not permitted, invalid value),
	// returned as the answer's error.
	Call(ctx context.Context, caller Caller, name string, args json.RawMessage) (any, error)
}

// Approver asks the owner about a destination of egress mode ask
// (internal/router's Approvals in production).
type Approver interface {
	// Ask holds until the owner answers for the group in folder about
	// host:port, or ctx ends, which is no answer (egress.VerdictTimeout).
	// browser says a page in the group's browser asks, not the agent.
	Ask(ctx context.Context, folder, host string, port int, browser bool) (egress.Verdict, error)
}

// Resolver looks up a host's addresses; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// defaultMaxConns is what one agent needs with room to spare: the
// in-container forwarder pipes at most incontainer.MaxForwardedConns (64)
// connections (Claude Code's API streams and the egress tunnels, which
// have their own cap), and nanoclaw-agent's own client holds the long
// poll, an output and a few tool calls of the MCP server.
const defaultMaxConns = 96

// Options configure a Gateway.
type Options struct {
	// Upstream is the Messages API base URL, e.g. https://api.anthropic.com;
	// its path, if any, is kept in front of /v1/....
	Upstream *url.URL
	// APIKey and OAuthToken are the real credentials; the API key wins when
	// both are set (as in Claude Code). With neither, /v1 answers 401.
	APIKey, OAuthToken string
	// Usage records tokens per group and day; nil records nothing.
	Usage UsageRecorder
	// Prices give each response's cost from its model and tokens; a model
	// not in it costs 0 (logged once).
	Prices Prices
	// Budget refuses a group's Messages calls once its budget or the
	// host's total is reached; nil enforces none. Usage must be set too.
	Budget *Budgeter
	// OnDenied hears of each egress connection refused (the group, the
	// destination "host:port" and why) for `status`; it must return fast.
	OnDenied func(folder, target, reason string)
	// Handler serves /ipc; nil answers 503 there.
	Handler Handler
	// Tools answers /ipc/tool/...; nil answers every call with an error.
	Tools Tools
	// Logger gets one line per egress decision and API call; nil means
	// slog.Default().
	Logger *slog.Logger
	// Resolver resolves egress destinations; nil means net.DefaultResolver.
	Resolver Resolver
	// Approver is asked about destinations of groups in egress mode ask;
	// nil refuses them. AskTimeout bounds the wait for the owner's answer
	// (default 2 minutes); no answer is a refusal.
	Approver   Approver
	AskTimeout time.Duration
	// Dial connects to an address "ip:port" the egress policy allowed; nil
	// means a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// MaxTunnels bounds a group's open egress connections (default 32),
	// and half as many more of its browser's (on the browser's socket);
	// TunnelIdle closes one when neither side sent anything for that long
	// (default 5 minutes).
	MaxTunnels int
	TunnelIdle time.Duration
	// PollTimeout bounds one long poll of ipc.PathNext (default 25
	// seconds).
	PollTimeout time.Duration
	// MaxConns bounds the connections open at once on each of a group's
	// sockets (default defaultMaxConns); one more is answered 503 and closed
	// without reading it. BodyTimeout bounds reading one request's body
	// (default 30 seconds): a body not complete by then is cut.
	MaxConns    int
	BodyTimeout time.Duration
}

// DefaultAskTimeout is how long a connection of egress mode ask waits for
// the owner's answer when Options.AskTimeout is not set.
const DefaultAskTimeout = 2 * time.Minute

// Stats are one group's counters since the Gateway was made.
type Stats struct {
	APIRequests  int64 // /v1 requests proxied upstream
	APIRefused   int64 // /v1 requests refused: not a call Claude Code makes, or a body that asks for too much
	InputTokens  int64 // counted from API responses (see usage.go)
	OutputTokens int64
	Allowed      int64 // egress connections allowed
	Denied       int64 // egress connections denied
	Active       int64 // egress connections open now
	BytesUp      int64 // container → destination, of closed connections
	BytesDown    int64 // destination → container, of closed connections
	Refused      int64 // connections and requests refused at the socket's caps
}

// Gateway serves the groups' sockets. Make it with New; Open one Endpoint
// per running group.
type Gateway struct {
	opt     Options
	api     *httputil.ReverseProxy
	records sync.WaitGroup // usage being stored

	mu       sync.Mutex
	stats    map[string]Stats
	open     map[string]*Endpoint // by folder
	unpriced map[string]bool      // models the price table lacks, logged once each
}

// New makes a Gateway; it serves nothing until Open.
func New(opt Options) *Gateway {
	opt.Logger = cmp.Or(opt.Logger, slog.Default())
	opt.Resolver = cmp.Or[Resolver](opt.Resolver, net.DefaultResolver)
	if opt.Dial == nil {
		opt.Dial = (&net.Dialer{Timeout: dialTimeout}).DialContext
	}
	// A negative limit is no limit given: the default.
	opt.MaxTunnels = cmp.Or(max(opt.MaxTunnels, 0), 32)
	opt.TunnelIdle = cmp.Or(max(opt.TunnelIdle, 0), 5*time.Minute)
	opt.PollTimeout = cmp.Or(max(opt.PollTimeout, 0), 25*time.Second)
	opt.AskTimeout = cmp.Or(max(opt.AskTimeout, 0), DefaultAskTimeout)
	opt.MaxConns = cmp.Or(max(opt.MaxConns, 0), defaultMaxConns)
	opt.BodyTimeout = cmp.Or(max(opt.BodyTimeout, 0), 30*time.Second)
	g := &Gateway{opt: opt, stats: map[string]Stats{}, open: map[string]*Endpoint{}, unpriced: map[string]bool{}}
	g.api = g.newAPIProxy()
	return g
}

// Stats returns a copy of every group's counters, by folder.
func (g *Gateway) Stats() map[string]Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.stats)
}

// count changes the group's counters under the lock.
func (g *Gateway) count(folder string, f func(*Stats)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats[folder]
	f(&s)
	g.stats[folder] = s
}

// Close closes every open Endpoint and waits for usage being stored.
func (g *Gateway) Close() error {
	g.mu.Lock()
	eps := slices.Collect(maps.Values(g.open))
	g.mu.Unlock()
	var first error
	for _, ep := range eps {
		if err := ep.Close(); err != nil && first == nil {
			first = err
		}
	}
	g.records.Wait()
	return first
}

// jsonError writes {"error": msg} (the shape of ipc.ToolResponse) with status.
func jsonError(w http.ResponseWriter, status int, msg string) {
	ipc.WriteJSON(w, status, ipc.ToolResponse{Error: msg})
}
