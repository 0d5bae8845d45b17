// Package control is the daemon's control socket: HTTP with JSON bodies over
// a unix socket in the data home (config.ControlSocket), and the client the
// CLI uses to reach it.
//
// The socket is the boundary: it is created 0600 (bound in a private
// directory, then renamed into place), so only the user running the daemon
// can connect, and every request body is size-limited and decoded strictly
// into typed values (unknown fields rejected, finding 12). Errors are
// {"error": "…"} with a precise status.
//
// Each endpoint is one handler method registered in routes:
//
//	POST /v1/local/messages  {chat, sender?, text, id?, wait?}
//	    without wait: 200 Receipt {chat, id, seq, will_answer, duplicate?}
//	    once stored; with wait: 200 NDJSON of local.Event — the message's
//	    stored event, then the chat's typing and reply events, ending after
//	    the done event that covers the message (at once when it starts no
//	    run or is a duplicate). 400 bad request, 404 unregistered chat,
//	    409 same id being stored, 500 store failed, 503 channel down.
//	GET  /v1/local/events?chat=local:F
//	    200 NDJSON of every local.Event of the chat until the client leaves.
//	GET  /v1/status?group=F
//	    200 status.Report, of every group or of group F with its trace;
//	    404 no such group.
//
// Streams flush each line; a client that falls behind gets a "lagged" event
// and the end of the stream.
package control

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/status"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// maxSocketPath is the longest path a unix socket may have on Linux (the
// 108-byte sun_path, less its terminating NUL).
const maxSocketPath = 107

// shutdownGrace is how long Serve waits for requests still running when its
// context ends. Streams end at once: their contexts derive from Serve's.
const shutdownGrace = 5 * time.Second

// Options configures a Server.
type Options struct {
	// Local is the local terminal channel; nil disables the /v1/local
	// endpoints (they answer 503).
	Local *local.Channel
	// Registered reports whether a chat is bound to a registered group;
	// nil means unknown. With it, a message to an unregistered local chat
	// is refused (404) before it is delivered, and a message with a
	// client-chosen id that stores nothing new is surely a duplicate.
	Registered func(ctx context.Context, jid string) (bool, error)
	// Tools answers the owner's commands (the tools ipc.Tools gives the
	// owner, with the owner's rights: tools.Set.OwnerCall); nil disables
	// /v1/tools.
	Tools func(ctx context.Context, tool string, args json.RawMessage) (any, error)
	// Status reports what the daemon does (of one group, with its trace,
	// when folder is set); nil disables /v1/status.
	Status func(ctx context.Context, folder string) (*status.Report, error)
	// Logger receives request errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server answers the control API. Create it with NewServer and run it with
// Serve (or Listen and ServeListener).
type Server struct {
	opt Options
	log *slog.Logger
	mux *http.ServeMux
}

// NewServer makes a server for opts.
func NewServer(opts Options) *Server {
	s := &Server{opt: opts, log: cmp.Or(opts.Logger, slog.Default()).With("component", "control"), mux: http.NewServeMux()}
	s.routes()
	return s
}

// routes is the API's table of contents: one handler per endpoint.
func (s *Server) routes() {
	s.mux.HandleFunc("POST /v1/local/messages", s.postLocalMessage)
	s.mux.HandleFunc("GET /v1/local/events", s.getLocalEvents)
	s.mux.HandleFunc("POST /v1/tools/{tool}", s.postTool)
	s.mux.HandleFunc("GET /v1/status", s.getStatus)
}

// getStatus answers `nanoclaw status`.
func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	if s.opt.Status == nil {
		writeError(w, http.StatusServiceUnavailable, "status is not available")
		return
	}
	folder := r.URL.Query().Get("group")
	if folder != "" {
		if err := store.ValidateFolder(folder); err != nil {
			writeError(w, http.StatusBadRequest, "group: %s", err.Error())
			return
		}
	}
	rep, err := s.opt.Status(r.Context(), folder)
	if errors.Is(err, status.ErrNoGroup) {
		writeError(w, http.StatusNotFound, "%s", err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%s", err.Error())
		return
	}
	ipc.WriteJSON(w, http.StatusOK, rep)
}

// postTool runs one of the owner's tools (ipc.Owner) for the CLI, with the
// owner's rights (Options.Tools), which are more than main's model has:
// only the owner widens a sandbox (R6). A refusal of the tool (not found,
// invalid value) is a 422 with its message.
func (s *Server) postTool(w http.ResponseWriter, r *http.Request) {
	tool := r.PathValue("tool")
	if spec, ok := ipc.LookupTool(tool); s.opt.Tools == nil || !ok || spec.Callers&ipc.Owner == 0 {
		writeError(w, http.StatusNotFound, "no command %q", tool)
		return
	}
	var obj map[string]json.RawMessage // arguments are one JSON object
	if err := decodeBody(w, r, 64<<10, &obj); err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	args, _ := json.Marshal(obj)
	res, err := s.opt.Tools(r.Context(), tool, args)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "%s", err.Error())
		return
	}
	ipc.WriteJSON(w, http.StatusOK, res)
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve creates the control socket at path (see Listen) and serves it until
// ctx ends; then it closes the socket and removes it.
func (s *Server) Serve(ctx context.Context, path string) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves ln until ctx ends, then closes it (a unix listener
// made by Listen removes its socket file when closed). Requests, streams
// included, see their context end with ctx.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s,
		// No ReadTimeout or WriteTimeout: they would cut event streams.
		// Clients are the owner's own CLI processes.
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		ln.Close()
		return fmt.Errorf("control socket %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control socket %s: %w", ln.Addr(), err)
	}
	return nil
}

