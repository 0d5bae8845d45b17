package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/status"
)

// askModel fetches what it is asked to with curl through the gateway's
// proxy (Bash, in the real container) and answers with curl's output.
func askModel() fakeapi.Turn {
	return fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
		if res := r.ToolResults(); len(res) > 0 {
			return fakeapi.Text("done: " + res[0].Content)
		}
		text := r.LastUserText()
		if i := strings.Index(text, "fetch "); i >= 0 {
			host := strings.FieldsFunc(text[i+len("fetch "):], func(r rune) bool { return r == ' ' || r == '<' })[0]
			proxy := fmt.Sprintf("--noproxy '' -x http://127.0.0.1:%d", ipc.ProxyPort)
			// Twice when asked "twice": the second shows whether the
			// first answer was kept.
			cmd := fmt.Sprintf("curl -s -m 100 %s http://%s/; echo", proxy, host)
			if strings.Contains(text, "twice") {
				cmd += "; " + cmd
			}
			return fakeapi.ToolUse("Bash", map[string]any{"command": cmd, "timeout": 200000})
		}
		return fakeapi.Text("hi from the agent")
	})
}

// Egress mode ask through the real daemon, the real Claude Code in a real
// container and the owner's `nanoclaw send` in main: the agent's request
// waits while the owner is asked; allow lets it on (to the host's own
// lookup of the name, which for .invalid fails: the request got past the
// owner), deny and no answer refuse it, always is kept so the next request
// is not asked about, and "allow CODE" typed in the group's own chat
// changes nothing. status lists every question and answer.
func TestEgressAskThroughTheDaemon(t *testing.T) {
	w := newWorld(t, "podman", "IDLE_TIMEOUT=2s", "EGRESS_ASK_TIMEOUT=20s")
	turns := make([]fakeapi.Turn, 100)
	for i := range turns {
		turns[i] = askModel()
	}
	w.fake.Script(turns...)
	w.register("family", true)
	w.start()
	defer w.stop()
	if out, errOut, code := w.nanoclaw("groups", "set", "family", "egress=ask"); code != 0 || !strings.Contains(out, "egress:    ask") {
		t.Fatalf("groups set egress=ask: exit %d\n%s%s", code, out, errOut)
	}

	// fetch sends the request to family and returns its answer when it
	// comes.
	fetch := func(text string) <-chan string {
		out := make(chan string, 1)
		go func() {
			o, errOut, code := w.nanoclaw("send", "--group", "family", "--wait=3m", "@Andy "+text)
			if code != 0 {
				o += fmt.Sprintf("[exit %d: %s]", code, errOut)
			}
			out <- o
		}()
		return out
	}
	// question waits for status to show the open question about target.
	question := func(target string) string {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			out, _, code := w.nanoclaw("status", "--json")
			var rep status.Report
			if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
				continue
			}
			for _, a := range rep.Approvals {
				if a.Target == target && a.Decision == "" {
					return a.Code
				}
			}
		}
		w.d.mu.Lock()
		log := w.d.raw.String()
		w.d.mu.Unlock()
		t.Fatalf("the owner was not asked about %s; the daemon's log:\n%s", target, log)
		return ""
	}
	owner := func(chat, text string) string {
		t.Helper()
		_, errOut, code := w.nanoclaw("send", "--group", chat, text)
		if code != 0 {
			t.Fatalf("send %q to %s: exit %d: %s", text, chat, code, errOut)
		}
		return errOut
	}
	answer := func(ch <-chan string) string {
		t.Helper()
		select {
		case s := <-ch:
			return s
		case <-time.After(4 * time.Minute):
			t.Fatal("no answer from family")
			return ""
		}
	}

	// allow: past the owner, to the host's lookup.
	res := fetch("fetch allowed.invalid")
	code := question("allowed.invalid:80")
	if said := owner("family", "allow "+code); strings.Contains(said, "taken by nanoclaw") { // the group's own chat: no answer
		t.Errorf("allow in the group's chat was taken: %q", said)
	}
	time.Sleep(time.Second)
	select {
	case s := <-res:
		t.Fatalf("answered before the owner: %q", s)
	default:
	}
	if said, want := owner("main", "allow "+code), "taken by nanoclaw, not the assistant: Allowed once: family → allowed.invalid:80."; !strings.Contains(said, want) {
		t.Errorf("send said %q; want %q", said, want)
	}
	if out := answer(res); !strings.Contains(out, "cannot resolve allowed.invalid") || strings.Contains(out, "owner") {
		t.Errorf("after allow: %q", out)
	}

	// deny
	res = fetch("fetch denied.invalid")
	denied := question("denied.invalid:80")
	if said := owner("main", "deny "+denied); !strings.Contains(said, "taken by nanoclaw, not the assistant: Denied: family → denied.invalid:80.") {
		t.Errorf("send said %q", said)
	}
	if out := answer(res); !strings.Contains(out, "denied.invalid:80: the owner denied it") {
		t.Errorf("after deny: %q", out)
	}

	// no answer
	res = fetch("fetch unanswered.invalid")
	question("unanswered.invalid:80")
	if out := answer(res); !strings.Contains(out, "no answer from the owner within 20s") {
		t.Errorf("unanswered: %q", out)
	}

	// always, then the same again without a question.
	res = fetch("fetch kept.invalid twice")
	kept := question("kept.invalid:80")
	owner("main", "always "+kept)
	if out := answer(res); strings.Count(out, "cannot resolve kept.invalid") != 2 {
		t.Errorf("after always: %q", out)
	}
	if out, _, _ := w.nanoclaw("groups", "show", "family"); !strings.Contains(out, "approved:  kept.invalid:80") {
		t.Errorf("groups show after always:\n%s", out)
	}
	out, _, _ := w.nanoclaw("status")
	for _, want := range []string{"EGRESS QUESTIONS TO THE OWNER", "kept.invalid:80", "always at", "deny at", "timeout at", "allow at"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	_, asked, _ := strings.Cut(out, "EGRESS QUESTIONS")
	if strings.Count(asked, "kept.invalid:80") != 1 || strings.Count(asked, kept) != 1 || strings.Count(asked, "\n") != 5 {
		t.Errorf("not asked exactly once about kept.invalid:80:\n%s", out)
	}
	if out, errOut, code := w.nanoclaw("groups", "set", "family", "approved="); code != 0 || strings.Contains(out, "approved:") {
		t.Errorf("removing the approval: exit %d\n%s%s", code, out, errOut)
	}
	// The owner's answers in main reached no model.
	for _, r := range w.fake.MainRequests() {
		if strings.Contains(r.AllText(), "deny "+denied) || strings.Contains(r.AllText(), "always "+kept) {
			t.Errorf("an answer reached a model: %q", r.LastUserText())
		}
	}
}
