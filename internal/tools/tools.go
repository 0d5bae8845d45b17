// Package tools answers the host's tools: the calls of the agents' models,
// which come in on their group's gateway socket, and the owner's commands
// from the CLI. What the tools are, and who may call each, is ipc.Tools;
// this package authorizes every call by its caller and runs it on the
// store. The caller is the group of the socket a call came in on, or the
// owner; nothing in the arguments can change that.
package tools

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Chats is what the tools need of the connected channels
// (router.Channels in production).
type Chats interface {
	// CurrentChat is the chat the group's work in hand came from, "" if
	// none.
	CurrentChat(folder string) string
	// Serves reports whether a connected channel serves chat.
	Serves(chat string) bool
	// CheckSend reports whether the chat's send limit lets a message go
	// now (R9).
	CheckSend(chat string) error
	// Deliver sends a message kept in the outbox and marks it sent; false
	// leaves it unsent, for later.
	Deliver(ctx context.Context, o store.Outgoing) bool
	// Refresh asks every channel for the chats the account is in and keeps
	// them.
	Refresh(ctx context.Context)
}

// Options configure a Set.
type Options struct {
	Store         *store.Store
	Chats         Chats
	AssistantName string         // messages are prefixed "NAME: "; the default trigger is @NAME
	Location      *time.Location // where schedules are read
	Tasks         TaskLimits     // what the agents may schedule (R9)
	GroupsDir     string         // where group folders live (new groups get one)
	SessionsDir   string         // where each group's Claude Code state lives (sessions/<folder>)
	TasksChanged  func()         // tells the scheduler to look at the tasks again
	Logger        *slog.Logger

	// Mounts judges a group's extra mounts when they are set (R14); the
	// zero Guard allows none.
	Mounts mounts.Guard
	// Defaults are the limits in force where a group's config says 0 (the
	// runner's): main's model may lower a limit, never raise it (R6).
	Defaults store.ContainerConfig

	// Files copies what send_file sends out of the group's folder; nil:
	// send_file is refused. MediaMaxBytes is the largest file sent
	// (MEDIA_MAX_BYTES).
	Files         Files
	MediaMaxBytes int64
}

// Set answers every tool of ipc.Tools.
type Set struct {
	opt Options
	st  *store.Store
	log *slog.Logger
}

// New makes a Set.
func New(opt Options) *Set {
	opt.Logger = cmp.Or(opt.Logger, slog.Default())
	opt.Location = cmp.Or(opt.Location, time.UTC)
	if opt.TasksChanged == nil {
		opt.TasksChanged = func() {}
	}
	return &Set{opt: opt, st: opt.Store, log: opt.Logger}
}

// caller is who calls a tool: the group of the socket, with the rights of
// actor (its group, main's model, or the owner).
type caller struct {
	gateway.Caller
	actor store.TaskActor
}

// Call answers a model's tool call (the gateway's Tools). The caller is the
// group of the socket the call came in on.
func (s *Set) Call(ctx context.Context, c gateway.Caller, name string, args json.RawMessage) (any, error) {
	actor := store.ActorGroup
	if c.IsMain {
		actor = store.ActorMain
	}
	return s.call(ctx, caller{c, actor}, name, args)
}

// OwnerCall answers the owner's commands — the CLI, through the control
// socket or on the database when the daemon is down: every tool the
// registry gives the owner, with the main group's rights, and besides
// what no model may do (R6): widen a group's sandbox, bind a chat no
// channel has reported, reset a group's session. No gateway socket leads
// here; a container's calls come in through Call.
func (s *Set) OwnerCall(ctx context.Context, name string, args json.RawMessage) (any, error) {
	main, found, err := s.st.MainGroup(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errors.New("no main group yet: start nanoclaw once ('nanoclaw run')")
	}
	// R20: the owner's pauses are the owner's.
	return s.call(ctx, caller{gateway.Caller{Folder: main.Folder, IsMain: true}, store.ActorOwner}, name, args)
}

