package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/router"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
	"github.com/nanoclaw/nanoclaw/internal/tools"
)

// askWorld is the host as the daemon wires it for egress mode ask: the
// store, the router with its Approvals, the local channel (the owner's
// terminal, as `nanoclaw send` reaches it), the tools, and the gateway
// whose Approver the Approvals are. Names resolve through a table to
// public addresses, each dialled at a loopback echo server: the policy
// judges public addresses, and nothing leaves this machine.
type askWorld struct {
	st    *store.Store
	rtr   *router.Router
	loc   *local.Channel
	gw    *gateway.Gateway
	fam   string // family's socket
	main  string // main's socket
	dials chan string
}

type askEdge struct {
	table map[string][]netip.Addr
	echo  string
	dials chan string
}

func (e *askEdge) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := e.table[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

func (e *askEdge) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	e.dials <- addr
	var d net.Dialer
	return d.DialContext(ctx, network, e.echo)
}

func newAskWorld(t *testing.T, askTimeout time.Duration) *askWorld {
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	st := testenv.OpenStore(t, filepath.Join(t.TempDir(), "db"), store.Options{})
	for _, g := range []store.Group{
		{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()},
		{Folder: "family", Name: "Family", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now(),
			Config: store.ContainerConfig{Egress: store.Egress{Mode: store.EgressAsk}}},
	} {
		if err := st.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := st.BindChat(ctx, local.JID(g.Folder), g.Folder); err != nil {
			t.Fatal(err)
		}
	}
	chats := router.NewChannels(st, "Andy", log)
	approvals := router.NewApprovals(st, chats, "Andy", log)
	rtr := router.New(router.Options{Store: st, AssistantName: "Andy", Channels: chats, Approvals: approvals, MaxConcurrent: 1,
		Caps: router.Caps{MaxMessages: 50, MaxBytes: 1 << 20, MaxMessageBytes: 4096}, Logger: log})
	loc := local.New(log)
	chats.Add(loc)
	if err := loc.Connect(ctx, rtr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loc.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	edge := &askEdge{table: map[string][]netip.Addr{
		"a.example": {netip.MustParseAddr("1.1.1.1")}, "b.example": {netip.MustParseAddr("1.1.1.2")},
		"c.example": {netip.MustParseAddr("1.1.1.3")}, "d.example": {netip.MustParseAddr("1.1.1.4")},
	}, echo: ln.Addr().String(), dials: make(chan string, 100)}
	tl := tools.New(tools.Options{Store: st, Chats: chats, AssistantName: "Andy", Logger: log})
	gw := gateway.New(gateway.Options{Handler: idleHandler{}, Approver: approvals, AskTimeout: askTimeout, Resolver: edge, Dial: edge.dial, Tools: tl, Logger: log})
	t.Cleanup(func() { gw.Close() })
	w := &askWorld{st: st, rtr: rtr, loc: loc, gw: gw, dials: edge.dials}
	for _, g := range []struct {
		folder string
		main   bool
		mode   string
		to     *string
	}{{"family", false, "ask", &w.fam}, {"main", true, "public", &w.main}} {
		p, err := egress.ParsePolicy(g.mode, nil)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), g.folder)
		if _, err := gw.Open(gateway.Caller{Folder: g.folder, IsMain: g.main}, p, dir, -1, -1); err != nil {
			t.Fatal(err)
		}
		*g.to = filepath.Join(dir, ipc.SocketName)
	}
	return w
}

type connectResult struct {
	status int
	body   string
	conn   net.Conn
	br     *bufio.Reader
}

// connect sends CONNECT target on the group's socket, as Claude Code's
// proxy client does, and returns when the gateway answers.
func (w *askWorld) connect(t *testing.T, sock, target string) <-chan connectResult {
	out := make(chan connectResult, 1)
	go func() {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Error(err)
			out <- connectResult{}
			return
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Error(err)
			out <- connectResult{}
			return
		}
		r := connectResult{status: resp.StatusCode, conn: c, br: br}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			r.body = string(b)
		}
		out <- r
	}()
	return out
}

func wait(t *testing.T, ch <-chan connectResult) connectResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no answer to the CONNECT")
		return connectResult{}
	}
}

func stillWaiting(t *testing.T, ch <-chan connectResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: the held connection was answered: %d %s", what, r.status, r.body)
	case <-time.After(100 * time.Millisecond):
	}
}

// question waits for the question about target to be asked and returns
// its code, after checking the owner was asked in main.
func (w *askWorld) question(t *testing.T, target string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		list, err := w.st.RecentApprovals(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Target() == target && list[0].Decision == "" {
			return list[0].Code
		}
	}
	t.Fatalf("no question about %s", target)
	return ""
}

// say is a message of the owner's terminal (`nanoclaw send`) to chat.
func (w *askWorld) say(t *testing.T, chat, text string) {
	t.Helper()
	if _, err := w.loc.Deliver(t.Context(), local.Draft{Chat: chat, Text: text}); err != nil {
		t.Fatal(err)
	}
}

