package control_test

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
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/control/controltest"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// collect reads a stream to its end; the stream must end by itself.
func collect(t *testing.T, st *control.EventStream) []local.Event {
	t.Helper()
	var out []local.Event
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		ev.Time = time.Time{}
		out = append(out, ev)
	}
}

func TestPostMessageReturnsReceiptOnceStored(t *testing.T) {
	d := controltest.Start(t)
	cl := control.Dial(d.Socket)
	r, err := cl.PostMessage(ctxT(t), control.MessageRequest{Chat: "local:main", Sender: "alice", Text: "hello", Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs := d.Router.Messages()
	if len(msgs) != 1 || msgs[0].ID != r.ID || msgs[0].Text != "hello" || msgs[0].SenderName != "alice" {
		t.Fatalf("stored %+v, receipt %+v", msgs, r)
	}
	if r != (control.Receipt{Chat: "local:main", ID: msgs[0].ID, Seq: 1, WillAnswer: true}) {
		t.Errorf("receipt %+v", r)
	}
	r2, err := cl.PostMessage(ctxT(t), control.MessageRequest{Chat: "local:work", Text: "not for you"})
	if err != nil || r2.Seq != 1 || r2.WillAnswer || r2.Chat != "local:work" {
		t.Errorf("untriggered: %+v %v", r2, err)
	}
	if got := d.Router.Messages()[1].SenderName; got != local.DefaultSender() {
		t.Errorf("default sender %q", got)
	}
}

func TestPostMessageWaitStreamsToTheEndOfItsRun(t *testing.T) {
	d := controltest.Start(t)
	cl := control.Dial(d.Socket)
	st, err := cl.PostMessageWait(ctxT(t), control.MessageRequest{Chat: "local:main", Sender: "alice", Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := collect(t, st)
	if len(got) != 5 {
		t.Fatalf("events %+v", got)
	}
	id := d.Router.Messages()[0].ID
	want := []local.Event{
		{Type: "stored", Chat: "local:main", ID: id, Seq: 1, WillAnswer: true},
		{Type: "typing", Chat: "local:main", Typing: true},
		{Type: "reply", Chat: "local:main", ID: got[2].ID, Text: "Andy: echo hello"},
		{Type: "typing", Chat: "local:main"},
		{Type: "done", Chat: "local:main", UpTo: 1},
	}
	if !equalEvents(got, want) {
		t.Errorf("events\n got %+v\nwant %+v", got, want)
	}
}

func TestPostMessageWaitSkipsEarlierRunsDone(t *testing.T) {
	d := controltest.Start(t)
	cl := control.Dial(d.Socket)
	first, err := cl.PostMessageWait(ctxT(t), control.MessageRequest{Chat: "local:main", Text: "first"})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, first)
	first.Close()
	// The script's "slow" run reports a done up to 1 (an earlier run) first.
	st, err := cl.PostMessageWait(ctxT(t), control.MessageRequest{Chat: "local:main", Text: "slow twice"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var types []string
	for _, ev := range collect(t, st) {
		types = append(types, ev.Type)
		if ev.Type == "done" && ev.UpTo != 2 {
			t.Errorf("the earlier run's done was passed on: %+v", ev)
		}
	}
	if strings.Join(types, " ") != "stored typing reply reply typing done" {
		t.Errorf("event types %v", types)
	}
}

func TestPostMessageWaitEndsAtOnceWhenNotTriggered(t *testing.T) {
	d := controltest.Start(t)
	st, err := control.Dial(d.Socket).PostMessageWait(ctxT(t), control.MessageRequest{Chat: "local:work", Text: "no trigger here"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := collect(t, st)
	if len(got) != 1 || got[0].Type != "stored" || got[0].WillAnswer || got[0].Seq != 1 {
		t.Errorf("events %+v", got)
	}
	// With the trigger, the same group answers.
	st2, err := control.Dial(d.Socket).PostMessageWait(ctxT(t), control.MessageRequest{Chat: "local:work", Text: "@Andy now"})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got = collect(t, st2)
	if len(got) != 5 || got[2].Text != "Andy: echo @Andy now" || got[4].UpTo != 2 {
		t.Errorf("events %+v", got)
	}
}

func TestPostMessageWaitReportsFailedRun(t *testing.T) {
	d := controltest.Start(t)
	st, err := control.Dial(d.Socket).PostMessageWait(ctxT(t), control.MessageRequest{Chat: "local:main", Text: "please fail"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := collect(t, st)
	last := got[len(got)-1]
	if last.Type != "done" || last.Error != controltest.RunError || last.UpTo != 1 {
		t.Errorf("events %+v", got)
	}
}

func TestPostMessageHandlerFailure(t *testing.T) {
	d := controltest.Start(t)
	_, err := control.Dial(d.Socket).PostMessage(ctxT(t), control.MessageRequest{Chat: "local:main", Text: "reject this"})
	var apiErr *control.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 500 || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("err %v", err)
	}
}

func TestClientGoneEndsSubscription(t *testing.T) {
	d := controltest.Start(t)
	cl := control.Dial(d.Socket)
	for _, name := range []string{"wait", "events"} {
		ctx, cancel := context.WithCancel(ctxT(t))
		var st *control.EventStream
		var err error
		if name == "wait" {
			st, err = cl.PostMessageWait(ctx, control.MessageRequest{Chat: "local:main", Text: "hang"})
		} else {
			st, err = cl.Events(ctx, "local:main")
		}
		if err != nil {
			t.Fatal(err)
		}
		if n := d.Local.Subscribers("local:main"); n != 1 {
			t.Errorf("%s: %d subscribers while streaming", name, n)
		}
		cancel()
		st.Close()
		waitFor(t, func() bool { return d.Local.Subscribers("local:main") == 0 }, name+": subscription left behind after the client went away")
	}
}

func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEventsStreamsOneChat(t *testing.T) {
	d := controltest.Start(t)
	cl := control.Dial(d.Socket)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	st, err := cl.Events(ctx, "local:main")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Posted after Events returned: nothing may be missed.
	if _, err := cl.PostMessage(ctx, control.MessageRequest{Chat: "local:work", Text: "@Andy other chat"}); err != nil {
		t.Fatal(err)
	}
	r, err := cl.PostMessage(ctx, control.MessageRequest{Chat: "local:main", Text: "twice"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for {
		ev, err := st.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Chat != "local:main" {
			t.Errorf("event of another chat: %+v", ev)
		}
		if ev.Type == "stored" && ev.ID != r.ID {
			t.Errorf("stored event %+v, want id %s", ev, r.ID)
		}
		types = append(types, ev.Type)
		if ev.Type == "done" {
			break
		}
	}
	if strings.Join(types, " ") != "stored typing reply reply typing done" {
		t.Errorf("event types %v", types)
	}
}

// rawClient speaks HTTP to the socket directly, for requests the Client
// would never send.
func rawClient(sock string) *http.Client { return testenv.UnixClient(sock) }

func TestBadRequests(t *testing.T) {
	d := controltest.Start(t)
	hc := rawClient(d.Socket)
	long := strings.Repeat("x", local.MaxTextBytes+1)
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"hi","extra":1}`, 400, `unknown field "extra"`},
		{"POST", "/v1/local/messages", `{"text":"hi"}`, 400, `chat: required`},
		{"POST", "/v1/local/messages", `{"chat":"main","text":"hi"}`, 400, `not a local chat`},
		{"POST", "/v1/local/messages", `{"chat":"local:Main","text":"hi"}`, 400, `invalid group folder`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"  "}`, 400, `text: empty message`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"` + long + `"}`, 400, `at most 65536`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"` + strings.Repeat(`\u0001`, 70000) + `"}`, 400, `text: message of 70000 bytes: at most 65536`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","files":[{"name":"a","data":"not base64!"}]}`, 400, `illegal base64`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","files":[{"name":"a/b","data":"eA=="}]}`, 400, `files: file 1: file name "a/b" contains '/'`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"hi","reply_to":"a b"}`, 400, `reply_to: message id`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"hi","sender":"a\nb"}`, 400, `sender: `},
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"hi","wait":"yes"}`, 400, `field "wait": want a JSON bool`},
		{"POST", "/v1/local/messages", `{"chat":"local:main","text":"hi"} {}`, 400, `trailing data after the JSON object`},
		{"POST", "/v1/local/messages", `chat=local:main`, 400, `not a JSON object`},
		{"POST", "/v1/local/messages", ``, 400, `empty request body`},
		{"GET", "/v1/local/messages", ``, 405, ``},
		{"GET", "/v1/local/events", ``, 400, `chat: required`},
		{"GET", "/v1/local/events?chat=local:main&chat=local:x", ``, 400, `chat: required once`},
		{"GET", "/v1/local/events?chat=local:global", ``, 400, `reserved`},
		{"GET", "/v1/local/events?chat=local:main&since=3", ``, 400, `unknown query parameter "since"`},
		{"GET", "/v1/nothing", ``, 404, ``},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://x"+tc.path, strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s %.60s: status %d, want %d (%s)", tc.method, tc.path, tc.body, resp.StatusCode, tc.status, data)
			continue
		}
		if tc.want == "" {
			continue
		}
		var eb struct{ Error string }
		if err := json.Unmarshal(data, &eb); err != nil || !strings.Contains(eb.Error, tc.want) {
			t.Errorf("%s %s %.60s: body %s, want error with %q", tc.method, tc.path, tc.body, data, tc.want)
		}
	}
	if n := len(d.Router.Messages()); n != 0 {
		t.Errorf("%d bad messages reached the router", n)
	}
}

func TestNotRunning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control.sock")
	_, err := control.Dial(path).PostMessage(ctxT(t), control.MessageRequest{Chat: "local:main", Text: "hi"})
	want := "nanoclaw is not running (no control socket at " + path + "): start it with 'nanoclaw run'"
	if !errors.Is(err, control.ErrNotRunning) || err.Error() != want {
		t.Errorf("err %v\nwant %s", err, want)
	}

	// A socket nobody listens on (a daemon killed with SIGKILL).
	short, _ := os.MkdirTemp("", "nc")
	defer os.RemoveAll(short)
	path = filepath.Join(short, "control.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	_, err = control.Dial(path).Events(ctxT(t), "local:main")
	if !errors.Is(err, control.ErrNotRunning) || !strings.Contains(err.Error(), "refuses connections") {
		t.Errorf("stale socket: %v", err)
	}
}

func equalEvents(got, want []local.Event) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestPostMessageWithFilesAndTheEventsOfItsRun(t *testing.T) {
	d := controltest.Start(t)
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 24)...)
	st, err := control.Dial(d.Socket).PostMessageWait(ctxT(t), control.MessageRequest{Chat: "local:main", Text: "react quote file", ReplyTo: "earlier-1",
		Files: []local.DraftFile{{Name: "cat.png", Data: png}, {Name: "notes.txt", Data: []byte("milk\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	events := collect(t, st)
	m := d.Router.Messages()[0]
	if m.ReplyTo != "earlier-1" || len(m.Attachments) != 2 || m.Attachments[0].Kind != "image" || m.Attachments[0].MIME != "image/png" ||
		m.Attachments[1].Kind != "document" || m.Attachments[1].FileName != "notes.txt" || m.Attachments[1].Size != 5 {
		t.Fatalf("stored %+v", m)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	if got := strings.Join(types, " "); got != "stored reaction typing reply file typing reaction done" {
		t.Fatalf("events %s: %+v", got, events)
	}
	if ev := events[1]; ev.ID != m.ID || ev.Emoji != "👀" {
		t.Errorf("first reaction %+v", ev)
	}
	if ev := events[3]; ev.ReplyTo != m.ID {
		t.Errorf("the reply quotes %q, want %q", ev.ReplyTo, m.ID)
	}
	file := events[4]
	if file.Name != controltest.FileName || file.Text != controltest.FileCaption || file.Bytes != int64(len(controltest.FileData)) ||
		filepath.Dir(file.Path) != local.FilesDir(d.Home) {
		t.Errorf("file event %+v", file)
	}
	if data, err := os.ReadFile(file.Path); err != nil || string(data) != controltest.FileData {
		t.Errorf("the file at the event's path: %q, %v", data, err)
	}
	if ev := events[6]; ev.ID != m.ID || ev.Emoji != "✅" {
		t.Errorf("last reaction %+v", ev)
	}
}

func TestPostMessageOverTheMediaLimit(t *testing.T) {
	const mediaMax = 1000
	d := controltest.Start(t, local.WithMediaMax(mediaMax))
	limit := control.MessageBodyLimit(mediaMax)
	file := func(n int) local.DraftFile { return local.DraftFile{Name: "f", Data: make([]byte, n)} }
	cl := control.Dial(d.Socket)
	for _, tc := range []struct {
		name  string
		files []local.DraftFile
		want  string
	}{
		{"a file over the limit", []local.DraftFile{file(mediaMax + 1)}, "larger than the media limit (1000 bytes)"},
		{"files together over the limit", []local.DraftFile{file(600), file(600)}, "1200 bytes together"},
		{"a body over the body limit", []local.DraftFile{file(int(limit))}, fmt.Sprintf("message larger than the %d bytes the daemon accepts: a message's files may be 1000 bytes together (MEDIA_MAX_BYTES)", limit)},
	} {
		_, err := cl.PostMessage(ctxT(t), control.MessageRequest{Chat: "local:main", Files: tc.files})
		var apiErr *control.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusRequestEntityTooLarge || !strings.Contains(apiErr.Message, tc.want) {
			t.Errorf("%s: %v, want a 413 with %q", tc.name, err, tc.want)
		}
	}

	// A body of no declared length is cut at the limit too.
	body := io.MultiReader(strings.NewReader(`{"chat":"local:main","text":"`), strings.NewReader(strings.Repeat("x", int(limit))), strings.NewReader(`"}`))
	req, _ := http.NewRequest("POST", "http://x/v1/local/messages", body)
	resp, err := rawClient(d.Socket).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if req.ContentLength != 0 || resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(data), "MEDIA_MAX_BYTES") {
		t.Errorf("chunked body: length %d, status %d, %s", req.ContentLength, resp.StatusCode, data)
	}

	// At the limits, files pass.
	if _, err := cl.PostMessage(ctxT(t), control.MessageRequest{Chat: "local:main", Files: []local.DraftFile{file(500), file(500)}}); err != nil {
		t.Errorf("files at the limit together: %v", err)
	}
	if n := len(d.Router.Messages()); n != 1 {
		t.Errorf("%d messages stored, want only the last", n)
	}
}
