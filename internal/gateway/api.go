package gateway

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// maxAPICalls bounds a group's API calls in flight at once.
const maxAPICalls = 8

// drainTimeout bounds how long an API call goes on after its container
// left (Claude Code's own API timeout is 10 minutes): the call is cut
// from the container's connection so that its usage is read to the end,
// and this is what ends it then.
const drainTimeout = 10 * time.Minute

// estimateBytesPerToken turns a request body's size into the input tokens
// charged when the response never said: a conservative ratio (text runs
// about 4 bytes a token, JSON syntax adds bytes that are not tokens).
const estimateBytesPerToken = 3

// maxAPIBody bounds one request to the API: the Messages API's own limit.
const maxAPIBody = 32 << 20

// oauthBeta is the beta flag the API requires with an OAuth token.
const oauthBeta = "oauth-2025-04-20"

// NoCredentialMessage is the API error the agent shows when the host has no
// credential to inject.
const NoCredentialMessage = "no API credential configured on the host: set ANTHROPIC_API_KEY " +
	"(or CLAUDE_CODE_OAUTH_TOKEN) in nanoclaw's config (~/.config/nanoclaw/config) or environment, then restart nanoclaw"

// apiCall is one /v1 request in flight; the proxy's hooks find it in the
// request's context.
type apiCall struct {
	ep     *Endpoint
	body   *deadlineBody // nil when the request has none
	status int
	meter  *usageMeter // nil when the response carries no usage

	// Of a Messages call, for the estimate charged when its response
	// ends without its final usage, and for its reservation.
	messages  bool
	model     string // the model the request asks for
	maxTokens int64
	bodyLen   int64
	reserved  func() // takes the call's reservation back; nil when none
}

// settle takes the call's reservation back, if it holds one.
func (c *apiCall) settle() {
	if c.reserved != nil {
		c.reserved()
	}
}

type apiCallKey struct{}

// newAPIProxy makes the reverse proxy to the upstream API shared by all
// endpoints; the endpoint travels in the request context.
func (gw *Gateway) newAPIProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: gw.rewriteAPI,
		// Server-sent events go through as they come: no buffering.
		FlushInterval:  -1,
		ModifyResponse: gw.meterResponse,
		ErrorHandler:   gw.apiFailed,
		ErrorLog:       slog.NewLogLogger(gw.opt.Logger.Handler(), slog.LevelWarn),
	}
}

// apiAllowed are the API calls the proxy forwards, as "METHOD target"
// exactly as the request line has them (path and query, no other
// spelling). R5: only the API calls Claude Code makes go upstream with the
// real key. Claude Code 2.1.332, run against the fake API through agent
// turns, tools, subagents, /compact and /context, sent nothing but
// POST /v1/messages?beta=true and POST /v1/messages/count_tokens?beta=true
// (GET /v1/models only with CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY,
// which the agent does not set). The Files, Batches, Models, Skills, admin
// and every other API stay out of a container's reach.
var apiAllowed = map[string]bool{
	"POST /v1/messages":                        true,
	"POST /v1/messages?beta=true":              true,
	"POST /v1/messages/count_tokens":           true,
	"POST /v1/messages/count_tokens?beta=true": true,
}

// apiAllowedText names the allowed calls in the refusal.
const apiAllowedText = "POST /v1/messages and POST /v1/messages/count_tokens"

// maxLoggedTarget bounds how much of a refused request's target is logged
// and answered: it is the container's text.
const maxLoggedTarget = 256

// apiTarget is the request's path and query as the container wrote them.
func apiTarget(r *http.Request) string {
	t := r.URL.EscapedPath()
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		t += "?" + r.URL.RawQuery
	}
	return t
}

