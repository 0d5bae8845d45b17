package incontainer

import (
	"maps"
	"slices"
	"strings"
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
// image's Chromium, the forwarder as its proxy for every destination,
// loopback included, no version check, and Chromium's flags one a line.
// Other groups get none of it.
func TestClaudeEnvBrowser(t *testing.T) {
	cfg := DefaultConfig()
	plain := envMap(t, ClaudeEnv(cfg, "127.0.0.1:3128"))
	for k := range plain {
		if strings.HasPrefix(k, "AGENT_BROWSER_") {
			t.Errorf("not a browser group, yet %s=%q", k, plain[k])
		}
	}
	cfg.Browser = true
	env := envMap(t, ClaudeEnv(cfg, "127.0.0.1:3128"))
	want := map[string]string{
		"AGENT_BROWSER_EXECUTABLE_PATH":  "/usr/bin/chromium",
		"AGENT_BROWSER_PROXY":            "http://127.0.0.1:3128",
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

// Run hands the browser's environment, with the forwarder it listens on,
// to Claude Code (and so to the agent-browser its Bash calls start).
func TestRunBrowserEnvironment(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Browser = true })
	h.start(t)
	h.gw.Prompt("p1", "hello")
	if o := h.output(t); o.Result != "echo hello #1" {
		t.Fatalf("output %+v", o)
	}
	if err := h.resultAfterClose(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	recs := h.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d Claude Code processes", len(recs))
	}
	env := envMap(t, recs[0].Env)
	if p := env["AGENT_BROWSER_PROXY"]; p == "" || p != env["HTTPS_PROXY"] || !strings.HasPrefix(p, "http://127.0.0.1:") {
		t.Errorf("AGENT_BROWSER_PROXY=%q, want the forwarder (HTTPS_PROXY=%q)", p, env["HTTPS_PROXY"])
	}
	if env["AGENT_BROWSER_PROXY_BYPASS"] != "<-loopback>" {
		t.Errorf("AGENT_BROWSER_PROXY_BYPASS=%q", env["AGENT_BROWSER_PROXY_BYPASS"])
	}
}
