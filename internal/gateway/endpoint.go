package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// closeWait bounds how long Close waits for requests to end after cutting
// their connections.
const closeWait = 5 * time.Second

// Endpoint is one group's socket, served until Close.
type Endpoint struct {
	gw     *Gateway
	group  Caller        // whose socket this is
	policy egress.Policy // where its egress may go
	path   string
	srv    *http.Server
	// The browser's socket beside it (ipc.BrowserSocketName), for a
	// group with a browser (Caller.Browser): egress only, to public
	// addresses only (browserProxy).
	pagePath string
	pageSrv  *http.Server // nil without a browser
	// What each socket's requests may hold: the agent's, and the
	// browser's apart, so a page cannot use up the agent's (shareOf).
	agent, page share

	// R3: what the socket's container can make the host hold is bounded
	// (limits.go).
	bodies        bodyBudget    // /ipc bodies
	apiBodies     bodyBudget    // /v1 bodies being checked
	apiSlots      chan struct{} // one per API call in flight
	refusals      atomic.Int64  // refused at the caps since the last log line
	refusalLogged atomic.Int64  // unix nanoseconds of that line

	// ctx is every request's base context: Close cancels it, which ends
	// long polls, streams and hijacked tunnels alike.
	ctx    context.Context
	cancel context.CancelFunc
	served chan struct{} // closed when srv.Serve (and pageSrv.Serve) returned

	mu       sync.Mutex // orders enter against Close
	handlers sync.WaitGroup
	once     sync.Once
	closeErr error
}

// Open creates dir (0700) and the socket dir/ipc.SocketName (0600) for g,
// and for a group with a browser dir/ipc.BrowserSocketName, and serves them
// until Close. When the host runs as root and uid, gid are not negative,
// dir and sockets are handed to that user so the container user, and only
// it, can connect. A stale socket left by an earlier run is removed; any
// other file in its place is an error. A group has at most one open
// Endpoint.
func (gw *Gateway) Open(g Caller, policy egress.Policy, dir string, uid, gid int) (*Endpoint, error) {
	if g.Folder == "" || strings.ContainsAny(g.Folder, "/\\\x00") || g.Folder == "." || g.Folder == ".." {
		return nil, fmt.Errorf("gateway: invalid group folder %q", g.Folder)
	}
	e := &Endpoint{gw: gw, group: g, policy: policy, path: filepath.Join(dir, ipc.SocketName),
		pagePath: filepath.Join(dir, ipc.BrowserSocketName), served: make(chan struct{}),
		agent: share{slots: make(chan struct{}, gw.opt.MaxTunnels)}, page: share{slots: make(chan struct{}, max(gw.opt.MaxTunnels/2, 1))},
		bodies: bodyBudget{max: maxBufferedBodies}, apiBodies: bodyBudget{max: maxBufferedAPIBodies},
		apiSlots: make(chan struct{}, maxAPICalls)}
	gw.mu.Lock()
	if gw.open[g.Folder] != nil {
		gw.mu.Unlock()
		return nil, fmt.Errorf("gateway: group %s already has an open socket (%s)", g.Folder, gw.open[g.Folder].path)
	}
	gw.open[g.Folder] = e
	gw.mu.Unlock()

	ln, err := listen(dir, e.path, uid, gid)
	var pageLn net.Listener
	if err == nil && g.Browser {
		if pageLn, err = listen(dir, e.pagePath, uid, gid); err != nil {
			ln.Close()
			os.Remove(e.path)
		}
	}
	if err != nil {
		gw.mu.Lock()
		delete(gw.open, g.Folder)
		gw.mu.Unlock()
		return nil, fmt.Errorf("gateway: open socket of group %s: %w", g.Folder, err)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	serve := func(h http.Handler, ln net.Listener) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			BaseContext:       func(net.Listener) context.Context { return e.ctx },
			ErrorLog:          slog.NewLogLogger(gw.opt.Logger.Handler(), slog.LevelWarn),
		}
	}
	e.srv = serve(e, ln)
	listeners := map[*http.Server]net.Listener{e.srv: ln}
	if pageLn != nil {
		e.pageSrv = serve(browserProxy{e}, pageLn)
		listeners[e.pageSrv] = pageLn
	}
	var serving sync.WaitGroup
	for srv, ln := range listeners {
		serving.Go(func() {
			srv.Serve(newCapListener(ln, gw.opt.MaxConns, e.refuseAtCap)) //nolint:errcheck // returns ErrServerClosed on Close
		})
	}
	go func() {
		serving.Wait()
		close(e.served)
	}()
	attrs := []any{"group", g.Folder, "path", e.path, "egress", string(policy.Mode), "rules", len(policy.Allow)}
	if e.pageSrv != nil {
		attrs = append(attrs, "browser_path", e.pagePath)
	}
	gw.opt.Logger.Info("gateway socket open", attrs...)
	return e, nil
}