// apiRequest proxies one API request of the endpoint's group upstream, if
// it is one Claude Code makes; anything else is refused with 403 and one
// log line.
func (e *Endpoint) apiRequest(w http.ResponseWriter, r *http.Request) {
	gw := e.gw
	if target := apiTarget(r); !apiAllowed[r.Method+" "+target] {
		method, target := sanitize.Clip(r.Method, 32, "…"), sanitize.Clip(target, maxLoggedTarget, "…")
		gw.count(e.group.Folder, func(s *Stats) { s.APIRefused++ })
		e.warn("api refused", "group", e.group.Folder, "method", method, "target", target)
		apiError(w, http.StatusForbidden, "permission_error", fmt.Sprintf(
			"gateway: %s %q is not an API call nanoclaw forwards; only %s reach the API", method, target, apiAllowedText))
		return
	}
	switch {
	case gw.opt.Upstream == nil:
		apiError(w, http.StatusServiceUnavailable, "api_error", "gateway: no upstream API URL configured on the host")
		return
	case gw.opt.APIKey == "" && gw.opt.OAuthToken == "":
		apiError(w, http.StatusUnauthorized, "authentication_error", NoCredentialMessage)
		return
	case r.ContentLength > maxAPIBody:
		apiError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("gateway: request body of %d bytes exceeds %d", r.ContentLength, maxAPIBody))
		return
	}
	// Budgets are checked before the body is read: a refused call costs
	// nothing. Token counts are free and never refused.
	if r.URL.Path == "/v1/messages" && !e.withinBudget(r.Context(), w) {
		return
	}
	// One agent makes a call or two at once (a turn, a subagent's); more
	// is a container spending the key as fast as it can.
	select {
	case e.apiSlots <- struct{}{}:
		defer func() { <-e.apiSlots }()
	default:
		e.refuseAtCap("api")
		apiError(w, http.StatusTooManyRequests, "rate_limit_error", fmt.Sprintf("gateway: at most %d API calls of this group at once", maxAPICalls))
		return
	}
	call := &apiCall{ep: e, body: e.limitBody(w, r)}
	// R5: the body is read and checked before anything goes upstream.
	body, release, status, err := e.readBody(r, maxAPIBody, &e.apiBodies)
	if err != nil {
		typ, msg := "invalid_request_error", "gateway: "+err.Error()
		switch status {
		case http.StatusServiceUnavailable:
			typ = "overloaded_error"
		case http.StatusRequestTimeout:
			typ, msg = "timeout_error", "gateway: request "+err.Error()
		case http.StatusBadRequest:
			if strings.Contains(err.Error(), "exceeds") { // a body without a length (a declared one was answered above)
				status, typ = http.StatusRequestEntityTooLarge, "request_too_large"
			}
		}
		apiError(w, status, typ, msg)
		return
	}
	defer release()
	if err := checkMessagesBody(body, e.policy.Mode); err != nil {
		gw.count(e.group.Folder, func(s *Stats) { s.APIRefused++ })
		e.warn("api refused", "group", e.group.Folder, "method", r.Method, "target", apiTarget(r), "reason", err.Error())
		apiError(w, http.StatusForbidden, "permission_error", "gateway: "+err.Error())
		return
	}
	if r.URL.Path == "/v1/messages" {
		call.messages, call.bodyLen = true, int64(len(body))
		call.model, call.maxTokens = callEstimate(body)
		if !e.reserve(r.Context(), w, call) {
			return
		}
		defer call.settle()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	// Finding 1 of the review: a container that hangs up before the
	// response ends must not hide its cost, so the call to the upstream
	// does not end with the container's connection; the rest of the
	// response is read into the meter (meteredBody.Close). It ends with
	// the endpoint, or drainTimeout after the container left.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()
	defer context.AfterFunc(r.Context(), func() {
		select {
		case <-ctx.Done(): // the call ended
		case <-time.After(drainTimeout):
			cancel()
		}
	})()
	start := time.Now()
	gw.count(e.group.Folder, func(s *Stats) { s.APIRequests++ })
	// Deferred: the proxy aborts the handler with a panic when the
	// container goes away mid-stream, and the call is still logged.
	defer func() {
		attrs := []any{"group", e.group.Folder, "method", r.Method, "path", r.URL.Path, "status", call.status,
			"duration_ms", time.Since(start).Milliseconds()}
		if call.meter != nil {
			t, model, _ := call.meter.totals()
			attrs = append(attrs, "model", sanitize.Clip(model, 100, "…"), "input_tokens", t.Input, "output_tokens", t.Output,
				"cache_read_tokens", t.CacheRead, "cache_write_tokens", t.CacheWrite)
		}
		gw.opt.Logger.Info("api", attrs...)
	}()
	gw.api.ServeHTTP(w, r.WithContext(context.WithValue(ctx, apiCallKey{}, call)))
}

// rewriteAPI sends the request to the upstream with the host's credential
// and none of the container's (finding 1).
func (gw *Gateway) rewriteAPI(pr *httputil.ProxyRequest) {
	pr.SetURL(gw.opt.Upstream)
	h := pr.Out.Header
	for name := range h {
		if credentialHeader(name) {
			h.Del(name)
		}
	}
	// Without Accept-Encoding the transport asks for gzip itself and
	// decompresses, so the usage meter reads plain text.
	h.Del("Accept-Encoding")
	setCredential(h, gw.opt.APIKey, gw.opt.OAuthToken)
}

// setCredential puts the host's credential on a request to the upstream:
// the API key if there is one (as Claude Code prefers it), else the OAuth
// token with the beta flag OAuth needs.
func setCredential(h http.Header, apiKey, oauthToken string) {
	if apiKey != "" {
		h.Set("X-Api-Key", apiKey)
		return
	}
	h.Set("Authorization", "Bearer "+oauthToken)
	var betas []string
	for b := range strings.SplitSeq(strings.Join(h.Values("Anthropic-Beta"), ","), ",") {
		if b = strings.TrimSpace(b); b != "" {
			betas = append(betas, b)
		}
	}
	if !slices.Contains(betas, oauthBeta) {
		h.Set("Anthropic-Beta", strings.Join(append(betas, oauthBeta), ","))
	}
}

