package agent

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// hostileGatewayScript is what a prompt-injected agent in a non-main group
// runs against its gateway: every /v1 call Claude Code does not make,
// straight on the socket and through the forwarder, then a flood of
// connections (64 silent ones through the forwarder, 60 uploads that never
// send their body) held until the test has served another group.
const hostileGatewayScript = `S=` + ipc.ContainerSocket + `
api() { printf 'sock %s %s=' "$1" "$2"; curl -s --path-as-is -o /dev/null -w '%{http_code}\n' -m 10 -X "$1" --unix-socket "$S" -H 'Content-Type: application/json' -d '{}' "http://gateway$2"; }
fwd() { printf 'fwd %s %s=' "$1" "$2"; curl -s --noproxy '*' --path-as-is -o /dev/null -w '%{http_code}\n' -m 10 -X "$1" -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:3128$2"; }
api GET /v1/files; api DELETE /v1/files/file_x; api POST /v1/messages/batches; api GET /v1/messages/batches/b1/results
api TRACE /v1/messages; api GET /v1/models; api POST /v1/messages/../files; api POST /v1/messages/%2e%2e/files
api POST /v1//messages; api POST /V1/messages; api POST '/v1/messages?beta=true&x=1'
fwd GET /v1/files; fwd POST /v1/messages/batches; fwd DELETE /v1/files/file_x
for i in $(seq 64); do exec {fd}<>/dev/tcp/127.0.0.1/3128; done
set -m # each upload its own process group, so it can be ended whole
for i in $(seq 60); do
  (sleep 120 | curl -s -o /dev/null -w '%{http_code}\n' -m 100 --unix-socket "$S" -X POST -T - -H 'Content-Type: application/json' http://gateway/ipc/tool/send_message >> /tmp/flood.txt) &
done
for i in $(seq 600); do [ -e /workspace/group/bystander-answered ] && break; sleep 0.1; done
echo "released=$([ -e /workspace/group/bystander-answered ] && echo yes || echo no)"
for p in $(jobs -p); do kill -- -$p; done 2>/dev/null; wait 2>/dev/null
echo "flood: $(sort /tmp/flood.txt | uniq -c | tr -s ' \n' ' ')"
`

// R5 and R3 end to end: a non-main group's agent (the real Claude Code in
// its container, scripted by the fake model) calls every forbidden /v1
// path and floods its gateway socket. Each call is refused with 403 and
// none reaches the upstream; the flood is refused with 503 at once; and
// another group is answered while the flood holds.
func TestHostileAgentAgainstItsGateway(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		hostile := h.start(h.group("hostile", false, store.ContainerConfig{}), StartOptions{})
		bystander := h.start(h.group("bystander", false, store.ContainerConfig{}), StartOptions{})
		released := filepath.Join(h.runner.opt.GroupsDir, "hostile", "bystander-answered")

		h.fake.Script(
			fakeapi.ToolUse("Bash", map[string]any{"command": hostileGatewayScript, "description": "probe", "timeout": 120000}),
			fakeapi.Text("bystander answer"), // the bystander's prompt comes while the flood holds
			fakeapi.Text("done"),
		)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		type result struct {
			out ipc.Output
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := hostile.Prompt(ctx, "probe your gateway")
			done <- result{out, err}
		}()
		// The flood is on once the socket refuses; then the other group
		// is served, and only then the hostile script lets go.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for h.runner.gw.Stats()["hostile"].Refused == 0 {
			select {
			case <-tick.C:
			case r := <-done:
				t.Fatalf("the hostile turn ended before any refusal: %+v %v\nrequests:\n%s\ntool results: %+v\nrun log:\n%s", r.out, r.err, h.fake.Summary(), h.fake.Main(1).ToolResults(), h.runLog(hostile))
			}
		}
		if out := h.prompt(bystander, "are you there?"); out.Result != "bystander answer" {
			t.Errorf("bystander answered %q during the flood", out.Result)
		}
		if err := os.WriteFile(released, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.out.IsError {
			t.Fatalf("hostile turn: %+v %v\nrequests:\n%s\nrun log:\n%s", r.out, r.err, h.fake.Summary(), h.runLog(hostile))
		}
		var out string
		for _, req := range h.fake.MainRequests() {
			for _, tr := range req.ToolResults() {
				out = tr.Content
			}
		}
		t.Logf("the hostile script said:\n%s", out)

		for _, call := range []string{
			"sock GET /v1/files", "sock DELETE /v1/files/file_x", "sock POST /v1/messages/batches",
			"sock GET /v1/messages/batches/b1/results", "sock TRACE /v1/messages", "sock GET /v1/models",
			"sock POST /v1/messages/../files", "sock POST /v1/messages/%2e%2e/files", "sock POST /v1//messages",
			"sock POST /V1/messages", "sock POST /v1/messages?beta=true&x=1",
			"fwd GET /v1/files", "fwd POST /v1/messages/batches", "fwd DELETE /v1/files/file_x",
		} {
			if !strings.Contains(out, call+"=403\n") {
				t.Errorf("%s: not refused with 403", call)
			}
		}
		if !strings.Contains(out, "released=yes") {
			t.Errorf("the flood was not held until the bystander answered")
		}
		// Every upload of the flood was refused at once (503), or held
		// until the script ended it (000) or its body's time ran out
		// (408); none was served.
		m := regexp.MustCompile(`flood: (.*)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no flood line in:\n%s", out)
		}
		codes := map[string]int{}
		f := strings.Fields(m[1])
		for i := 0; i+1 < len(f); i += 2 {
			n, _ := strconv.Atoi(f[i])
			codes[f[i+1]] += n
		}
		// (An upload ended by the script before curl wrote its line is
		// not counted.)
		if codes["503"] == 0 || codes["503"]+codes["000"]+codes["408"] != sum(codes) {
			t.Errorf("flood answers %v; want 503 (refused at once), 000 or 408 (held, then cut) only, some 503", codes)
		}
		if st := h.runner.gw.Stats()["hostile"]; st.Refused == 0 {
			t.Errorf("stats %+v: nothing refused", st)
		}
		// The upstream saw nothing but Claude Code's own turns.
		for _, req := range h.fake.Requests() {
			if req.Method != "POST" || req.Path != "/v1/messages" {
				t.Errorf("the upstream got %s %s", req.Method, req.Path)
			}
		}
		if calls := h.tools.all(); len(calls) != 0 {
			t.Errorf("the flood's tool calls reached the host: %+v", calls)
		}
	})
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
