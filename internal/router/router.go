package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/queue"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Agents starts a group's agent (internal/agent's Runner in production).
type Agents interface {
	Start(ctx context.Context, g store.Group, opt agent.StartOptions) (Container, error)
}

// Container is a group's running agent (internal/agent's *Container): it
// answers prompts until it is closed or ends.
type Container interface {
	Prompt(ctx context.Context, text string) (ipc.Output, error)
	Done() <-chan struct{}
	Close(ctx context.Context)
}

// RunRecorder logs the runs of scheduled tasks (internal/scheduler's Engine).
type RunRecorder interface {
	RecordRun(ctx context.Context, t store.Task, start time.Time, result string, err error) error
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
	// Channels are what the router sends through; nil: none, so replies
	// are kept unsent.
	Channels *Channels
	// Runs logs scheduled tasks' runs; nil: they are not logged.
	Runs RunRecorder
	// Media keeps inbound files in the groups' folders, at most
	// MediaMaxBytes each; nil: attachments are noted, not kept.
	Media         MediaKeeper
	MediaMaxBytes int64
	// Transcriber turns voice notes into text; nil: they are noted as not
	// transcribed.
	Transcriber Transcriber
	// Budgets says which groups are over their model budget: their due
	// tasks are skipped, not run; nil: no budgets.
	Budgets Budgets
	// Approvals takes the owner's answers to egress questions from main
	// (approvals.go); nil: none are taken.
	Approvals *Approvals
	Logger    *slog.Logger
}

// Router turns stored chat messages into agent runs and their answers into
// replies. It is every channel's Handler.
type Router struct {
	opt    Options
	st     *store.Store
	log    *slog.Logger
	q      *queue.Queue
	ch     *Channels
	prefix string

	mu       sync.Mutex
	triggers map[string]Trigger
	tasks    taskRuns // claimed tasks waiting for their group's turn (taskrun.go)
	states   states   // what each busy group's worker does (state.go)

	// transcriptions paces each group's voice-note transcriptions.
	transcriptions *channel.SendLimit
}

// New makes a Router.
func New(opt Options) *Router {
	opt.Logger = cmp.Or(opt.Logger, slog.Default())
	opt.Location = cmp.Or(opt.Location, time.UTC)
	if opt.Channels == nil {
		opt.Channels = NewChannels(opt.Store, opt.AssistantName, opt.Logger)
	}
	r := &Router{
		opt:      opt,
		st:       opt.Store,
		log:      opt.Logger,
		ch:       opt.Channels,
		prefix:   opt.AssistantName + ": ",
		triggers: make(map[string]Trigger),
		// 30 at once, then one a minute: a chatty family, not a flood.
		transcriptions: channel.NewSendLimit(1, 30),
	}
	r.q = queue.New(opt.MaxConcurrent, r.work)
	return r
}

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
			r.notify(g.Folder)
		}
	}
	if len(chats) > 0 {
		r.log.Info("resuming chats with unanswered messages", "chats", len(chats))
	}
	r.q.Run(ctx)
	return nil
}

