package router

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
	"github.com/nanoclaw/nanoclaw/internal/queue"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Agents starts a group's agent (internal/agent's Runner in production).
type Agents interface {
	Start(ctx context.Context, g agent.Group, opt agent.StartOptions) (Session, error)
}

// Session is a group's running agent (internal/agent's *Session): it
// answers prompts until it is closed or ends.
type Session interface {
	Prompt(ctx context.Context, text string) (ipc.Output, error)
	Done() <-chan struct{}
	Close(ctx context.Context)
}

// Options configure a Router.
type Options struct {
	Store         *store.Store
	Agents        Agents
	AssistantName string // replies are prefixed "NAME: "
	Caps          Caps
	Location      *time.Location // times in prompts
	MaxConcurrent int            // agent containers at once, all groups together
	IdleTimeout   time.Duration  // how long a warm container waits for more messages
	Tasks         TaskLimits     // what the agents may schedule (R9)
	GroupsDir     string         // where group folders live (new groups get one)
	SessionsDir   string         // where each group's Claude Code state lives (sessions/<folder>)
	TasksChanged  func()         // tells the scheduler to look at the tasks again
	// RecordRun logs a scheduled task's run (the scheduler's RecordRun).
	RecordRun func(ctx context.Context, t store.Task, start time.Time, result string, err error) error
	Logger    *slog.Logger

	// Mounts judges a group's extra mounts when the owner sets them (R14);
	// the zero Guard allows none.
	Mounts mounts.Guard
	// Defaults are the limits in force where a group's config says 0 (the
	// runner's): main's tools may lower a limit, never raise it (R6).
	Defaults store.ContainerConfig
}

// Router turns stored chat messages into agent runs and their answers into
// replies. It is every channel's Handler and the agent's send_message.
type Router struct {
	opt    Options
	st     *store.Store
	log    *slog.Logger
	q      *queue.Queue
	prefix string

	mu       sync.Mutex
	channels []channel.Channel
	current  map[string]string // folder → chat of the prompt being answered
	triggers map[string]Trigger
	tasks    taskRuns // claimed tasks waiting for their group's turn (taskrun.go)
}

// New makes a Router.
func New(opt Options) *Router {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	r := &Router{
		opt:      opt,
		st:       opt.Store,
		log:      opt.Logger,
		prefix:   opt.AssistantName + ": ",
		current:  make(map[string]string),
		triggers: make(map[string]Trigger),
	}
	r.q = queue.New(opt.MaxConcurrent, r.work)
	return r
}

// AddChannel lets the router send through ch. Call before Run.
func (r *Router) AddChannel(ch channel.Channel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.channels = append(r.channels, ch)
}

// Queue is the router's run queue (for its statistics).
func (r *Router) Queue() *queue.Queue { return r.q }

// Run resumes where the last run stopped — unsent replies are sent, chats
// with unanswered messages are queued — then runs agents until ctx ends.
func (r *Router) Run(ctx context.Context) error {
	r.flushUnsent(ctx)
	chats, err := r.st.ChatsWithPending(ctx)
	if err != nil {
		return fmt.Errorf("find unanswered chats: %w", err)
	}
	for _, jid := range chats {
		if g, found, err := r.st.GroupForChat(ctx, jid); err == nil && found {
			r.q.Notify(g.Folder)
		}
	}
	if len(chats) > 0 {
		r.log.Info("resuming chats with unanswered messages", "chats", len(chats))
	}
	r.q.Run(ctx)
	return nil
}

