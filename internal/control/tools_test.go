package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI's group commands, reset_session included (R17), reach the
// owner's Tools through the socket; a refusal is a 422 with its message;
// a name that is no owner command never reaches Tools.
func TestOwnerToolsThroughTheSocket(t *testing.T) {
	var called []string
	srv := NewServer(Options{Logger: quiet, Tools: func(ctx context.Context, tool string, args json.RawMessage) (any, error) {
		called = append(called, tool)
		if tool == "configure_group" {
			return nil, errors.New("group \"x\" not changed: mount 1 refused")
		}
		return map[string]string{"note": "session cleared"}, nil
	}})
	path := filepath.Join(shortDir(t), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, ln) }()
	defer func() { cancel(); <-done }()

	c := Dial(path)
	var out map[string]string
	if err := c.Tool(ctx, "reset_session", map[string]string{"folder": "family"}, &out); err != nil || out["note"] != "session cleared" {
		t.Fatalf("reset_session: %v, %v", out, err)
	}
	var apiErr *APIError
	if err := c.Tool(ctx, "configure_group", map[string]string{"folder": "x"}, &out); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || apiErr.Message != "group \"x\" not changed: mount 1 refused" {
		t.Errorf("a refused configure_group: %v", err)
	}
	if err := c.Tool(ctx, "send_message", map[string]string{"text": "hi"}, &out); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("a tool that is no owner command: %v", err)
	}
	// A body that is not one JSON object is refused with what is wrong.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	for _, body := range []string{"", "[1]", `{"folder":"x"} junk`} {
		resp, err := hc.Post("http://control/v1/tools/reset_session", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "request body") && !strings.Contains(string(b), "empty request body") {
			t.Errorf("body %q: %d %s; want 400 saying what is wrong", body, resp.StatusCode, b)
		}
	}
	if len(called) != 2 || called[0] != "reset_session" || called[1] != "configure_group" {
		t.Errorf("Tools saw %v", called)
	}
}
