package tools

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// fileChats is the channels as send_file sees them: every chat served, the
// send limit as set, deliveries recorded.
type fileChats struct {
	mu        sync.Mutex
	limit     error
	delivered []store.Outgoing
}

func (c *fileChats) CurrentChat(string) string { return "" }
func (c *fileChats) Serves(string) bool        { return true }
func (c *fileChats) CheckSend(string) error    { return c.limit }
func (c *fileChats) Refresh(context.Context)   {}
func (c *fileChats) Deliveries() []store.Outgoing {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delivered
}
func (c *fileChats) Deliver(_ context.Context, o store.Outgoing) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered = append(c.delivered, o)
	return true
}

// fakeFiles records what it was asked to copy, and copies nothing.
type fakeFiles struct {
	calls   []string // folder + " " + path
	max     int64
	err     error
	out     *store.OutFile // what SpoolFile answers; nil: a good PDF
	dropped []string
}

func (f *fakeFiles) DropSpool(name string) { f.dropped = append(f.dropped, name) }

func (f *fakeFiles) SpoolFile(_ context.Context, folder, path string, max int64) (store.OutFile, error) {
	f.calls = append(f.calls, folder+" "+path)
	f.max = max
	if f.err != nil {
		return store.OutFile{}, f.err
	}
	if f.out != nil {
		return *f.out, nil
	}
	return store.OutFile{Spool: "0A1B2C.pdf", Name: "plan.pdf", MIME: "application/pdf", Kind: "document"}, nil
}