// listen makes dir and the socket in it, private to uid:gid (see Open).
func listen(dir, sock string, uid, gid int) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (%s)", dir, st.Mode().Type())
	}
	chown := os.Geteuid() == 0 && uid >= 0 && gid >= 0
	// Until the socket is private, the directory is ours alone: between
	// bind and chmod the socket briefly has the umask's mode.
	if chown {
		if err := os.Lchown(dir, os.Geteuid(), os.Getegid()); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if st, err := os.Lstat(sock); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket (%s); not removing it", sock, st.Mode().Type())
		}
		if err := os.Remove(sock); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		os.Remove(sock)
		return nil, err
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		return fail(err)
	}
	if chown {
		if err := os.Lchown(sock, uid, gid); err != nil {
			return fail(err)
		}
		if err := os.Lchown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	return ln, nil
}

// Close stops serving: the listener is closed, every request and egress
// tunnel in flight is ended, and the socket file is removed. It waits
// (briefly) for the handlers to return. Calling it again does nothing.
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		e.mu.Lock()
		e.cancel()
		e.mu.Unlock()
		e.closeErr = e.srv.Close()
		if e.pageSrv != nil {
			e.closeErr = errors.Join(e.closeErr, e.pageSrv.Close())
		}
		<-e.served
		done := make(chan struct{})
		go func() { e.handlers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
			e.gw.opt.Logger.Warn("gateway: requests still running after close", "group", e.group.Folder)
		}
		paths := []string{e.path}
		if e.pageSrv != nil {
			paths = append(paths, e.pagePath)
		}
		for _, p := range paths {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && e.closeErr == nil {
				e.closeErr = err
			}
		}
		e.gw.mu.Lock()
		if e.gw.open[e.group.Folder] == e {
			delete(e.gw.open, e.group.Folder)
		}
		e.gw.mu.Unlock()
		e.gw.opt.Logger.Info("gateway socket closed", "group", e.group.Folder)
	})
	return e.closeErr
}

// enter registers a request, unless the Endpoint is closing.
func (e *Endpoint) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx.Err() != nil {
		return false
	}
	e.handlers.Add(1)
	return true
}

