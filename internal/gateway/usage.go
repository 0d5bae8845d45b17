package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"sync"
)

// How token usage is read from API responses, as they pass:
//
//   - a stream (text/event-stream) is split into lines; only "data:" lines
//     mentioning message_start or message_delta are decoded.
//     message_start.message.usage gives the input tokens (and an initial
//     output count), each message_delta.usage the cumulative counts so far;
//     a field present in a later event replaces the earlier value.
//   - a JSON body (application/json) is kept up to maxMeteredJSON and its
//     top-level "usage" object decoded at the end.
//
// The four counts are kept apart, as the API reports and bills them:
// input_tokens, output_tokens, cache_read_input_tokens and
// cache_creation_input_tokens. The model is the response's own
// (message_start.message.model, or the body's "model"). A response without
// a usage object (errors, model lists, token counts) records nothing.
const (
	maxMeteredLine = 1 << 20  // longer SSE lines are skipped, not buffered
	maxMeteredJSON = 16 << 20 // larger JSON bodies are not metered
)

// usageJSON is the usage object of the Messages API.
type usageJSON struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
}

// Tokens are one response's usage as the API reports it.
type Tokens struct {
	Input      int64 // input_tokens: neither read from nor written to the cache
	Output     int64
	CacheRead  int64 // cache_read_input_tokens
	CacheWrite int64 // cache_creation_input_tokens
}

// Total is every token of the response, as budgets count them.
func (t Tokens) Total() int64 { return t.Input + t.Output + t.CacheRead + t.CacheWrite }

// usageMeter reads the usage of one response from a copy of its bytes.
type usageMeter struct {
	sse      bool
	buf      []byte // SSE: the line so far; JSON: the body so far
	skipping bool   // SSE: the current line is too long; JSON: the body is
	seen     bool   // a usage object was found
	final    bool   // the response's final usage was (message_delta's, or the JSON body's)

	tokens Tokens
	model  string
}

// newUsageMeter returns a meter for a response of contentType, or nil if
// such responses carry no usage.
func newUsageMeter(contentType string) *usageMeter {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "text/event-stream":
		return &usageMeter{sse: true}
	case "application/json":
		return &usageMeter{}
	}
	return nil
}

// Write takes the next bytes of the body.
func (m *usageMeter) Write(p []byte) {
	if !m.sse {
		m.keep(p, maxMeteredJSON)
		return
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			m.keep(p, maxMeteredLine)
			return
		}
		m.keep(p[:i], maxMeteredLine)
		if !m.skipping {
			m.line(bytes.TrimSuffix(m.buf, []byte("\r")))
		}
		m.buf, m.skipping = m.buf[:0], false
		p = p[i+1:]
	}
}

// keep appends b to buf, unless buf would grow beyond limit: then what it
// holds is dropped, and so is the rest until the line (or body) ends.
func (m *usageMeter) keep(b []byte, limit int) {
	if m.skipping {
		return
	}
	if len(m.buf)+len(b) > limit {
		m.skipping, m.buf = true, nil
		return
	}
	m.buf = append(m.buf, b...)
}

// line handles one complete SSE line.
func (m *usageMeter) line(l []byte) {
	data, ok := bytes.CutPrefix(l, []byte("data:"))
	if !ok || !(bytes.Contains(data, []byte("message_start")) || bytes.Contains(data, []byte("message_delta"))) {
		return
	}
	var ev struct {
		Type    string `json:"type"`
		Message struct {
			Model string     `json:"model"`
			Usage *usageJSON `json:"usage"`
		} `json:"message"`
		Usage *usageJSON `json:"usage"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return
	}
	switch ev.Type {
	case "message_start":
		m.model = ev.Message.Model
		m.merge(ev.Message.Usage)
	case "message_delta":
		m.merge(ev.Usage)
		m.final = m.final || ev.Usage != nil
	}
}

// finish ends the body: a JSON body is decoded now.
func (m *usageMeter) finish() {
	if m.sse || m.skipping || len(m.buf) == 0 {
		return
	}
	var body struct {
		Model string     `json:"model"`
		Usage *usageJSON `json:"usage"`
	}
	if json.Unmarshal(m.buf, &body) == nil {
		m.model = body.Model
		m.merge(body.Usage)
		m.final = body.Usage != nil
	}
	m.buf = nil
}

func (m *usageMeter) merge(u *usageJSON) {
	if u == nil {
		return
	}
	m.seen = true
	set := func(dst *int64, v *int64) {
		if v != nil && *v >= 0 {
			*dst = *v
		}
	}
	set(&m.tokens.Input, u.InputTokens)
	set(&m.tokens.CacheWrite, u.CacheCreationInputTokens)
	set(&m.tokens.CacheRead, u.CacheReadInputTokens)
	set(&m.tokens.Output, u.OutputTokens)
}

// totals returns the tokens and the model the response reported, and
// whether a usage object was seen at all.
func (m *usageMeter) totals() (t Tokens, model string, ok bool) {
	return m.tokens, m.model, m.seen
}

// maxDrain bounds what is read of a response after its client left:
// far more than a response's final usage ever trails its content by.
const maxDrain = 32 << 20

// meteredBody feeds what the client reads of a response to a meter, and
// calls done once when the body ends or is closed. Closed before its end
// (the client left, or the proxy gave up writing to it), it reads the
// rest into the meter first, up to maxDrain: the upstream bills the whole
// response whether or not anyone reads it, and its usage comes last. The
// request's context must outlive the client for that (apiRequest detaches
// it, under a deadline). The reverse proxy reads and closes a response
// body in one goroutine: Read and Close never run at once.
type meteredBody struct {
	io.ReadCloser
	meter *usageMeter
	ended sync.Once
	done  func()
}

func (b *meteredBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.meter.Write(p[:n])
	if err == io.EOF {
		b.end()
	}
	return n, err
}

func (b *meteredBody) Close() error {
	if !b.meter.final {
		io.Copy(meterWriter{b.meter}, io.LimitReader(b.ReadCloser, maxDrain)) //nolint:errcheck // a cut drain is charged an estimate (recordUsage)
	}
	err := b.ReadCloser.Close()
	b.end()
	return err
}

// meterWriter is the meter as an io.Writer, for draining.
type meterWriter struct{ m *usageMeter }

func (w meterWriter) Write(p []byte) (int, error) { w.m.Write(p); return len(p), nil }

func (b *meteredBody) end() {
	b.ended.Do(func() {
		b.meter.finish()
		b.done()
	})
}
