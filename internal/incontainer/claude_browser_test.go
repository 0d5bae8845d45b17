package incontainer

import (
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// envMap is an environment as a map; a name set twice is an error.
func envMap(t *testing.T, env []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			t.Errorf("%s set twice", k)
		}
		m[k] = v
	}
	return m
}

// A group on the browser image gets agent-browser's environment: the
// image's Chromium, the browser's own forwarder as its proxy for every
// destination, loopback included, no version check, and Chromium's flags
// one a line.
// Other groups get none of it.
func TestClaudeEnvBrowser(t *testing.T) {
	cfg := DefaultConfig()
	plain := envMap(t, ClaudeEnv(cfg, "127.0.0.1:3128", ""))
	for k := range plain {
		if strings.HasPrefix(k, "AGENT_BROWSER_") {
			t.Errorf("not a browser group, yet %s=%q", k, plain[k])
		}
	}
	cfg.Browser = true
	env := envMap(t, ClaudeEnv(cfg, "127.0.0.1:3128", "127.0.0.1:3129"))
	want := map[string]string{
		"AGENT_BROWSER_EXECUTABLE_PATH":  "/usr/bin/chromium",
		"AGENT_BROWSER_PROXY":            "http://127.0.0.1:3129",
		"AGENT_BROWSER_PROXY_BYPASS":     "<-loopback>",
		"AGENT_BROWSER_NO_VERSION_CHECK": "1",
		"AGENT_BROWSER_ARGS": "--no-sandbox\n--disable-background-networking\n--disable-component-update\n" +
			"--disable-sync\n--no-first-run\n--disable-breakpad\n--disable-quic",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("browser env %s=%q, want %q", k, env[k], v)
		}
	}
	// Everything else is as for any group.
	maps.DeleteFunc(env, func(k, _ string) bool { _, ok := want[k]; return ok })
	if !maps.Equal(env, plain) {
		t.Errorf("browser env otherwise %v\nwant %v", env, plain)
	}
	for _, a := range ChromiumArgs {
		if !strings.HasPrefix(a, "--") || strings.ContainsAny(a, "\n ,") {
			t.Errorf("Chromium flag %q: one flag a line, no comma (agent-browser splits on those)", a)
		}
	}
	if !slices.Contains(ChromiumArgs, "--no-sandbox") {
		t.Error("--no-sandbox missing: Chromium cannot start in the container without it")
	}
}

// Run hands the browser its own forwarder, to the browser's socket, and
// that forwarder's address to Claude Code (and so to the agent-browser its
// Bash calls start); the agent's proxy stays the agent's.
func TestRunBrowserEnvironment(t *testing.T) {
	var browserReqs []string
	var mu sync.Mutex
	h := newHarness(t, func(c *Config) {
		c.Browser = true
		c.BrowserListen = "127.0.0.1:0"
		c.BrowserSocket = filepath.Join(filepath.Dir(c.Socket), "br.sock")
		ln, err := net.Listen("unix", c.BrowserSocket)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			browserReqs = append(browserReqs, r.Method+" "+r.RequestURI)
			mu.Unlock()
			io.WriteString(w, "browser socket")
		})}
		go srv.Serve(ln) //nolint:errcheck // ends with Close
		t.Cleanup(func() { srv.Close() })
	})
	h.start(t)
	h.gw.Prompt("p1", "hello")
	if o := h.output(t); o.Result != "echo hello #1" {
		t.Fatalf("output %+v", o)
	}
	recs := h.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d Claude Code processes", len(recs))
	}
	env := envMap(t, recs[0].Env)
	p := env["AGENT_BROWSER_PROXY"]
	if !strings.HasPrefix(p, "http://127.0.0.1:") || p == env["HTTPS_PROXY"] {
		t.Fatalf("AGENT_BROWSER_PROXY=%q, want the browser's own forwarder (the agent's: HTTPS_PROXY=%q)", p, env["HTTPS_PROXY"])
	}
	if env["AGENT_BROWSER_PROXY_BYPASS"] != "<-loopback>" {
		t.Errorf("AGENT_BROWSER_PROXY_BYPASS=%q", env["AGENT_BROWSER_PROXY_BYPASS"])
	}
	// What the browser sends its proxy reaches the browser's socket, and
	// nothing of it the agent's.
	proxy, _ := url.Parse(p)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	resp, err := c.Get("http://site.example/page")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mu.Lock()
	got := slices.Clone(browserReqs)
	mu.Unlock()
	if string(b) != "browser socket" || !slices.Equal(got, []string{"GET http://site.example/page"}) {
		t.Errorf("through the browser's forwarder: %q; the browser's socket saw %v", b, got)
	}
	if eg := h.gw.Egress(); len(eg) != 0 {
		t.Errorf("the agent's socket saw the browser's request: %v", eg)
	}
	if err := h.resultAfterClose(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
