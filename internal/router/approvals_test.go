package router

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

const (
	mainChat   = "15550001111@s.whatsapp.net"
	familyChat = "120363025246125486@g.us"
	ownerID    = "15550001111@s.whatsapp.net"
	strangerID = "4915112345678@s.whatsapp.net"
)

// approvalsEnv is a router with a main group and a group "family" in egress
// mode ask, its Approvals, and the channel both chats are on.
type approvalsEnv struct {
	st *store.Store
	r  *Router
	a  *Approvals
	ch *fakeChannel
	n  int
}

func newApprovalsEnv(t *testing.T) *approvalsEnv {
	ctx := t.Context()
	st := openStore(t)
	for _, g := range []store.Group{
		{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()},
		{Folder: "family", Name: "Family", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now(),
			Config: store.ContainerConfig{Egress: store.Egress{Mode: store.EgressAsk}}},
	} {
		if err := st.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.BindChat(ctx, mainChat, "main"); err != nil {
		t.Fatal(err)
	}
	if err := st.BindChat(ctx, familyChat, "family"); err != nil {
		t.Fatal(err)
	}
	ch := &fakeChannel{}
	chats := NewChannels(st, "Andy", nil)
	chats.Add(ch)
	a := NewApprovals(st, chats, "Andy", slog.New(slog.DiscardHandler))
	r := New(Options{Store: st, Agents: newFakeAgents(), AssistantName: "Andy", Channels: chats, Approvals: a,
		Caps: Caps{MaxMessages: 50, MaxBytes: 1 << 20, MaxMessageBytes: 4096}, MaxConcurrent: 1})
	return &approvalsEnv{st: st, r: r, a: a, ch: ch}
}

// say hands the router a message and reports whether it was stored for
// the agents (stored, and not as one only the host handles).
func (e *approvalsEnv) say(t *testing.T, chat, sender string, fromMe bool, text string) bool {
	t.Helper()
	e.n++
	id := "m" + strings.Repeat("x", e.n)
	got, err := e.r.OnMessage(t.Context(), e.ch, channel.Message{ChatJID: chat, ID: id, Sender: sender, Text: text,
		FromMe: fromMe, Timestamp: time.Now(), IsGroup: chat == familyChat})
	if err != nil {
		t.Fatal(err)
	}
	m, stored, err := e.st.MessageByID(t.Context(), chat, id)
	if err != nil || !stored {
		t.Fatalf("message %q not stored: %v", text, err)
	}
	// The channel learns that the host took an answer, and what it said.
	if hosts := m.IsBot && !strings.HasPrefix(text, "Andy: "); hosts != (got.Taken != "") || hosts && got.WillAnswer {
		t.Errorf("%q: stored %+v, the host's: %v", text, got, hosts)
	} else if hosts {
		if texts := e.ch.Texts(); len(texts) == 0 || !strings.Contains(texts[len(texts)-1], got.Taken) {
			t.Errorf("%q: Taken %q is not what the chat was told (%q)", text, got.Taken, texts)
		}
	}
	return !m.IsBot
}

var codeRE = regexp.MustCompile(`"allow ([A-Z0-9]{6})"`)

// ask starts an Ask of family for host:443 and returns its code (from the
// question sent to main) and where its verdict will come.
func (e *approvalsEnv) ask(t *testing.T, ctx context.Context, host string) (string, <-chan egress.Verdict) {
	t.Helper()
	return e.askAs(t, ctx, host, false)
}

// askAs is ask, for a page in the group's browser when browser is set.
func (e *approvalsEnv) askAs(t *testing.T, ctx context.Context, host string, browser bool) (string, <-chan egress.Verdict) {
	t.Helper()
	who := `Group "Family" (family) wants`
	if browser {
		who = `Group "Family" (family) has a web page in its browser that wants`
	}
	before := len(e.ch.Texts())
	out := make(chan egress.Verdict, 1)
	go func() {
		v, err := e.a.Ask(ctx, "family", host, 443, browser)
		if err != nil {
			t.Error(err)
		}
		out <- v
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if texts := e.ch.Texts(); len(texts) > before {
			q := texts[before]
			m := codeRE.FindStringSubmatch(q)
			if m == nil || !strings.Contains(q, who+" to connect to "+host+":443") || !strings.HasPrefix(q, "Andy: ") {
				t.Fatalf("question %q", q)
			}
			return m[1], out
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no question was sent")
	return "", nil
}

func pending(ch <-chan egress.Verdict) bool {
	select {
	case <-ch:
		return false
	case <-time.After(30 * time.Millisecond):
		return true
	}
}

// Only the owner's own words in main answer: the same words in another
// chat, from someone else in main, or as the assistant's own message
// (what send_message sends) are ordinary messages and change nothing.
// The owner's answer is taken before any agent sees it, and kept as a
// message no prompt includes.
func TestOnlyTheOwnerInMainAnswers(t *testing.T) {
	e := newApprovalsEnv(t)
	code, verdict := e.ask(t, t.Context(), "api.example.com")

	for _, tc := range []struct {
		name, chat, sender string
		fromMe             bool
		text               string
	}{
		{"owner in another chat", familyChat, ownerID, true, "allow " + code},
		{"someone else in main", mainChat, strangerID, false, "allow " + code},
		{"the assistant in main", mainChat, ownerID, true, "Andy: allow " + code},
		{"more words", mainChat, ownerID, true, "allow " + code + " please"},
	} {
		// The assistant's own message is the assistant's, as ever.
		if forAgents := e.say(t, tc.chat, tc.sender, tc.fromMe, tc.text); forAgents != !strings.HasPrefix(tc.text, "Andy: ") {
			t.Errorf("%s: stored for the agents: %v", tc.name, forAgents)
		}
		if !pending(verdict) {
			t.Fatalf("%s: answered the question", tc.name)
		}
	}
	a, _, _ := e.st.ApprovalByCode(t.Context(), code)
	if a.Decision != "" {
		t.Fatalf("decided by a non-answer: %+v", a)
	}

	if e.say(t, mainChat, ownerID, true, "  ALLOW "+strings.ToLower(code)+" \n") {
		t.Error("the owner's answer was stored for the agents")
	}
	if v := <-verdict; v != egress.VerdictAllow {
		t.Fatalf("verdict %q", v)
	}
	a, _, _ = e.st.ApprovalByCode(t.Context(), code)
	if a.Decision != egress.VerdictAllow || !strings.Contains(a.DecidedBy, ownerID) || a.DecidedAt == nil {
		t.Fatalf("recorded %+v", a)
	}
	if texts := e.ch.Texts(); !strings.Contains(texts[len(texts)-1], "Allowed once: family → api.example.com:443") {
		t.Errorf("confirmation %q", texts[len(texts)-1])
	}
	// A second answer is not taken again, and an unknown code is the
	// agent's business.
	if e.say(t, mainChat, ownerID, true, "deny "+code) {
		t.Error("a second answer was stored for the agents")
	}
	main, _, _ := e.st.GetGroup(t.Context(), "main")
	work, err := e.r.pending(t.Context(), main)
	if err != nil || len(work) != 1 || strings.Contains(work[0].prompt.Text, "ALLOW") || strings.Contains(work[0].prompt.Text, "deny "+code) {
		t.Errorf("main's prompt holds the owner's answers: %+v, %v", work, err)
	}
	if !e.say(t, mainChat, ownerID, true, "allow ZZZZZZ") {
		t.Error("an answer to no question was not passed on")
	}
	a, _, _ = e.st.ApprovalByCode(t.Context(), code)
	if a.Decision != egress.VerdictAllow {
		t.Fatalf("changed by a second answer: %+v", a)
	}
}

// always adds the destination to the group, and the next connection to
// it passes without a question; deny and no answer refuse.
func TestAlwaysDenyAndTimeout(t *testing.T) {
	e := newApprovalsEnv(t)
	code, verdict := e.ask(t, t.Context(), "api.example.com")
	e.say(t, mainChat, ownerID, true, "always "+code)
	if v := <-verdict; v != egress.VerdictAlways {
		t.Fatalf("verdict %q", v)
	}
	g, _, _ := e.st.GetGroup(t.Context(), "family")
	if !slices.Equal(g.Config.ApprovedAllow, []string{"api.example.com:443"}) {
		t.Fatalf("approved %v", g.Config.ApprovedAllow)
	}
	sent := len(e.ch.Texts())
	if v, err := e.a.Ask(t.Context(), "family", "api.example.com", 443, false); err != nil || v != egress.VerdictAlways {
		t.Fatalf("again: %q %v", v, err)
	}
	if len(e.ch.Texts()) != sent {
		t.Error("asked again about an approved destination")
	}

	code, verdict = e.ask(t, t.Context(), "b.example")
	e.say(t, mainChat, ownerID, true, "deny "+code)
	if v := <-verdict; v != egress.VerdictDeny {
		t.Fatalf("deny: %q", v)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	code, verdict = e.ask(t, ctx, "c.example")
	if v := <-verdict; v != egress.VerdictTimeout {
		t.Fatalf("no answer: %q", v)
	}
	a, _, _ := e.st.ApprovalByCode(t.Context(), code)
	if a.Decision != egress.VerdictTimeout || a.DecidedBy != "" {
		t.Fatalf("recorded %+v", a)
	}
	g, _, _ = e.st.GetGroup(t.Context(), "family")
	if len(g.Config.ApprovedAllow) != 1 {
		t.Fatalf("approved %v after deny and timeout", g.Config.ApprovedAllow)
	}
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		text string
		v    egress.Verdict
		code string
	}{
		{"allow K7P2QX", egress.VerdictAllow, "K7P2QX"},
		{" Always k7p2qx\n", egress.VerdictAlways, "K7P2QX"},
		{"DENY K7P2QX", egress.VerdictDeny, "K7P2QX"},
		{"timeout K7P2QX", "", ""},
		{"allow K7P2Q", "", ""},
		{"allow K7P2Q0", "", ""},
		{"allow", "", ""},
		{"please allow K7P2QX", "", ""},
		{"allow: K7P2QX", "", ""},
	} {
		v, code, ok := parseAnswer(tc.text)
		if v != tc.v || code != tc.code || ok != (tc.v != "") {
			t.Errorf("parseAnswer(%q) = %q %q %v", tc.text, v, code, ok)
		}
	}
}

// An agent trying name after name cannot flood main's chat: a group puts
// at most askPerHour questions to the owner an hour, the pages in its
// browser pageAskPerHour more, apart, so they cannot use up the agent's;
// and a connection that is gone is not asked about at all.
func TestQuestionsAreRationed(t *testing.T) {
	e := newApprovalsEnv(t)
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if v, err := e.a.Ask(gone, "family", "gone.example", 443, false); err != nil || v != egress.VerdictTimeout || len(e.ch.Texts()) != 0 {
		t.Fatalf("a connection already gone: %q, %v, %d questions sent", v, err, len(e.ch.Texts()))
	}
	asked := 0
	unanswered := func(host string, browser bool) {
		t.Helper()
		// The question goes unanswered: the connection goes away once it
		// is in main's chat, however slow the machine is.
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := e.a.Ask(ctx, "family", host, 443, browser)
			errc <- err
		}()
		for deadline := time.Now().Add(10 * time.Second); len(e.ch.Texts()) <= asked && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("question %q: %v", host, err)
		}
		asked++
	}
	for i := range pageAskPerHour {
		unanswered(fmt.Sprintf("cdn%d.example", i), true)
	}
	if _, err := e.a.Ask(t.Context(), "family", "one-more-cdn.example", 443, true); err == nil || !strings.Contains(err.Error(), "the pages in group family's browser asked the owner") {
		t.Errorf("a page's question beyond the hour's allowance: %v", err)
	}
	for i := range askPerHour {
		unanswered(fmt.Sprintf("x%d.example", i), false)
	}
	if _, err := e.a.Ask(t.Context(), "family", "one-more.example", 443, false); err == nil || !strings.Contains(err.Error(), "group family asked the owner 12 times this hour") {
		t.Errorf("a question beyond the hour's allowance: %v", err)
	}
	if n := len(e.ch.Texts()); n != askPerHour+pageAskPerHour {
		t.Errorf("%d questions sent to main, want %d", n, askPerHour+pageAskPerHour)
	}
}

// A page in the group's browser asks as the page, so the owner knows it is
// not the agent's own wish.
func TestBrowserQuestionSaysSo(t *testing.T) {
	e := newApprovalsEnv(t)
	code, verdict := e.askAs(t, t.Context(), "shop.example", true)
	e.say(t, mainChat, ownerID, true, "deny "+code)
	if v := <-verdict; v != egress.VerdictDeny {
		t.Fatalf("verdict %q", v)
	}
}

// A question refused beyond the allowance is logged at most once a minute
// for each allowance: a page or an agent asking in a loop does not flood
// the daemon's log.
func TestRefusalBeyondTheAllowanceSaidOnceAMinute(t *testing.T) {
	a := NewApprovals(nil, nil, "Andy", slog.New(slog.DiscardHandler))
	now := time.Now()
	for _, tc := range []struct {
		folder  string
		browser bool
		at      time.Duration
		want    bool
	}{
		{"family", true, 0, true},
		{"family", true, time.Second, false},
		{"family", false, time.Second, true}, // the agent's own allowance
		{"work", true, time.Second, true},
		{"family", true, 59 * time.Second, false},
		{"family", true, 61 * time.Second, true},
	} {
		if got := a.sayOnce(tc.folder, tc.browser, now.Add(tc.at)); got != tc.want {
			t.Errorf("%s (browser %v) at +%v: said %v, want %v", tc.folder, tc.browser, tc.at, got, tc.want)
		}
	}
}