// OnMessage stores an inbound message first, before anything else, and
// queues its group when the message asks for an answer; it returns where the
// message was stored. Messages of chats that are not registered are not
// stored; only the chat's metadata is.
func (r *Router) OnMessage(ctx context.Context, ch channel.Channel, m channel.Message) (channel.Stored, error) {
	r.ch.heardFrom(ch)
	if err := r.st.UpsertChat(ctx, store.Chat{JID: m.ChatJID, Channel: ch.Name(), IsGroup: m.IsGroup, LastActivity: m.Timestamp}); err != nil {
		return channel.Stored{}, fmt.Errorf("store chat %s: %w", m.ChatJID, err)
	}
	g, found, err := r.st.GroupForChat(ctx, m.ChatJID)
	if err != nil {
		return channel.Stored{}, fmt.Errorf("look up chat %s: %w", m.ChatJID, err)
	}
	if !found {
		return channel.Stored{}, nil
	}
	// The assistant's own messages are recognised by the ids it sent them
	// under (MarkSent stored those, so their echo is a duplicate below); the
	// prefix catches an echo that arrives before the send returned.
	isBot := m.FromMe && strings.HasPrefix(m.Text, r.prefix)
	if _, dup, err := r.st.MessageByID(ctx, m.ChatJID, m.ID); err == nil && dup {
		return channel.Stored{}, nil // a redelivery: its media were fetched the first time
	}
	// The owner's answer to an egress question is the host's: taken here,
	// before any agent could see it, and kept as a message only the host
	// handles (is_bot: no prompt includes it, and a redelivery is known).
	answered, err := r.opt.Approvals.Answer(ctx, g, m, isBot)
	if err != nil {
		return channel.Stored{}, err
	}
	taken := answered != ""
	var media []store.Attachment
	if !isBot && !taken {
		media = r.keepMedia(ctx, g, &m)
	}
	replyTo, addressed := r.quoted(ctx, g, &m)
	seq, inserted, err := r.st.AddMessage(ctx, store.Message{
		ChatJID: m.ChatJID, ID: m.ID, Sender: m.Sender, SenderName: m.SenderName, Content: m.Text, Quote: m.Quote,
		Timestamp: m.Timestamp, FromMe: m.FromMe, IsBot: isBot || taken, ReplyTo: replyTo, QuoteSender: m.QuoteSender,
		Addressed: addressed, Attachments: media,
	})
	if err != nil {
		return channel.Stored{}, fmt.Errorf("store message %s in %s: %w", m.ID, m.ChatJID, err)
	}
	if !inserted {
		return channel.Stored{}, nil // a redelivery, or the echo of our own message
	}
	if taken {
		keepTrace(ctx, r.st, r.log, store.Event{Folder: g.Folder, Chat: m.ChatJID, Seq: seq, Kind: store.EventIgnored,
			Detail: "the owner's answer to an egress question, taken by the host"})
	}
	if isBot || taken {
		return channel.Stored{Seq: seq, Taken: answered}, nil
	}
	answer, why := r.asks(g, store.MessageStart{Sender: m.Sender, FromMe: m.FromMe, Addressed: addressed, Start: m.Text})
	stored := store.Event{Folder: g.Folder, Chat: m.ChatJID, Seq: seq, Kind: store.EventStored, Detail: from(m)}
	next := store.Event{Folder: g.Folder, Chat: m.ChatJID, Seq: seq, Kind: store.EventQueued}
	if !answer {
		next.Kind, next.Detail = store.EventIgnored, "kept as context, not answered: "+why
	}
	keepTrace(ctx, r.st, r.log, stored, next)
	if answer {
		r.notify(g.Folder)
	}
	return channel.Stored{Seq: seq, WillAnswer: answer}, nil
}

// quoted takes what m says of the message it replies to from the store,
// when the store has that message, and reports whether m speaks to the
// assistant without its trigger word: it @-mentions the account (where the
// group counts mentions), or replies to the assistant's own
// message (which the store knows by id; a sender's app may claim anything
// of the quote).
func (r *Router) quoted(ctx context.Context, g store.Group, m *channel.Message) (replyTo string, addressed bool) {
	mentioned := m.MentionsSelf && g.Config.MentionsOn()
	if m.ReplyTo == "" {
		return "", mentioned
	}
	q, found, err := r.st.MessageByID(ctx, m.ChatJID, m.ReplyTo)
	if err != nil || !found {
		return sanitize.Clip(m.ReplyTo, 128, ""), mentioned
	}
	// What the store has of the quoted message beats what the sender's app
	// claims of it (R18).
	m.Quote, m.QuoteSender = sanitize.FirstLine(q.Content, 120), q.Sender
	return q.ID, mentioned || q.IsBot
}

// from says who sent m, for the trace: a display name is the sender's own
// claim, so the id and the owner marker the channel set go along.
func from(m channel.Message) string {
	who := fmt.Sprintf("from %s <%s>", sanitize.Name(cmp.Or(m.SenderName, "?")), sanitize.Clip(m.Sender, 80, "…"))
	if m.FromMe {
		who += " (the owner)"
	}
	return who
}

