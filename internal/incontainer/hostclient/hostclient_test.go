package hostclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// serve serves h on a new unix socket and returns its path. Requests that
// arrive are counted in *n.
func serve(t *testing.T, h http.HandlerFunc) (string, *atomic.Int32) {
	t.Helper()
	dir, err := os.MkdirTemp("", "hc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "gw.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return path, &n
}

func newClient(path string) *Client {
	c := New(path, nil)
	c.retryFor = 2 * time.Second
	return c
}

func TestNext(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		ok      bool
		wantErr string
		invalid bool
	}{
		{"prompt", 200, `{"kind":"prompt","id":"p-1","text":"hi"}`, true, "", false},
		{"close", 200, `{"kind":"close"}`, true, "", false},
		{"nothing yet", 204, ``, false, "", false},
		{"not json", 200, `hello`, false, "not an input", true},
		{"unknown field", 200, `{"kind":"close","group":"main"}`, false, "unknown field", true},
		{"trailing data", 200, `{"kind":"close"}{"kind":"close"}`, false, "trailing", true},
		{"bad id", 200, `{"kind":"prompt","id":"../x","text":"hi"}`, false, "prompt id", true},
		{"empty text", 200, `{"kind":"prompt","id":"p1","text":""}`, false, "non-empty", true},
		{"unknown kind", 200, `{"kind":"exec","id":"p1"}`, false, "unknown input kind", true},
		{"refused", 403, `forbidden`, false, "status 403", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != ipc.PathNext {
					t.Errorf("request %s %s", r.Method, r.URL.Path)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			in, ok, err := newClient(path).Next(context.Background())
			if c.wantErr == "" {
				if err != nil || ok != c.ok {
					t.Fatalf("Next = %+v, %v, %v", in, ok, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Next error %v; want %q", err, c.wantErr)
			}
			if errors.Is(err, ErrInvalidInput) != c.invalid {
				t.Errorf("ErrInvalidInput %v, want %v (%v)", errors.Is(err, ErrInvalidInput), c.invalid, err)
			}
		})
	}
}

// Transient failures are retried with backoff: a 503, any 5xx on a poll,
// and a socket that is not there yet.
func TestRetries(t *testing.T) {
	for _, c := range []struct {
		name     string
		status   int // the answer to the first calls
		failures int32
		then     int    // the answer after them
		body     string // with this body
		ok       bool   // what Next returns
	}{
		{"500 on a poll then ok", http.StatusInternalServerError, 1, http.StatusOK, `{"kind":"close"}`, true},
		{"503 then ok", http.StatusServiceUnavailable, 2, http.StatusNoContent, ``, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			path, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= c.failures {
					w.WriteHeader(c.status)
					return
				}
				w.WriteHeader(c.then)
				io.WriteString(w, c.body)
			})
			in, ok, err := newClient(path).Next(context.Background())
			if err != nil || ok != c.ok || ok && in.Kind != ipc.InputClose {
				t.Fatalf("Next = %+v, %v, %v", in, ok, err)
			}
			if calls.Load() != c.failures+1 {
				t.Errorf("%d calls, want %d", calls.Load(), c.failures+1)
			}
		})
	}
	t.Run("socket appears late", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "gw.sock")
		go func() {
			time.Sleep(300 * time.Millisecond)
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Error(err)
				return
			}
			hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"result":{"delivered":true}}`)
			})}
			t.Cleanup(func() { hs.Close() })
			hs.Serve(ln)
		}()
		resp, err := newClient(path).CallTool(context.Background(), "send_message", json.RawMessage(`{"text":"x"}`))
		if err != nil || string(resp.Result) != `{"delivered":true}` {
			t.Fatalf("CallTool = %+v, %v", resp, err)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		c := newClient(filepath.Join(t.TempDir(), "absent.sock"))
		c.retryFor = 300 * time.Millisecond
		start := time.Now()
		if _, _, err := c.Next(context.Background()); err == nil {
			t.Fatal("Next succeeded without a socket")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("gave up after %v", d)
		}
	})
	t.Run("context ends the retries", func(t *testing.T) {
		c := newClient(filepath.Join(t.TempDir(), "absent.sock"))
		c.retryFor = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, _, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next = %v", err)
		}
	})
}

// A tool call that may have reached the host is not repeated: send_message
// must not send twice.
func TestToolCallNotRepeatedAfterItReachedTheHost(t *testing.T) {
	fail := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, "oops")
		}
	}
	for name, h := range map[string]http.HandlerFunc{
		"status 500": fail(http.StatusInternalServerError),
		"status 502": fail(http.StatusBadGateway),
		"cut connection": func(w http.ResponseWriter, r *http.Request) {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		},
	} {
		path, n := serve(t, h)
		_, err := newClient(path).CallTool(context.Background(), "send_message", json.RawMessage(`{"text":"x"}`))
		if err == nil || n.Load() != 1 {
			t.Errorf("%s: err %v after %d calls; want an error after 1", name, err, n.Load())
		}
	}
}

func TestCallTool(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		answer string
		want   string // the response as JSON; "" for an error
	}{
		{"result", http.StatusOK, `{"result":{"delivered":true}}`, `{"result":{"delivered":true}}`},
		// The host's refusal is an answer for the model, not a failure.
		{"refusal", http.StatusForbidden, `{"error":"not permitted"}`, `{"error":"not permitted"}`},
		{"neither result nor error", http.StatusOK, `{}`, ""},
		{"not a tool response", http.StatusOK, `<html>`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var gotPath, gotBody, gotType string
			path, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				gotPath, gotBody, gotType = r.URL.Path, string(b), r.Header.Get("Content-Type")
				w.WriteHeader(c.status)
				io.WriteString(w, c.answer)
			})
			resp, err := newClient(path).CallTool(context.Background(), "send_message", json.RawMessage(`{"text":"hi"}`))
			got, _ := json.Marshal(resp)
			if c.want == "" {
				if err == nil {
					t.Errorf("answer %s accepted", got)
				}
			} else if err != nil || string(got) != c.want {
				t.Errorf("CallTool = %s, %v; want %s", got, err, c.want)
			}
			if gotPath != ipc.PathToolPrefix+"send_message" || gotBody != `{"text":"hi"}` || gotType != "application/json" {
				t.Errorf("host saw %s %q %q", gotPath, gotBody, gotType)
			}
		})
	}
}

// Calls the host would refuse never leave the container.
func TestCallToolRefusesBadCalls(t *testing.T) {
	path, n := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"result":{}}`) })
	c := newClient(path)
	big := `{"text":"` + strings.Repeat("x", ipc.MaxToolBodyBytes) + `"}`
	for _, bad := range []struct{ tool, args, want string }{
		{"", `{}`, "tool name"},
		{"../output", `{}`, "tool name"},
		{"Send", `{}`, "tool name"},
		{"a/b", `{}`, "tool name"},
		{"x?y", `{}`, "tool name"},
		{"x", `[1]`, "must be a JSON object"},
		{"send_message", big, fmt.Sprintf("over the host's limit of %d bytes", ipc.MaxToolBodyBytes)},
	} {
		if _, err := c.CallTool(context.Background(), bad.tool, json.RawMessage(bad.args)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("CallTool(%q, %.20s…) = %v; want an error with %q", bad.tool, bad.args, err, bad.want)
		}
	}
	if n.Load() != 0 {
		t.Errorf("the host was asked %d times", n.Load())
	}
}

func TestPostOutput(t *testing.T) {
	var got ipc.Output
	path, n := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != ipc.PathOutput {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusNoContent)
	})
	c := newClient(path)
	out := ipc.Output{InputID: "p1", Result: "done", SessionID: "s-1", Usage: ipc.Usage{InputTokens: 5, OutputTokens: 1}}
	if err := c.PostOutput(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if got != out {
		t.Errorf("host got %+v, want %+v", got, out)
	}
	// A refusal is told apart from a failure to deliver.
	path2, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"output p1: no such turn"}`)
	})
	if err := newClient(path2).PostOutput(context.Background(), out); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no such turn") {
		t.Errorf("refused output: %v", err)
	}
	// An invalid output never leaves the container.
	if err := c.PostOutput(context.Background(), ipc.Output{InputID: "p1", SessionID: "--x"}); err == nil || n.Load() != 1 {
		t.Errorf("invalid output: %v, %d calls", err, n.Load())
	}
}

func TestResponseSizeIsCapped(t *testing.T) {
	path, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"result":"`+strings.Repeat("a", MaxToolResponseBytes)+`"}`)
	})
	if _, err := newClient(path).CallTool(context.Background(), "list_tasks", json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("oversized answer: %v", err)
	}
}
