package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// How /ipc answers:
//
//	GET  ipc.PathNext        200 ipc.Input | 204 nothing within the poll time
//	POST ipc.PathOutput      204 accepted | 400 invalid body | 409 refused by the host
//	POST ipc.PathToolPrefix+name
//	                         200 ipc.ToolResponse{Result} or {Error}: a tool's
//	                             error (also invalid send_message arguments)
//	                             is an answer for the model
//	                         400 the body is not one JSON object, or too large
//	                         404 no such path, or an invalid tool name
//	405 wrong method, 503 the host serves no IPC, 500 the host failed.
//
// Every error body is {"error": "..."}, the shape of ipc.ToolResponse.

// ipcRequest serves /ipc/... for the endpoint's group.
func (e *Endpoint) ipcRequest(w http.ResponseWriter, r *http.Request) {
	h := e.gw.opt.Handler
	if h == nil {
		jsonError(w, http.StatusServiceUnavailable, "gateway: the host serves no IPC")
		return
	}
	p := r.URL.Path
	method := http.MethodPost
	if p == ipc.PathNext {
		method = http.MethodGet
	}
	if r.Method != method && (p == ipc.PathNext || p == ipc.PathOutput || strings.HasPrefix(p, ipc.PathToolPrefix)) {
		w.Header().Set("Allow", method)
		jsonError(w, http.StatusMethodNotAllowed, fmt.Sprintf("gateway: %s wants %s, not %s", p, method, r.Method))
		return
	}
	e.limitBody(w, r)
	switch {
	case p == ipc.PathNext:
		e.next(w, r, h)
	case p == ipc.PathOutput:
		e.output(w, r, h)
	case strings.HasPrefix(p, ipc.PathToolPrefix):
		e.tool(w, r, strings.TrimPrefix(p, ipc.PathToolPrefix))
	default:
		jsonError(w, http.StatusNotFound, fmt.Sprintf("gateway: no such IPC endpoint %s", p))
	}
}

// next long-polls the Handler for the group's next input, for at most the
// poll time and only while the agent waits.
func (e *Endpoint) next(w http.ResponseWriter, r *http.Request, h Handler) {
	ctx, cancel := context.WithTimeout(r.Context(), e.gw.opt.PollTimeout)
	defer cancel()
	in, ok, err := h.Next(ctx, e.group.Folder)
	switch {
	case r.Context().Err() != nil:
		return // the agent went away, or the endpoint closed
	case err != nil && ctx.Err() != nil, err == nil && !ok:
		w.WriteHeader(http.StatusNoContent)
	case err != nil:
		e.gw.opt.Logger.Error("gateway: next input", "group", e.group.Folder, "err", err)
		jsonError(w, http.StatusInternalServerError, "next input: "+err.Error())
	default:
		if err := in.Validate(); err != nil {
			e.gw.opt.Logger.Error("gateway: host produced an invalid input", "group", e.group.Folder, "err", err)
			jsonError(w, http.StatusInternalServerError, "next input: "+err.Error())
			return
		}
		ipc.WriteJSON(w, http.StatusOK, in)
	}
}

// output validates one Output and hands it to the Handler.
func (e *Endpoint) output(w http.ResponseWriter, r *http.Request, h Handler) {
	body, release, status, err := e.readBody(r, ipc.MaxOutputBytes, &e.bodies)
	if err != nil {
		jsonError(w, status, "output: "+err.Error())
		return
	}
	defer release()
	var out ipc.Output
	if err := ipc.DecodeStrict(body, &out); err != nil {
		jsonError(w, http.StatusBadRequest, "output: "+err.Error())
		return
	}
	if err := out.Validate(); err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.Output(r.Context(), e.group.Folder, out); err != nil {
		e.gw.opt.Logger.Warn("gateway: output refused", "group", e.group.Folder, "input_id", out.InputID, "err", err)
		jsonError(w, http.StatusConflict, fmt.Sprintf("output %s: %v", out.InputID, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// tool runs one host tool for the endpoint's group.
func (e *Endpoint) tool(w http.ResponseWriter, r *http.Request, name string) {
	if !ipc.ValidToolName(name) {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("gateway: invalid tool name %q (want a lowercase letter, then up to 63 of a-z, 0-9, '_')", name))
		return
	}
	body, release, status, err := e.readBody(r, ipc.MaxToolBodyBytes, &e.bodies)
	if err != nil {
		jsonError(w, status, fmt.Sprintf("tool %s: arguments: %v", name, err))
		return
	}
	defer release()
	if err := ipc.DecodeStrict(body, &map[string]json.RawMessage{}); err != nil {
		jsonError(w, http.StatusBadRequest, fmt.Sprintf("tool %s: arguments: %v", name, err))
		return
	}
	start := time.Now()
	var res any
	// Arguments whose ipc type validates itself (send_message's) are
	// checked here, before the host sees them.
	if spec, ok := ipc.LookupTool(name); ok {
		if a, ok := spec.NewArgs().(interface{ Validate() error }); ok {
			if err = cmp.Or(ipc.DecodeStrict(body, a), a.Validate()); err != nil {
				err = fmt.Errorf("invalid arguments: %w", err)
			}
		}
	}
	switch {
	case err != nil:
	case e.gw.opt.Tools == nil:
		err = fmt.Errorf("tool %s is not available", name)
	default:
		res, err = e.gw.opt.Tools.Call(r.Context(), e.group, name, json.RawMessage(body))
	}
	attrs := []any{"group", e.group.Folder, "tool", name, "duration_ms", time.Since(start).Milliseconds()}
	if err != nil {
		e.gated(slog.LevelInfo, "ipc tool", append(attrs, "ok", false, "err", err.Error())...)
		ipc.WriteJSON(w, http.StatusOK, ipc.ToolResponse{Error: err.Error()})
		return
	}
	var result json.RawMessage
	if res != nil {
		if result, err = json.Marshal(res); err != nil {
			e.gw.opt.Logger.Error("gateway: encode tool result", append(attrs, "err", err)...)
			jsonError(w, http.StatusInternalServerError, fmt.Sprintf("tool %s: cannot encode result: %v", name, err))
			return
		}
		// A backstop: the tools bound their answers; one that is still
		// larger is not handed to the model (nor held for it).
		if len(result) > maxToolResultBytes {
			e.warn("ipc tool", append(attrs, "ok", false, "err", "result too large", "bytes", len(result))...)
			ipc.WriteJSON(w, http.StatusOK, ipc.ToolResponse{Error: fmt.Sprintf("the answer of %s is larger than %d bytes; ask for less", name, maxToolResultBytes)})
			return
		}
	}
	e.gated(slog.LevelInfo, "ipc tool", append(attrs, "ok", true)...)
	ipc.WriteJSON(w, http.StatusOK, ipc.ToolResponse{Result: result})
}

// maxToolResultBytes bounds one tool answer.
const maxToolResultBytes = 1 << 20