// call lets c call the tool name if the registry gives it to c, decodes its
// arguments strictly and runs it.
func (s *Set) call(ctx context.Context, c caller, name string, raw json.RawMessage) (any, error) {
	spec, ok := ipc.LookupTool(name)
	if !ok {
		return nil, fmt.Errorf("unknown tool %q", name)
	}
	who := map[store.TaskActor]ipc.Callers{store.ActorGroup: ipc.Groups, store.ActorMain: ipc.Main, store.ActorOwner: ipc.Owner}[c.actor]
	if spec.Callers&who == 0 {
		if who == ipc.Groups {
			return nil, errors.New("not permitted: only the main group manages groups")
		}
		return nil, fmt.Errorf("unknown tool %q", name) // a model never sees the owner's commands
	}
	args := spec.NewArgs()
	if err := decodeArgs(raw, args); err != nil {
		return nil, err
	}
	switch a := args.(type) {
	case *ipc.SendMessageArgs:
		return s.sendMessage(ctx, c.Folder, a.Text)
	case *ipc.SendFileArgs:
		return s.sendFile(ctx, c.Folder, a)
	case *ipc.ScheduleTaskArgs:
		return s.scheduleTask(ctx, c, a)
	case *ipc.ListTasksArgs:
		return s.listTasks(ctx, c, a)
	case *ipc.TaskIDArgs:
		return s.changeTask(ctx, c, name, a.TaskID, nil)
	case *ipc.UpdateTaskArgs:
		return s.changeTask(ctx, c, name, a.TaskID, a)
	case *ipc.NoArgs:
		return s.listGroups(ctx, name)
	case *ipc.RegisterGroupArgs:
		return s.registerGroup(ctx, *a, c.actor)
	case *ipc.FolderArgs:
		return s.changeGroup(ctx, c.actor, name, a.Folder, nil)
	case *ipc.ConfigureGroupArgs:
		return s.changeGroup(ctx, c.actor, name, a.Folder, a)
	}
	return nil, fmt.Errorf("unknown tool %q", name)
}

// decodeArgs decodes a tool's arguments strictly: an unknown field is an
// error the model sees, never silently ignored. Arguments that validate
// themselves (ipc.SendMessageArgs) are validated.
func decodeArgs(args json.RawMessage, v any) error {
	if err := ipc.DecodeStrict(args, v); err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	if a, ok := v.(interface{ Validate() error }); ok {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("invalid arguments: %w", err)
		}
	}
	return nil
}

// sendMessage sends text to the chat the group's current work came from.
func (s *Set) sendMessage(ctx context.Context, folder, text string) (ipc.SendMessageResult, error) {
	chat, err := s.chatOf(ctx, folder)
	if err != nil {
		return ipc.SendMessageResult{}, err
	}
	// R9: over the chat's send limit the call is refused, before anything
	// is kept, and the model is told to wait; replies are never refused,
	// they wait for their turn in the channel's Send.
	if err := s.opt.Chats.CheckSend(chat); err != nil {
		s.log.Warn("send_message refused: the chat's send limit is reached", "group", folder, "chat", chat)
		return ipc.SendMessageResult{}, fmt.Errorf("send_message: not sent: %w; or put it in your final answer", err)
	}
	o := store.NewOutgoing(chat, folder, s.opt.AssistantName+": "+text)
	// Kept and sent whether or not the agent waits for the answer: a
	// message kept but never sent would go out at the next start, out of
	// its context.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliverTimeout)
	defer cancel()
	if err := s.st.Enqueue(ctx, o); err != nil {
		return ipc.SendMessageResult{}, err
	}
	return ipc.SendMessageResult{Delivered: s.opt.Chats.Deliver(ctx, o)}, nil
}

// deliverTimeout bounds the send an agent's tool call makes: a send that
// waits longer (a chat's send limit, a slow upload) is given up and told to
// the group's next run.
const deliverTimeout = 2 * time.Minute

// chatOf is the chat a group's messages and scheduled tasks report to: the
// chat its work comes from now, or its first chat.
func (s *Set) chatOf(ctx context.Context, folder string) (string, error) {
	if chat := s.opt.Chats.CurrentChat(folder); chat != "" {
		return chat, nil
	}
	chats, err := s.st.ChatsOfGroup(ctx, folder)
	if err != nil || len(chats) == 0 {
		return "", fmt.Errorf("group %s has no chat to report to", folder)
	}
	return chats[0], nil
}