// Listen creates the control socket at path, mode 0600. A socket left at
// path by a stopped daemon is removed first; a live one (another daemon), or
// anything that is not a socket, is refused rather than replaced. The
// directory must not be writable by other users, who could otherwise swap
// the socket (as finding 4 for the IPC directory). Closing the listener
// removes the socket.
func Listen(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket path %s is %d bytes, longer than the %d a unix socket allows: choose a shorter NANOCLAW_HOME", path, len(path), maxSocketPath)
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("control socket directory %s is not a directory", dir)
	}
	if perm := info.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("control socket directory %s is writable by other users (mode %04o): run chmod 700 %s", dir, perm, dir)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// The socket is bound in a private directory beside path, made 0600
	// there and then renamed into place: nobody else can connect in the
	// moment before the chmod, whatever the umask and the data home's mode.
	tmp, err := os.MkdirTemp(dir, ".c")
	if err != nil {
		return nil, fmt.Errorf("create control socket: %w", err)
	}
	defer os.RemoveAll(tmp)
	tpath := filepath.Join(tmp, "s")
	if len(tpath) > maxSocketPath {
		return nil, fmt.Errorf("control socket path %s is %d bytes, longer than the %d a unix socket allows: choose a shorter NANOCLAW_HOME", tpath, len(tpath), maxSocketPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tpath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("create control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // it would unlink the temporary name
	if err := os.Chmod(tpath, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict control socket: %w", err)
	}
	if err := os.Rename(tpath, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("create control socket: %w", err)
	}
	return &socketListener{UnixListener: ln, path: path}, nil
}

// socketListener is the control socket's listener: it reports the socket's
// real path and removes it when closed.
type socketListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *socketListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { os.Remove(l.path) })
	return err
}

// removeStale removes a dead socket at path; it refuses a live one and
// anything that is not a socket.
func removeStale(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if info.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%s): refusing to replace it; move it away", path, info.Mode().Type())
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use by a running process (another nanoclaw with this data home?)", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	return nil
}

// errorBody is every error response: {"error": "what went wrong"}.
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers with status and {"error": msg}.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	ipc.WriteJSON(w, status, errorBody{Error: fmt.Sprintf(format, args...)})
}

// decodeBody reads r's JSON body into v: at most limit bytes, one object,
// no unknown fields (finding 12). The error is the 400's message.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("request body larger than %d bytes", limit)
	case err != nil:
		return fmt.Errorf("request body: %v", err)
	case len(bytes.TrimSpace(b)) == 0:
		return errors.New("empty request body: want a JSON object")
	}
	if err := ipc.DecodeStrict(b, v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// ndjson writes a streaming response: one JSON value per line, each flushed
// at once so the client sees it as it happens.
type ndjson struct {
	rc  *http.ResponseController
	enc *json.Encoder
}

// startNDJSON sends the 200 header of a stream and flushes it, so the client
// knows the stream is set up.
func startNDJSON(w http.ResponseWriter) (*ndjson, error) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	s := &ndjson{rc: http.NewResponseController(w), enc: json.NewEncoder(w)}
	s.enc.SetEscapeHTML(false)
	return s, s.rc.Flush()
}

// send writes v as one line and flushes it.
func (s *ndjson) send(v any) error {
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	return s.rc.Flush()
}