// ServeHTTP routes one request from the group's container. The group is
// e.group, whatever the request says (finding 4).
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !e.enter() {
		jsonError(w, http.StatusServiceUnavailable, "gateway: closing")
		return
	}
	defer e.handlers.Done()
	if r.Method == http.MethodConnect {
		e.connect(w, r, false)
		return
	}
	// Any request-target but a path ("http:///ipc/..." has no host, yet is
	// a URL) came by a URL.
	byURL := !strings.HasPrefix(r.RequestURI, "/")
	if r.URL.Host != "" {
		if !isSelf(r.URL) {
			e.forward(w, r, false)
			return
		}
		// "GET http://127.0.0.1:3128/v1/..." is a client that sends even its
		// API calls through HTTP_PROXY: it means the gateway itself.
		r.URL.Scheme, r.URL.Host = "", ""
	}
	if fromPage(r.Header) {
		e.warn("gateway: a web page's request refused", "group", e.group.Folder, "method", r.Method,
			"target", sanitize.Clip(r.URL.EscapedPath(), maxLoggedTarget, "…"), "site", sanitize.Name(r.Header.Get("Sec-Fetch-Site")))
		forbidden(w, "gateway: a web page may not call the gateway; its tools and the API are the agent's")
		return
	}
	if p := r.URL.Path; strings.HasPrefix(p, "/ipc/") {
		if r.URL.RawPath != "" || path.Clean(p) != p && path.Clean(p)+"/" != p {
			jsonError(w, http.StatusBadRequest, fmt.Sprintf("gateway: path %q is not clean", sanitize.Clip(r.URL.EscapedPath(), maxLoggedTarget, "…")))
			return
		}
		if byURL || r.Host != ipc.GatewayHost {
			// Only nanoclaw-agent's own calls: not a URL that some tool
			// followed to the forwarder, which could take the agent's next
			// prompt or post as the agent (ipc.GatewayHost).
			e.warn("gateway: an IPC request that came by a URL refused", "group", e.group.Folder, "method", r.Method,
				"target", sanitize.Clip(r.URL.EscapedPath(), maxLoggedTarget, "…"), "host", sanitize.Clip(r.Host, 256, "…"))
			forbidden(w, "gateway: /ipc answers nanoclaw-agent alone, on the socket; a request that came by a URL (a followed redirect) is refused")
			return
		}
		e.ipcRequest(w, r)
		return
	}
	// Anything else is for the API, which refuses all but the calls
	// Claude Code makes (apiAllowed).
	e.apiRequest(w, r)
}

// browserProxy serves the group's browser socket (ipc.BrowserSocketName),
// the one the browser's proxy setting leads to: CONNECT and absolute-URI
// requests under the group's policy with PublicOnly, nothing else. Any
// page the browser loads can send requests through it, so it reaches
// neither the gateway itself (tools, the API with the owner's key, the
// prompt queue) nor a private destination the owner opened for the agent,
// whatever a page's requests look like: a CONNECT tunnel hides them.
type browserProxy struct{ e *Endpoint }

func (b browserProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := b.e
	if !e.enter() {
		jsonError(w, http.StatusServiceUnavailable, "gateway: closing")
		return
	}
	defer e.handlers.Done()
	switch {
	case r.Method == http.MethodConnect:
		e.connect(w, r, true)
	case r.URL.Host != "":
		e.forward(w, r, true)
	default:
		e.gatedBy(&e.page.warnings, slog.LevelWarn, "gateway: a request on the browser's proxy for the gateway itself refused", "group", e.group.Folder, "method", r.Method,
			"target", sanitize.Clip(r.URL.EscapedPath(), maxLoggedTarget, "…"))
		forbidden(w, "gateway: the browser's proxy carries web traffic only; the gateway's tools and the API are the agent's")
	}
}

// forbidden refuses a request the gateway will not read: its connection
// closes after the answer, so the answer does not wait for a body the
// client may never finish sending.
func forbidden(w http.ResponseWriter, msg string) {
	w.Header().Set("Connection", "close")
	jsonError(w, http.StatusForbidden, msg)
}

// fromPage reports whether a request for the gateway itself carries a web
// page's marks. It is a second line: the group's browser has its own
// socket, which never serves the gateway (browserProxy), and /ipc answers
// only Host ipc.GatewayHost. A browser marks what a page asks of an origin
// it trusts (Fetch Metadata, Sec-Fetch-*, on requests to 127.0.0.1 or
// localhost; Origin on POSTs), and a page can remove neither (forbidden
// header names); but it sends no Fetch Metadata to an origin it does not
// trust, such as http://[::ffff:127.0.0.1]:3128 or http://0.0.0.0:3128, so
// a GET from a page may come unmarked. Claude Code, curl and
// nanoclaw-agent send none of them (Sec-Fetch-Mode alone is left out:
// Node's fetch sends it on every request).
func fromPage(h http.Header) bool {
	for _, k := range []string{"Sec-Fetch-Site", "Sec-Fetch-Dest", "Sec-Fetch-User", "Origin"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// isSelf reports whether an absolute URL names the gateway as the
// container sees it: loopback at ipc.ProxyPort.
func isSelf(u *url.URL) bool {
	return u.Port() == strconv.Itoa(ipc.ProxyPort) && slices.Contains([]string{"127.0.0.1", "localhost", "::1"}, strings.ToLower(u.Hostname()))
}
