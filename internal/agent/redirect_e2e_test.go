package agent

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// A site the group may reach redirects the agent's tools to the gateway
// itself: curl -L follows http://127.0.0.1:3128/ipc/... straight to the
// in-container forwarder (NO_PROXY covers loopback), a POST kept as a POST
// by 307. Without a page's marks the gateway still knows these are not
// nanoclaw-agent's calls (ipc.GatewayHost): none takes the agent's next
// prompt, posts as the agent, or reaches the host's tools; the agent's own
// next prompt is answered.
func TestRedirectToTheGatewayRefused(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/next":
			http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d%s", ipc.ProxyPort, ipc.PathNext), http.StatusFound)
		case "/send":
			http.Redirect(w, r, fmt.Sprintf("http://localhost:%d%ssend_message", ipc.ProxyPort, ipc.PathToolPrefix), http.StatusTemporaryRedirect)
		case "/output":
			http.Redirect(w, r, fmt.Sprintf("http://127.0.0.1:%d%s", ipc.ProxyPort, ipc.PathOutput), http.StatusPermanentRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()

	runtimes(t, func(t *testing.T, rtName string) {
		logs := &testenv.Buffer{}
		edge := &fakeEdge{route: map[string]string{"93.184.215.14:80": strings.TrimPrefix(site.URL, "http://")},
			table: map[string][]netip.Addr{"redirect.example": {netip.MustParseAddr("93.184.215.14")}}}
		h := newHarness(t, rtName, func(o *Options) {
			o.Logger = slog.New(slog.NewJSONHandler(io.MultiWriter(logs, t.Output()), nil))
			o.Gateway.Resolver, o.Gateway.Dial = edge, edge.dial
		})
		g := h.group("redirected", false, store.ContainerConfig{
			Egress: store.Egress{Mode: store.EgressAllowlist, Allow: []string{"redirect.example"}}})
		s := h.start(g, StartOptions{})
		defer s.Close(t.Context())

		curl := `curl -sS -L --max-time 20 -H 'Content-Type: application/json' `
		out := h.bash(s, curl+`http://redirect.example/next; echo; `+
			curl+`-X POST http://redirect.example/next; echo; `+
			curl+`-d '{"text":"REDIRECTED-9Q"}' http://redirect.example/send; echo; `+
			curl+`-d '{"input_id":"x","result":"REDIRECTED-9Q"}' http://redirect.example/output`)
		if n := strings.Count(out, "a request that came by a URL (a followed redirect) is refused"); n != 4 {
			t.Errorf("%d of 4 redirected requests got the gateway's refusal:\n%s", n, out)
		}
		for _, c := range h.tools.all() {
			if strings.Contains(c.Args, "REDIRECTED-9Q") {
				t.Errorf("a redirected request called the tool %s: %s", c.Name, c.Args)
			}
		}
		if n := strings.Count(logs.String(), "gateway: an IPC request that came by a URL refused"); n != 4 {
			t.Errorf("%d refusals logged, want 4:\n%s", n, logs.String())
		}
		h.fake.Script(fakeapi.Text("still here"))
		if o := h.prompt(s, "are you there?"); o.Result != "still here" {
			t.Errorf("the next prompt got %q", o.Result)
		}
	})
}