// OnChat keeps a chat's name for group discovery.
func (r *Router) OnChat(ctx context.Context, ch channel.Channel, c channel.ChatInfo) {
	r.ch.keepChat(ctx, ch, c)
}

// asks reports whether a message in group g asks for an answer, and if
// not, why: only the senders in the group's trigger_senders (and the owner)
// start runs when it has that list; then main and groups without a trigger
// answer everything; the others need the trigger word at the start, an
// @-mention of the account, or a reply to the assistant's message.
func (r *Router) asks(g store.Group, m store.MessageStart) (bool, string) {
	switch {
	case !g.Config.MayTrigger(m.Sender, m.FromMe):
		return false, "in this group only the senders in trigger_senders start a run"
	case g.IsMain || !g.RequiresTrigger || m.Addressed || r.trigger(g).Match(m.Start):
		return true, ""
	}
	return false, fmt.Sprintf("in this group only a message that starts with %s, mentions the assistant or replies to it asks for an answer", g.Trigger)
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
	chat    string
	prompt  Prompt
	upTo    int64          // the newest seq the prompt covers
	trigger *store.Message // the newest message that asked: reacted to, and quoted by the reply in groups
	isGroup bool
}

// work is the queue's worker for one group: it answers every chat of the
// group with unanswered, triggered messages, and keeps the container warm
// for more until it idles out or another group needs the place.
func (r *Router) work(ctx context.Context, folder string, slot *queue.Slot) {
	var sess Container
	defer func() {
		if sess != nil {
			sess.Close(context.WithoutCancel(ctx))
		}
		r.states.set(folder, "")
	}()
	for {
		r.states.set(folder, StateRunning)
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
					r.trace(ctx, folder, w.chat, w.upTo, store.EventFailed, "cannot start the agent: %v", err)
					r.startFailed(ctx, w.chat, err)
					return
				}
				r.trace(ctx, folder, w.chat, w.upTo, store.EventStarted, "container started")
			}
			if err := r.answer(ctx, g, sess, w); err != nil && ended(sess) {
				sess = nil // the container is gone (timeout, crash): start afresh next time
			}
		}
		for _, t := range r.tasks.take(folder) {
			sess = r.runTask(ctx, g, sess, t)
		}
		if sess == nil {
			return
		}
		r.states.set(folder, StateWarm)
		idle := time.NewTimer(r.opt.IdleTimeout)
		select {
		case <-slot.Woken():
			idle.Stop()
			continue
		case <-slot.Contended(): // another group waits for a place: make room
		case <-sess.Done():
			sess = nil
		case <-idle.C:
		case <-ctx.Done():
		}
		idle.Stop()
		return
	}
}

func (r *Router) start(ctx context.Context, g store.Group) (Container, error) {
	session, err := r.st.Session(ctx, g.Folder)
	if err != nil {
		r.log.Warn("stored session unreadable; starting a fresh one", "group", g.Folder, "err", err)
		session = ""
	}
	return r.opt.Agents.Start(ctx, g, agent.StartOptions{SessionID: session})
}