// OnMessage stores an inbound message first, before anything else, and
// queues its group when the message asks for an answer. Messages of chats
// that are not registered are not stored; only the chat's metadata is.
func (r *Router) OnMessage(ctx context.Context, ch channel.Channel, m channel.Message) error {
	if err := r.st.UpsertChat(ctx, store.Chat{JID: m.ChatJID, Channel: ch.Name(), IsGroup: m.IsGroup, LastActivity: m.Timestamp}); err != nil {
		return fmt.Errorf("store chat %s: %w", m.ChatJID, err)
	}
	g, found, err := r.st.GroupForChat(ctx, m.ChatJID)
	if err != nil {
		return fmt.Errorf("look up chat %s: %w", m.ChatJID, err)
	}
	if !found {
		return nil
	}
	// The assistant's own messages are recognised by the ids it sent them
	// under (MarkSent stored those, so their echo is a duplicate below); the
	// prefix catches an echo that arrives before the send returned.
	isBot := m.FromMe && strings.HasPrefix(m.Text, r.prefix)
	seq, inserted, err := r.st.AddMessage(ctx, store.Message{
		ChatJID: m.ChatJID, ID: m.ID, Sender: m.Sender, SenderName: m.SenderName, Content: m.Text, Quote: m.Quote,
		Timestamp: m.Timestamp, FromMe: m.FromMe, IsBot: isBot,
	})
	if err != nil {
		return fmt.Errorf("store message %s in %s: %w", m.ID, m.ChatJID, err)
	}
	if !inserted {
		return nil // a redelivery, or the echo of our own message
	}
	answer := !isBot && r.asks(g, m.Text)
	if obs, ok := ch.(channel.Observer); ok {
		obs.Stored(m.ChatJID, m.ID, seq, answer)
	}
	if answer {
		r.q.Notify(g.Folder)
	}
	return nil
}

// OnChat keeps a chat's name for group discovery.
func (r *Router) OnChat(ctx context.Context, ch channel.Channel, c channel.ChatInfo) {
	last := c.LastActivity
	if last.IsZero() {
		last = time.Unix(0, 0)
	}
	if err := r.st.UpsertChat(ctx, store.Chat{JID: c.JID, Name: c.Name, Channel: ch.Name(), IsGroup: c.IsGroup, LastActivity: last}); err != nil {
		r.log.Warn("store chat metadata", "chat", c.JID, "err", err)
	}
}

// asks reports whether text in group g asks for an answer: main and groups
// without a trigger answer everything; the others need the trigger.
func (r *Router) asks(g store.Group, text string) bool {
	if g.IsMain || !g.RequiresTrigger {
		return true
	}
	return r.trigger(g).Match(text)
}

func (r *Router) trigger(g store.Group) Trigger {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.triggers[g.Trigger]
	if !ok {
		t = NewTrigger(g.Trigger)
		r.triggers[g.Trigger] = t
	}
	return t
}

// chatWork is one chat's unanswered messages, ready as a prompt.
type chatWork struct {
	chat   string
	prompt Prompt
	upTo   int64 // the newest seq the prompt covers
}