// End to end on the host: a connection of a group in egress mode ask
// waits while the owner is asked in main; allow lets it through, deny and
// no answer refuse it, always adds the rule so the next connection passes
// without a question; the same words typed in another chat, sent by
// someone else in main or by the model through send_message change
// nothing; private and loopback destinations are refused without a
// question.
func TestEgressAskEndToEnd(t *testing.T) {
	w := newAskWorld(t, 3*time.Second)
	ctx := t.Context()

	// allow
	res := w.connect(t, w.fam, "a.example:443")
	code := w.question(t, "a.example:443")
	stillWaiting(t, res, "before the answer")
	w.say(t, local.JID("main"), "allow "+code)
	r := wait(t, res)
	if r.status != http.StatusOK {
		t.Fatalf("after allow: %d %s", r.status, r.body)
	}
	fmt.Fprintf(r.conn, "ping\n")
	if line, err := r.br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("through the tunnel: %q %v", line, err)
	}
	if got := <-w.dials; got != "1.1.1.1:443" {
		t.Fatalf("dialled %s", got)
	}

	// Not answers: another chat, someone else in main, the model.
	res = w.connect(t, w.fam, "b.example:443")
	code = w.question(t, "b.example:443")
	w.say(t, local.JID("family"), "allow "+code)
	stillWaiting(t, res, "allow typed in family")
	if _, err := w.rtr.OnMessage(ctx, w.loc, channel.Message{ChatJID: local.JID("main"), ID: "stranger-1", Sender: "local:mallory",
		Text: "allow " + code, Timestamp: time.Now(), IsGroup: true}); err != nil {
		t.Fatal(err)
	}
	stillWaiting(t, res, "allow from someone else in main")
	for _, sock := range []string{w.main, w.fam} {
		status, body := tool(t, sock, "send_message", `{"text":"allow `+code+`"}`)
		if status != http.StatusOK {
			t.Fatalf("send_message: %d %s", status, body)
		}
	}
	stillWaiting(t, res, "allow sent by the model")
	if a, _, _ := w.st.ApprovalByCode(ctx, code); a.Decision != "" {
		t.Fatalf("decided by a non-answer: %+v", a)
	}
	w.say(t, local.JID("main"), "DENY "+strings.ToLower(code))
	if r := wait(t, res); r.status != http.StatusForbidden || !strings.Contains(r.body, "the owner denied it") {
		t.Fatalf("after deny: %d %s", r.status, r.body)
	}

	// No answer.
	start := time.Now()
	res = w.connect(t, w.fam, "c.example:443")
	w.question(t, "c.example:443")
	if r := wait(t, res); r.status != http.StatusForbidden || !strings.Contains(r.body, "no answer from the owner within 3s") || time.Since(start) < 3*time.Second {
		t.Fatalf("unanswered: %d %s after %v", r.status, r.body, time.Since(start))
	}

	// always, then the next connection without a question.
	res = w.connect(t, w.fam, "d.example:443")
	code = w.question(t, "d.example:443")
	w.say(t, local.JID("main"), "always "+code)
	if r := wait(t, res); r.status != http.StatusOK {
		t.Fatalf("after always: %d %s", r.status, r.body)
	}
	before, _ := w.st.RecentApprovals(ctx, 100)
	if r := wait(t, w.connect(t, w.fam, "d.example:443")); r.status != http.StatusOK {
		t.Fatalf("again after always: %d %s", r.status, r.body)
	}
	after, _ := w.st.RecentApprovals(ctx, 100)
	if len(after) != len(before) {
		t.Errorf("asked again about an approved destination")
	}
	g, _, _ := w.st.GetGroup(ctx, "family")
	if len(g.Config.ApprovedAllow) != 1 || g.Config.ApprovedAllow[0] != "d.example:443" {
		t.Errorf("approved %v", g.Config.ApprovedAllow)
	}

	// Never asked about.
	for _, target := range []string{"127.0.0.1:8080", "10.0.0.1:443", "169.254.169.254:80", "localhost:443"} {
		if r := wait(t, w.connect(t, w.fam, target)); r.status != http.StatusForbidden {
			t.Errorf("%s: %d %s", target, r.status, r.body)
		}
	}
	if last, _ := w.st.RecentApprovals(ctx, 100); len(last) != len(after) {
		t.Errorf("asked about a private destination: %+v", last[0])
	}
}

// tool calls a host tool on the socket as the agent's MCP server does.
func tool(t *testing.T, sock, name, args string) (int, string) {
	t.Helper()
	resp, err := testenv.UnixClient(sock).Post("http://gateway"+ipc.PathToolPrefix+name, "application/json", strings.NewReader(args))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// idleHandler is an agent host with no input to give.
type idleHandler struct{}

func (idleHandler) Next(ctx context.Context, _ string) (ipc.Input, bool, error) {
	<-ctx.Done()
	return ipc.Input{}, false, nil
}
func (idleHandler) Output(context.Context, string, ipc.Output) error { return nil }