// ended reports whether the container has exited.
func ended(c Container) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// failed is a run's error: err, or the agent's own report of a failed turn.
func failed(out ipc.Output, err error) error {
	if err == nil && out.IsError {
		return fmt.Errorf("the agent failed: %s", sanitize.FirstLine(out.Error+" "+out.Result, 300))
	}
	return err
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
		var trigger *store.Message
		for i, m := range b.Messages {
			input = append(input, PromptMessage{Sender: m.SenderName, SenderID: m.Sender, FromOwner: m.FromMe,
				Time: m.Timestamp, Text: m.Content, Quote: m.Quote, QuoteSender: m.QuoteSender, Attachments: m.Attachments})
			if ok, _ := r.asks(g, store.MessageStart{Sender: m.Sender, FromMe: m.FromMe, Addressed: m.Addressed, Start: m.Content}); ok {
				trigger = &b.Messages[i]
			}
		}
		asked := trigger != nil
		if !asked && b.Older > 0 {
			// A trigger said before the newest messages still asks for an answer.
			asked, err = r.st.AnyStart(ctx, chat, cursor, b.Messages[0].Seq, r.trigger(g).Len(), func(m store.MessageStart) bool {
				ok, _ := r.asks(g, m)
				return ok
			})
			if err != nil {
				return nil, err
			}
		}
		if !asked {
			continue
		}
		isGroup := true
		if c, found, err := r.st.GetChat(ctx, chat); err == nil && found {
			isGroup = c.IsGroup
		}
		work = append(work, chatWork{chat: chat, prompt: FormatPrompt(input, b.Older, r.opt.Caps, r.opt.Location),
			upTo: b.Messages[len(b.Messages)-1].Seq, trigger: trigger, isGroup: isGroup})
	}
	return work, nil
}

// answer runs one prompt and delivers its reply. The chat's cursor moves, in
// the same transaction that keeps the reply, only after the agent answered.
func (r *Router) answer(ctx context.Context, g store.Group, sess Container, w chatWork) error {
	r.ch.setCurrent(g.Folder, w.chat)
	ch := r.ch.forChat(w.chat)
	if ch != nil {
		ch.SetTyping(ctx, w.chat, true)
		defer ch.SetTyping(context.WithoutCancel(ctx), w.chat, false)
	}
	if w.prompt.Omitted > 0 {
		r.log.Info("catch-up capped", "group", g.Folder, "chat", w.chat, "kept", w.prompt.Kept, "omitted", w.prompt.Omitted)
	}
	start := time.Now()
	r.trace(ctx, g.Folder, w.chat, w.upTo, store.EventPrompted, "%d messages (%d older ones left out)", w.prompt.Kept, w.prompt.Omitted)
	r.react(ctx, g, ch, w, "👀")
	text := w.prompt.Text
	undelivered, err := r.st.Undelivered(ctx, g.Folder)
	if err != nil {
		r.log.Warn("read undelivered replies", "group", g.Folder, "err", err)
	}
	if len(undelivered) > 0 {
		text = undeliveredNote(undelivered, r.prefix, r.opt.Location) + text
	}
	out, err := sess.Prompt(ctx, text)
	if len(undelivered) > 0 {
		ids := make([]string, 0, len(undelivered))
		for _, o := range undelivered {
			ids = append(ids, o.ID)
		}
		if err := r.st.MarkTold(context.WithoutCancel(ctx), ids...); err != nil {
			r.log.Warn("mark undelivered replies told", "group", g.Folder, "err", err)
		}
	}
	if err = failed(out, err); err != nil {
		r.log.Error("agent run failed", "group", g.Folder, "chat", w.chat, "err", err)
		r.trace(ctx, g.Folder, w.chat, w.upTo, store.EventFailed, "the run failed: %v", err)
		r.react(ctx, g, ch, w, "❌")
		r.runDone(w.chat, 0, err)
		return err
	}
	var reply *store.Outgoing
	if text := strings.TrimSpace(out.Result); text != "" {
		o := store.NewOutgoing(w.chat, g.Folder, r.prefix+text)
		if w.isGroup && w.trigger != nil {
			o.ReplyTo = w.trigger.ID // in a group, the reply says which message it answers
		}
		reply = &o
	}
	if err := r.st.AnswerChat(ctx, w.chat, w.upTo, reply); err != nil {
		r.log.Error("record answer", "group", g.Folder, "chat", w.chat, "err", err)
		r.trace(ctx, g.Folder, w.chat, w.upTo, store.EventFailed, "cannot keep the reply: %v", err)
		r.react(ctx, g, ch, w, "❌")
		r.runDone(w.chat, 0, err)
		return err
	}
	r.log.Info("answered", "group", g.Folder, "chat", w.chat, "messages", w.prompt.Kept, "duration_ms", time.Since(start).Milliseconds())
	switch {
	case reply == nil:
		r.trace(ctx, g.Folder, w.chat, w.upTo, store.EventReplied, "the agent chose not to reply")
		r.react(ctx, g, ch, w, "✅")
	case r.ch.Deliver(ctx, *reply): // a failure is traced where it happens
		r.trace(ctx, g.Folder, w.chat, w.upTo, store.EventReplied, "a reply of %d bytes, delivered", len(reply.Content))
		r.react(ctx, g, ch, w, "✅")
	default:
		r.react(ctx, g, ch, w, "❌")
	}
	r.runDone(w.chat, w.upTo, nil)
	return nil
}