// work is the queue's worker for one group: it answers every chat of the
// group with unanswered, triggered messages, and keeps the container warm
// for more until it idles out or another group needs the place.
func (r *Router) work(ctx context.Context, folder string, slot *queue.Slot) {
	var sess Session
	defer func() {
		if sess != nil {
			sess.Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		r.q.Taken(folder) // before reading: a message stored from now on wakes us
		g, found, err := r.st.GetGroup(ctx, folder)
		if err != nil || !found {
			r.log.Error("group vanished or unreadable", "group", folder, "err", err)
			return
		}
		work, err := r.pending(ctx, g)
		if err != nil {
			r.log.Error("read unanswered messages", "group", folder, "err", err)
			return
		}
		for _, w := range work {
			if sess == nil {
				if sess, err = r.start(ctx, g); err != nil {
					r.log.Error("cannot start agent", "group", folder, "err", err)
					r.runDone(w.chat, 0, err)
					return
				}
			}
			if err := r.answer(ctx, g, sess, w); err != nil {
				select {
				case <-sess.Done(): // the container is gone (timeout, crash): start afresh next time
					sess = nil
				default:
				}
			}
		}
		for _, t := range r.takeTasks(folder) {
			sess = r.runTask(ctx, g, sess, t)
		}
		if sess == nil {
			return
		}
		idle := time.NewTimer(r.opt.IdleTimeout)
		select {
		case <-slot.Woken():
			idle.Stop()
			continue
		case <-slot.Wait(): // another group waits for a place: make room
		case <-sess.Done():
			sess = nil
		case <-idle.C:
		case <-ctx.Done():
		}
		idle.Stop()
		return
	}
}

func (r *Router) start(ctx context.Context, g store.Group) (Session, error) {
	session, err := r.st.Session(ctx, g.Folder)
	if err != nil {
		r.log.Warn("stored session unreadable; starting a fresh one", "group", g.Folder, "err", err)
		session = ""
	}
	return r.opt.Agents.Start(ctx, agent.Group{Folder: g.Folder, IsMain: g.IsMain, Config: g.Config},
		agent.StartOptions{SessionID: session})
}

// pending collects, per chat of the group, the messages since the chat's
// cursor, if they ask for an answer. Only the newest messages the prompt can
// hold are loaded; the older ones are counted (R11).
func (r *Router) pending(ctx context.Context, g store.Group) ([]chatWork, error) {
	chats, err := r.st.ChatsOfGroup(ctx, g.Folder)
	if err != nil {
		return nil, err
	}
	var work []chatWork
	for _, chat := range chats {
		cursor, err := r.st.Cursor(ctx, chat)
		if err != nil {
			return nil, err
		}
		// The assistant's own words are never input: Backlog leaves them out.
		b, err := r.st.Backlog(ctx, chat, cursor, r.opt.Caps.MaxMessages)
		if err != nil {
			return nil, err
		}
		if len(b.Messages) == 0 {
			continue
		}
		input := make([]PromptMessage, 0, len(b.Messages))
		asked := false
		for _, m := range b.Messages {
			input = append(input, PromptMessage{Sender: m.SenderName, SenderID: m.Sender, FromOwner: m.FromMe,
				Time: m.Timestamp, Text: m.Content, Quote: m.Quote})
			asked = asked || r.asks(g, m.Content)
		}
		if !asked && b.Older > 0 {
			// A trigger said before the newest messages still asks for an answer.
			t := r.trigger(g)
			if asked, err = r.st.AnyStart(ctx, chat, cursor, b.Messages[0].Seq, t.Len(), t.Match); err != nil {
				return nil, err
			}
		}
		if !asked {
			continue
		}
		work = append(work, chatWork{chat: chat, prompt: FormatPrompt(input, b.Older, r.opt.Caps, r.opt.Location),
			upTo: b.Messages[len(b.Messages)-1].Seq})
	}
	return work, nil
}

// answer runs one prompt and delivers its reply. The chat's cursor moves, in
// the same transaction that keeps the reply, only after the agent answered.
func (r *Router) answer(ctx context.Context, g store.Group, sess Session, w chatWork) error {
	r.setCurrent(g.Folder, w.chat)
	ch := r.channelFor(w.chat)
	if ch != nil {
		ch.SetTyping(ctx, w.chat, true)
		defer ch.SetTyping(context.WithoutCancel(ctx), w.chat, false)
	}
	if w.prompt.Omitted > 0 {
		r.log.Info("catch-up capped", "group", g.Folder, "chat", w.chat, "kept", w.prompt.Kept, "omitted", w.prompt.Omitted)
	}
	start := time.Now()
	out, err := sess.Prompt(ctx, w.prompt.Text)
	if err == nil && out.IsError {
		err = fmt.Errorf("the agent failed: %s", firstLine(out.Error+" "+out.Result))
	}
	if err != nil {
		r.log.Error("agent run failed", "group", g.Folder, "chat", w.chat, "err", err)
		r.runDone(w.chat, 0, err)
		return err
	}
	var reply *store.Outgoing
	if text := strings.TrimSpace(out.Result); text != "" {
		o := store.NewOutgoing(w.chat, g.Folder, r.prefix+text)
		reply = &o
	}
	if err := r.st.AnswerChat(ctx, w.chat, w.upTo, reply); err != nil {
		r.log.Error("record answer", "group", g.Folder, "chat", w.chat, "err", err)
		r.runDone(w.chat, 0, err)
		return err
	}
	r.log.Info("answered", "group", g.Folder, "chat", w.chat, "messages", w.prompt.Kept, "duration_ms", time.Since(start).Milliseconds())
	if reply != nil {
		r.deliver(ctx, *reply)
	}
	r.runDone(w.chat, w.upTo, nil)
	return nil
}

// deliver sends a kept message through its chat's channel and marks it
// sent. A failure leaves it unsent; the next start sends it.
func (r *Router) deliver(ctx context.Context, o store.Outgoing) bool {
	ch := r.channelFor(o.ChatJID)
	if ch == nil {
		r.log.Warn("no connected channel for chat; reply kept for later", "chat", o.ChatJID)
		return false
	}
	ids, err := ch.Send(ctx, o.ChatJID, o.Content)
	if err != nil {
		r.log.Error("send reply; kept for later", "chat", o.ChatJID, "err", err)
		return false
	}
	if err := r.st.MarkSent(context.WithoutCancel(ctx), o, ids, r.opt.AssistantName); err != nil {
		r.log.Error("mark reply sent", "chat", o.ChatJID, "err", err)
	}
	return true
}

func (r *Router) flushUnsent(ctx context.Context) {
	unsent, err := r.st.Unsent(ctx)
	if err != nil {
		r.log.Error("read unsent replies", "err", err)
		return
	}
	for _, o := range unsent {
		r.deliver(ctx, o)
	}
}

func (r *Router) runDone(chat string, upTo int64, err error) {
	if obs, ok := r.channelFor(chat).(channel.Observer); ok {
		obs.RunDone(chat, upTo, err)
	}
}

func (r *Router) channelFor(jid string) channel.Channel {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.channels {
		if ch.Owns(jid) {
			return ch
		}
	}
	return nil
}

func (r *Router) setCurrent(folder, chat string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current[folder] = chat
}

// Call answers the agent's tool calls. The caller is the group of the socket
// the call came in on; nothing in args can change that.
func (r *Router) Call(ctx context.Context, caller gateway.Caller, name string, args json.RawMessage) (any, error) {
	switch name {
	case "send_message":
		var a ipc.SendMessageArgs
		if err := json.Unmarshal(args, &a); err != nil {
			return nil, fmt.Errorf("send_message: %w", err)
		}
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("send_message: %w", err)
		}
		return r.sendMessage(ctx, caller.Folder, a.Text)
	}
	if taskTools[name] {
		return r.taskTool(ctx, caller, name, args)
	}
	if groupTools[name] {
		return r.groupTool(ctx, caller, name, args)
	}
	return nil, fmt.Errorf("unknown tool %q", name)
}

// sendMessage sends text to the chat the group's current work came from.
func (r *Router) sendMessage(ctx context.Context, folder, text string) (ipc.SendMessageResult, error) {
	chat, err := r.chatOf(ctx, folder)
	if err != nil {
		return ipc.SendMessageResult{}, err
	}
	// R9: over the chat's send limit the call is refused, before anything
	// is kept, and the model is told to wait; replies are never refused,
	// they wait for their turn in the channel's Send.
	if l, ok := r.channelFor(chat).(channel.Limited); ok {
		if err := l.CheckSend(chat); err != nil {
			r.log.Warn("send_message refused: the chat's send limit is reached", "group", folder, "chat", chat)
			return ipc.SendMessageResult{}, fmt.Errorf("send_message: not sent: %w; or put it in your final answer", err)
		}
	}
	o := store.NewOutgoing(chat, folder, r.prefix+text)
	if err := r.st.Enqueue(ctx, o); err != nil {
		return ipc.SendMessageResult{}, err
	}
	return ipc.SendMessageResult{Delivered: r.deliver(ctx, o)}, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = sanitize.Truncate(s, 300) + "…"
	}
	return s
}