// send_file goes to the calling group's own chat (the socket's group,
// never one the arguments name), through the outbox, as a message the
// chat's history shows as the assistant's.
func TestSendFileGoesToTheCallersChat(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	for folder, chat := range map[string]string{"family": "120363025246125486@g.us", "work": "120363099999999999@g.us"} {
		st.PutGroup(ctx, store.Group{Folder: folder, Name: folder, Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()})
		st.BindChat(ctx, chat, folder)
	}
	chats, files := &fileChats{}, &fakeFiles{}
	s := New(Options{Store: st, Chats: chats, AssistantName: "Andy", Files: files, MediaMaxBytes: 25 << 20})
	family := gateway.Caller{Folder: "family"}

	res, err := s.Call(ctx, family, "send_file", json.RawMessage(`{"path":"/workspace/group/plan.pdf"}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(res); string(b) != `{"delivered":true}` {
		t.Errorf("result %s", b)
	}
	if _, err := s.Call(ctx, family, "send_file", json.RawMessage(`{"path":"plan.pdf","caption":"the plan for *Sunday*"}`)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(files.calls, "|") != "family /workspace/group/plan.pdf|family plan.pdf" || files.max != 25<<20 {
		t.Errorf("SpoolFile calls %q with max %d", files.calls, files.max)
	}
	got := chats.Deliveries()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2", len(got))
	}
	for i, want := range []struct{ content, caption string }{
		{"Andy: [file plan.pdf]", ""},
		{"Andy: the plan for *Sunday*", "the plan for *Sunday*"},
	} {
		o := got[i]
		if o.ChatJID != "120363025246125486@g.us" || o.Folder != "family" || o.Content != want.content ||
			o.File == nil || o.File.Spool != "0A1B2C.pdf" || o.File.Caption != want.caption || o.File.Kind != "document" {
			t.Errorf("delivery %d: %+v (file %+v); want %q with caption %q to family's chat", i, o, o.File, want.content, want.caption)
		}
	}
	// Kept in the outbox with its file, so a restart still sends it.
	unsent, err := st.Unsent(ctx)
	if err != nil || len(unsent) != 2 || unsent[0].File == nil || unsent[0].File.Name != "plan.pdf" {
		t.Errorf("outbox %+v (%v)", unsent, err)
	}

	// Arguments name no chat or group, and nothing else is accepted.
	for args, want := range map[string]string{
		`{"path":"plan.pdf","chat_jid":"120363099999999999@g.us"}`: "chat_jid",
		`{"path":"plan.pdf","folder":"work"}`:                      "folder",
		`{"path":""}`:                                              "path is empty",
		`{"caption":"no file"}`:                                    "path is empty",
	} {
		if _, err := s.Call(ctx, family, "send_file", json.RawMessage(args)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("send_file %s: %v, want an error naming %q", args, err, want)
		}
	}
	if len(files.calls) != 2 {
		t.Errorf("refused arguments reached SpoolFile: %q", files.calls)
	}
}

// R9: over the chat's send limit send_file is refused before the file is
// copied or anything kept; a file the host refuses leaves nothing either.
func TestSendFileRefusals(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	st.PutGroup(ctx, store.Group{Folder: "family", Name: "Family", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()})
	st.BindChat(ctx, "120363025246125486@g.us", "family")
	st.PutGroup(ctx, store.Group{Folder: "lonely", Name: "Lonely", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()})
	family := gateway.Caller{Folder: "family"}
	args := json.RawMessage(`{"path":"plan.pdf"}`)

	chats, files := &fileChats{limit: errors.New("the chat's send limit (20 messages a minute, 5 at once) is reached: wait 3s before sending again")}, &fakeFiles{}
	s := New(Options{Store: st, Chats: chats, AssistantName: "Andy", Files: files, MediaMaxBytes: 1 << 20})
	if _, err := s.Call(ctx, family, "send_file", args); err == nil || !strings.Contains(err.Error(), "not sent: the chat's send limit") {
		t.Errorf("send_file over the limit: %v", err)
	}
	if len(files.calls) != 0 {
		t.Errorf("the file was copied although the send was refused: %q", files.calls)
	}

	chats.limit = nil
	files.err = errors.New("send file plan.pdf: the file is 30.0 MiB and files may be at most 1.0 MiB: make it smaller (compress or split it)")
	if _, err := s.Call(ctx, family, "send_file", args); err == nil || err.Error() != files.err.Error() {
		t.Errorf("send_file of a refused file: %v, want the host's refusal as it is", err)
	}

	if _, err := s.Call(ctx, gateway.Caller{Folder: "lonely"}, "send_file", args); err == nil || !strings.Contains(err.Error(), "no chat") {
		t.Errorf("send_file of a group without a chat: %v", err)
	}
	noFiles := New(Options{Store: st, Chats: chats, AssistantName: "Andy", MediaMaxBytes: 1 << 20})
	if _, err := noFiles.Call(ctx, family, "send_file", args); err == nil || !strings.Contains(err.Error(), "cannot send files") {
		t.Errorf("send_file without Files: %v", err)
	}

	if unsent, _ := st.Unsent(ctx); len(unsent) != 0 || len(chats.Deliveries()) != 0 {
		t.Errorf("refusals kept or delivered something: %+v, %+v", unsent, chats.Deliveries())
	}
}

// A copy that no message will send is removed at once: an agent cannot
// fill the host's outbox/ with copies whose message failed to be kept.
func TestSendFileDropsACopyItCannotKeep(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.PutGroup(ctx, store.Group{Folder: "family", Name: "Family", Trigger: "@Andy", AddedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.BindChat(ctx, "local:family", "family")
	files := &fakeFiles{out: &store.OutFile{Spool: "0A1B2C.pdf", Name: "a/b", MIME: "application/pdf", Kind: "document"}}
	r := New(Options{Store: st, Chats: &fileChats{}, Files: files, MediaMaxBytes: 1 << 20, AssistantName: "Andy"})
	raw, _ := json.Marshal(ipc.SendFileArgs{Path: "plan.pdf"})
	if _, err := r.Call(ctx, gateway.Caller{Folder: "family"}, "send_file", raw); err == nil {
		t.Fatal("a file whose message cannot be kept was sent")
	}
	if !slices.Equal(files.dropped, []string{"0A1B2C.pdf"}) {
		t.Errorf("copies dropped: %q, want the one taken", files.dropped)
	}
	raw, _ = json.Marshal(ipc.SendFileArgs{Path: "plan.pdf", Caption: "hi\x00"})
	if _, err := r.Call(ctx, gateway.Caller{Folder: "family"}, "send_file", raw); err == nil || len(files.calls) != 1 {
		t.Errorf("a caption with NUL: %v, %d copies asked for", err, len(files.calls))
	}
}