// react puts emoji on the message that asked for w's run, where the
// channel can and the group has not turned reactions off; best effort.
func (r *Router) react(ctx context.Context, g store.Group, ch channel.Channel, w chatWork, emoji string) {
	rc, ok := ch.(channel.Reactor)
	if !ok || w.trigger == nil || !g.Config.ReactionsOn() {
		return
	}
	to := channel.MessageRef{ID: w.trigger.ID, Sender: w.trigger.Sender, FromMe: w.trigger.FromMe}
	if err := rc.React(context.WithoutCancel(ctx), w.chat, to, emoji); err != nil {
		r.log.Debug("reaction not set", "group", g.Folder, "chat", w.chat, "emoji", emoji, "err", err)
	}
}

// undeliveredNote tells the agent which of its messages never reached
// their chat, and why, ahead of the next prompt.
func undeliveredNote(list []store.Outgoing, prefix string, loc *time.Location) string {
	var b strings.Builder
	for _, o := range list {
		what := sanitize.FirstLine(strings.TrimPrefix(o.Content, prefix), 100)
		if o.File != nil {
			what = "the file " + o.File.Name
		}
		b.WriteString(`<not_delivered time="` + o.CreatedAt.In(loc).Format(time.RFC3339) + `" chat="` + escape(clean(o.ChatJID), true) +
			`" reason="` + escape(clean(o.Error), true) + `">Your earlier message was not delivered: ` + escape(clean(what), false) + "</not_delivered>\n")
	}
	return b.String()
}

func (r *Router) flushUnsent(ctx context.Context) {
	unsent, err := r.st.Unsent(ctx)
	if err != nil {
		r.log.Error("read unsent replies", "err", err)
		return
	}
	for _, o := range unsent {
		r.ch.Deliver(ctx, o)
	}
}

// errAwaitsCredential is what a terminal waiting for an answer is told
// after the line that says how to add a credential.
var errAwaitsCredential = errors.New("the message is kept, and answered once nanoclaw runs with a credential")

// startFailed ends the wait of a chat whose agent could not start. Without
// a credential nothing can answer until the owner adds one: a chat whose
// channel shows progress to the owner at a terminal (an Observer) gets the
// line that says how, as a reply, and its messages stay unanswered (the
// cursor does not move), so the first run with a credential answers them.
// A WhatsApp chat gets nothing but the log and the status trace: its owner
// is not at a terminal, a group's other members must not read the host's
// set-up, and a line sent outside the outbox is not known as the
// assistant's, so in the self-chat it would come back as the owner's own
// message and start another run.
func (r *Router) startFailed(ctx context.Context, chat string, err error) {
	if errors.Is(err, agent.ErrNoCredential) {
		if ch := r.ch.forChat(chat); ch != nil {
			if _, shows := ch.(channel.Observer); shows {
				if _, serr := ch.Send(ctx, chat, agent.ErrNoCredential.Error()); serr != nil {
					r.log.Warn("tell the owner how to add a credential", "chat", chat, "err", serr)
				}
				err = errAwaitsCredential
			}
		}
	}
	r.runDone(chat, 0, err)
}

func (r *Router) runDone(chat string, upTo int64, err error) {
	if obs, ok := r.ch.forChat(chat).(channel.Observer); ok {
		obs.RunDone(chat, upTo, err)
	}
}