// credentialHeader reports whether a request header may carry a
// credential: such headers from the container never reach the upstream.
func credentialHeader(name string) bool {
	n := strings.ToLower(name) // Authorization, X-Api-Key, Cookie among them
	return slices.ContainsFunc([]string{"auth", "token", "secret", "password", "passwd", "credential", "api-key", "apikey", "cookie"},
		func(s string) bool { return strings.Contains(n, s) })
}

// meterResponse notes the status and, for responses that carry token
// usage, reads the body as it passes to the client.
func (gw *Gateway) meterResponse(resp *http.Response) error {
	call, _ := resp.Request.Context().Value(apiCallKey{}).(*apiCall)
	if call == nil {
		return nil
	}
	call.status = resp.StatusCode
	m := newUsageMeter(resp.Header.Get("Content-Type"))
	if m == nil {
		return nil
	}
	call.meter = m
	resp.Body = &meteredBody{ReadCloser: resp.Body, meter: m, done: func() { gw.recordUsage(call) }}
	return nil
}

// recordUsage counts and stores the tokens of a finished response, if it
// reported any, with their cost by the price table. Storing happens in
// the background so the end of the response is not held up by the
// database; until it is stored the Budgeter counts it as pending, so the
// next call is checked against it already.
func (gw *Gateway) recordUsage(call *apiCall) {
	defer call.settle() // after the hold below: the call counts throughout
	t, model, ok := call.meter.totals()
	folder := call.ep.group.Folder
	if call.messages && call.status/100 == 2 && !call.meter.final {
		// The response ended without its final usage (the upstream cut
		// it, or even the drain could not reach it): the upstream may
		// bill it whole, so charge the most it may cost.
		if !ok {
			t.Input = call.bodyLen / estimateBytesPerToken
		}
		t.Output = max(t.Output, call.maxTokens)
		model = cmp.Or(model, call.model)
		ok = true
		gw.opt.Logger.Warn("gateway: response ended without its usage; charged an estimate", "group", folder,
			"model", sanitize.Clip(model, 100, "…"), "input_tokens", t.Input, "output_tokens", t.Output)
	}
	if !ok {
		return
	}
	gw.count(folder, func(s *Stats) { s.InputTokens += t.Input + t.CacheRead + t.CacheWrite; s.OutputTokens += t.Output })
	if gw.opt.Usage == nil {
		return
	}
	cost := gw.cost(model, t)
	// UTC: budgets' days and months are UTC's, the same on every host.
	day := time.Now().UTC().Format("2006-01-02")
	release := func() {}
	if b := gw.opt.Budget; b != nil {
		release = b.hold(folder, day, Spend{1, t.Input, t.Output, t.CacheRead, t.CacheWrite, cost})
	}
	gw.records.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := gw.opt.Usage.RecordUsage(ctx, folder, day, t.Input, t.Output, t.CacheRead, t.CacheWrite, cost)
		if err != nil {
			// The hold stays: spent is spent, stored or not, and the
			// budget keeps counting it until the month ends (hold).
			gw.opt.Logger.Error("gateway: record usage", "group", folder, "day", day, "input_tokens", t.Input, "output_tokens", t.Output,
				"cache_read_tokens", t.CacheRead, "cache_write_tokens", t.CacheWrite, "cost_micro", cost, "err", err)
			return
		}
		release()
		// The owner and the group hear of a budget this call reached now,
		// not when the next call is refused.
		if b := gw.opt.Budget; b != nil {
			if _, _, err := b.OverBudget(ctx, folder); err != nil {
				gw.opt.Logger.Error("gateway: check budget", "group", folder, "err", err)
			}
		}
	})
}

// cost is what t of model costs in micro-dollars; a model the price table
// does not know costs 0, logged once per model (a call asking for one is
// refused while a dollar budget applies: reserve).
func (gw *Gateway) cost(model string, t Tokens) int64 {
	if p, ok := gw.opt.Prices.Lookup(model); ok {
		return p.CostMicro(t)
	}
	model = sanitize.Clip(model, 100, "…") // the upstream's text
	gw.mu.Lock()
	first := !gw.unpriced[model]
	if first && len(gw.unpriced) < 100 {
		gw.unpriced[model] = true
	}
	gw.mu.Unlock()
	if first {
		gw.opt.Logger.Warn("gateway: model not in the price table (PRICES); its calls cost 0 (refused while a dollar budget applies)", "model", model)
	}
	return 0
}

