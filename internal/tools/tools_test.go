package tools

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/router"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Every tool of the registry is answered for each caller it names, and
// refused for the others, as the registry says; a name it does not list is
// unknown to everyone.
func TestEveryRegisteredToolIsAnsweredForItsCallers(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	for _, g := range []store.Group{
		{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()},
		{Folder: "alpha", Name: "A", Trigger: "@Andy", RequiresTrigger: true, AddedAt: time.Now()},
	} {
		st.PutGroup(ctx, g)
		st.BindChat(ctx, "local:"+g.Folder, g.Folder)
	}
	chats := router.NewChannels(st, "Andy", nil)
	chats.Add(&fakeChannel{})
	s := New(Options{Store: st, Chats: chats, AssistantName: "Andy"})
	callers := map[ipc.Callers]func(name string) error{
		ipc.Groups: func(name string) error {
			_, err := s.Call(ctx, gateway.Caller{Folder: "alpha"}, name, json.RawMessage(`{}`))
			return err
		},
		ipc.Main: func(name string) error {
			_, err := s.Call(ctx, gateway.Caller{Folder: "main", IsMain: true}, name, json.RawMessage(`{}`))
			return err
		},
		ipc.Owner: func(name string) error {
			_, err := s.OwnerCall(ctx, name, json.RawMessage(`{}`))
			return err
		},
	}
	for _, spec := range ipc.Tools {
		for who, call := range callers {
			err := call(spec.Name)
			refused := err != nil && (strings.Contains(err.Error(), "unknown tool") || strings.Contains(err.Error(), "not permitted: only the main group manages groups"))
			if allowed := spec.Callers&who != 0; allowed == refused {
				t.Errorf("%s for callers %b: %v, want allowed %v", spec.Name, who, err, allowed)
			}
		}
	}
	for _, call := range callers {
		if err := call("delete_everything"); err == nil || err.Error() != `unknown tool "delete_everything"` {
			t.Errorf("an unlisted tool: %v", err)
		}
	}
}