// withinBudget reports whether the endpoint's group may make a Messages
// call; if not, it has answered the call with the reason.
func (e *Endpoint) withinBudget(ctx context.Context, w http.ResponseWriter) bool {
	b := e.gw.opt.Budget
	if b == nil {
		return true
	}
	folder := e.group.Folder
	hit, over, err := b.OverBudget(ctx, folder)
	switch {
	case err != nil:
		// Fail closed: a budget that cannot be checked is not spent past.
		e.gw.opt.Logger.Error("gateway: check budget", "group", folder, "err", err)
		apiError(w, http.StatusInternalServerError, "api_error", "gateway: the group's budget could not be checked; see the host's log")
		return false
	case over:
		e.gw.count(folder, func(s *Stats) { s.APIRefused++ })
		msg := hit.Message(folder)
		e.warn("api refused", "group", folder, "reason", msg)
		// 402 billing_error, as the API answers an account out of credit:
		// Claude Code 2.1.332 reports it as "API Error: 402 <message>" and
		// ends the run without a retry (TestClaudeCodeOverBudget). It
		// retries 429, 529 and 5xx; a 400 it sends again up to five times
		// with fewer beta flags; a 403 it reports as "Failed to
		// authenticate".
		apiError(w, http.StatusPaymentRequired, "billing_error", msg)
		return false
	}
	return true
}

// reserve checks the call against the budgets with its estimate and
// reserves that estimate until the response ends (Budgeter.Reserve says
// when one is refused); if refused, it has answered the call.
func (e *Endpoint) reserve(ctx context.Context, w http.ResponseWriter, call *apiCall) bool {
	b := e.gw.opt.Budget
	if b == nil {
		return true
	}
	folder := e.group.Folder
	est := Tokens{Input: call.bodyLen / estimateBytesPerToken, Output: call.maxTokens}
	price, priced := e.gw.opt.Prices.Lookup(call.model)
	release, hit, over, err := b.Reserve(ctx, folder, Spend{1, est.Input, est.Output, 0, 0, price.CostMicro(est)}, priced)
	switch {
	case errors.Is(err, errUnpriced):
		e.gw.count(folder, func(s *Stats) { s.APIRefused++ })
		msg := fmt.Sprintf("nanoclaw: model %q has no price in the host's price table (PRICES), and group %s has a dollar budget: "+
			"add the model's price to PRICES, or use a priced model", sanitize.Clip(call.model, 100, "…"), folder)
		e.warn("api refused", "group", folder, "reason", msg)
		apiError(w, http.StatusPaymentRequired, "billing_error", msg)
		return false
	case err != nil:
		e.gw.opt.Logger.Error("gateway: check budget", "group", folder, "err", err)
		apiError(w, http.StatusInternalServerError, "api_error", "gateway: the group's budget could not be checked; see the host's log")
		return false
	case over && hit.Limit > 0:
		e.gw.count(folder, func(s *Stats) { s.APIRefused++ })
		msg := hit.Message(folder)
		e.warn("api refused", "group", folder, "reason", msg)
		apiError(w, http.StatusPaymentRequired, "billing_error", msg)
		return false
	case over:
		// Only the estimates of the calls in flight reach a cap: 429, which
		// Claude Code retries later, when they have ended and their real
		// usage decides.
		e.gw.count(folder, func(s *Stats) { s.APIRefused++ })
		msg := fmt.Sprintf("nanoclaw: group %s's budget would be crossed by the API calls already in flight; try again when they end", folder)
		e.warn("api refused", "group", folder, "reason", msg)
		apiError(w, http.StatusTooManyRequests, "rate_limit_error", msg)
		return false
	}
	call.reserved = release
	return true
}

// apiFailed answers a request the upstream did not.
func (gw *Gateway) apiFailed(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadGateway
	call, _ := r.Context().Value(apiCallKey{}).(*apiCall)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		status = http.StatusRequestEntityTooLarge
		apiError(w, status, "request_too_large", fmt.Sprintf("gateway: request body exceeds %d bytes", tooBig.Limit))
	case call != nil && call.body.timedOut():
		// R3: the container did not finish its body within BodyTimeout.
		status = http.StatusRequestTimeout
		apiError(w, status, "timeout_error", fmt.Sprintf("gateway: request body not complete within %v", gw.opt.BodyTimeout))
	case r.Context().Err() != nil:
		// The container went away or the endpoint closed: nobody to answer.
	default:
		gw.opt.Logger.Warn("gateway: upstream API failed", "path", r.URL.Path, "err", err)
		apiError(w, status, "api_error", "gateway: upstream API unreachable: "+err.Error())
	}
	if call != nil {
		call.status = status
	}
}

// apiError writes an error in the Anthropic API's shape, which Claude Code
// shows to the user.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	ipc.WriteJSON(w, status, map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
}
