package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Approvals asks the owner, in the main group's chat, about destinations
// of groups in egress mode ask, and takes the owner's answers from there.
// It is the gateway's Approver. Widening a group's egress is the owner's
// alone: an answer counts only when the owner wrote it in main (the
// channel's FromMe, not the assistant's own prefixed message), and the
// host parses it before any agent sees it; no tool can answer.
type Approvals struct {
	st     *store.Store
	ch     *Channels
	prefix string // the assistant's "NAME: "
	log    *slog.Logger

	mu      sync.Mutex
	waiting map[string]chan egress.Verdict // open questions, by code
	asked   map[string][]time.Time         // each group's questions of the last hour
	said    map[string]time.Time           // when a refusal beyond the allowance was last logged (sayOnce)
}

// askPerHour is how many questions one group may put to the owner in an
// hour: an agent trying name after name must not flood main's chat (and
// its send limit, which the owner's own replies share).
const askPerHour = 12

// pageAskPerHour is the hourly allowance of the pages in a group's
// browser, apart from the agent's: a page that pulls in a dozen hosts
// cannot use up the questions the agent needs.
const pageAskPerHour = askPerHour / 2

// mayAsk takes a question of the group in folder (of a page in its
// browser, when browser) from its hourly allowance, or says when the next
// one may be asked.
func (a *Approvals) mayAsk(folder string, browser bool, now time.Time) (time.Time, bool) {
	key, allowance := allowanceKey(folder, browser), askPerHour
	if browser {
		allowance = pageAskPerHour
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	recent := a.asked[key][:0]
	for _, t := range a.asked[key] {
		if now.Sub(t) < time.Hour {
			recent = append(recent, t)
		}
	}
	if len(recent) >= allowance {
		a.asked[key] = recent
		return recent[0].Add(time.Hour), false
	}
	a.asked[key] = append(recent, now)
	return time.Time{}, true
}

// allowanceKey names a group's allowance of questions: the agent's, or
// its browser's pages' (no folder has a space).
func allowanceKey(folder string, browser bool) string {
	if browser {
		return folder + " browser"
	}
	return folder
}

// sayOnce reports whether the refusal of a question beyond the allowance
// may be logged now: at most once a minute for each allowance, so a page or
// an agent asking in a loop does not flood the log.
func (a *Approvals) sayOnce(folder string, browser bool, now time.Time) bool {
	key := allowanceKey(folder, browser)
	a.mu.Lock()
	defer a.mu.Unlock()
	if last, ok := a.said[key]; ok && now.Sub(last) < time.Minute {
		return false
	}
	a.said[key] = now
	return true
}

// NewApprovals makes the Approvals that ask through ch.
func NewApprovals(st *store.Store, ch *Channels, assistantName string, log *slog.Logger) *Approvals {
	return &Approvals{st: st, ch: ch, prefix: assistantName + ": ", log: log, waiting: map[string]chan egress.Verdict{},
		asked: map[string][]time.Time{}, said: map[string]time.Time{}}
}

// deliverTimeout bounds the sending of one question or confirmation; what
// is not sent by then stays in the outbox.
const approvalSendTimeout = 30 * time.Second

// Ask asks the owner whether the group in folder may connect to host:port
// (host canonical) and waits for the answer until ctx ends, which is
// recorded as a timeout. A destination the owner answered "always" before
// passes without a question. The question and its answer are recorded in
// the store before anything is sent or let through.
func (a *Approvals) Ask(ctx context.Context, folder, host string, port int, browser bool) (egress.Verdict, error) {
	if ctx.Err() != nil { // the connection is gone: nobody waits for the answer
		return egress.VerdictTimeout, nil
	}
	g, found, err := a.st.GetGroup(ctx, folder)
	if err != nil {
		return a.failed(ctx, err)
	}
	if !found {
		return "", fmt.Errorf("no group %s", folder)
	}
	if g.Config.Approved(host, port) {
		return egress.VerdictAlways, nil
	}
	if next, ok := a.mayAsk(folder, browser, time.Now()); !ok {
		who, n := "group "+folder, askPerHour
		if browser {
			who, n = "the pages in group "+folder+"'s browser", pageAskPerHour
		}
		if a.sayOnce(folder, browser, time.Now()) {
			a.log.Warn("egress: not asking the owner: the questions of the hour are used up (said at most once a minute)", "group", folder, "browser", browser, "target", fmt.Sprintf("%s:%d", host, port))
		}
		return "", fmt.Errorf("%s asked the owner %d times this hour: not asked again before %s", who, n, next.UTC().Format("15:04 UTC"))
	}
	main, found, err := a.st.MainGroup(ctx)
	if err != nil {
		return a.failed(ctx, err)
	}
	if !found {
		return "", errors.New("no main group to ask the owner in")
	}
	chats, err := a.st.ChatsOfGroup(ctx, main.Folder)
	if err != nil {
		return a.failed(ctx, err)
	}
	if len(chats) == 0 {
		return "", errors.New("the main group has no chat to ask the owner in")
	}
	ask, err := a.st.AddApproval(ctx, folder, host, port)
	if err != nil {
		return a.failed(ctx, err)
	}
	answer := make(chan egress.Verdict, 1)
	a.mu.Lock()
	a.waiting[ask.Code] = answer
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.waiting, ask.Code)
		a.mu.Unlock()
	}()
	a.log.Info("egress: asking the owner", "group", folder, "target", ask.Target(), "code", ask.Code)
	text := question(g, ask, browser, ctx)
	for _, chat := range chats {
		a.send(ctx, chat, main.Folder, text)
	}

	select {
	case v := <-answer:
		return v, nil
	case <-ctx.Done():
	}
	// No answer in time. An answer that came just now wins: it is stored.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	d, err := a.st.DecideApproval(sctx, ask.Code, egress.VerdictTimeout, "")
	if errors.Is(err, store.ErrDecided) {
		return d.Decision, nil
	}
	if err != nil {
		a.log.Warn("egress: cannot record the unanswered question", "code", ask.Code, "err", err)
	}
	a.log.Info("egress: no answer from the owner", "group", folder, "target", ask.Target(), "code", ask.Code)
	return egress.VerdictTimeout, nil
}

// failed is Ask's answer when the store failed before the owner was
// asked: a connection that went away meanwhile is simply not answered
// (the store gave up because of it), anything else is an error.
func (a *Approvals) failed(ctx context.Context, err error) (egress.Verdict, error) {
	if ctx.Err() != nil {
		return egress.VerdictTimeout, nil
	}
	return "", err
}

// question is the text that asks the owner about ask of group g.
func question(g store.Group, ask store.Approval, browser bool, ctx context.Context) string {
	wait := ""
	if dl, ok := ctx.Deadline(); ok {
		wait = fmt.Sprintf(" No answer within %v means deny.", time.Until(dl).Round(time.Second))
	}
	who := "wants"
	if browser {
		who = "has a web page in its browser that wants" // what a page asks for, not the agent
	}
	return fmt.Sprintf("Group %q (%s) "+who+" to connect to %s. Answer \"allow %s\" (this once), \"always %s\" (from now on, for this group) or \"deny %s\".%s",
		sanitize.Clip(g.Name, 80, "…"), g.Folder, ask.Target(), ask.Code, ask.Code, ask.Code, wait)
}

// send keeps text for chat in the outbox, then sends it.
func (a *Approvals) send(ctx context.Context, chat, folder, text string) {
	o := store.NewOutgoing(chat, folder, a.prefix+text)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), approvalSendTimeout)
	defer cancel()
	if err := a.st.Enqueue(ctx, o); err != nil {
		a.log.Warn("egress: cannot keep the message to the owner", "chat", chat, "err", err)
		return
	}
	a.ch.Deliver(ctx, o)
}

// parseAnswer reads text as an answer to a question: "allow CODE",
// "always CODE" or "deny CODE", case-insensitive, nothing else around it.
func parseAnswer(text string) (egress.Verdict, string, bool) {
	f := strings.Fields(text)
	if len(f) != 2 {
		return "", "", false
	}
	v := egress.Verdict(strings.ToLower(f[0]))
	code := strings.ToUpper(f[1])
	if v != egress.VerdictAllow && v != egress.VerdictAlways && v != egress.VerdictDeny || store.ValidateAskCode(code) != nil {
		return "", "", false
	}
	return v, code, true
}

// Answer takes m, a message to a chat of group g, as the owner's answer
// when it is one: the owner's own message (not the assistant's, isBot) in
// a chat of the main group whose whole text is an answer to a question
// the store knows. Then it records the answer (durable before the
// waiting connection goes on), tells the owner what was done, and returns
// what it told: the message is the host's, shown to no agent. Anything
// else — the same words in another chat, from someone else, or from the
// assistant — is an ordinary message ("").
func (a *Approvals) Answer(ctx context.Context, g store.Group, m channel.Message, isBot bool) (string, error) {
	if a == nil || !g.IsMain || !m.FromMe || isBot {
		return "", nil
	}
	v, code, ok := parseAnswer(m.Text)
	if !ok {
		return "", nil
	}
	ask, err := a.st.DecideApproval(ctx, code, v, sanitize.Clip(fmt.Sprintf("%s in %s", m.Sender, m.ChatJID), 300, ""))
	var reply string
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil // no question of ours: words for the agent
	case errors.Is(err, store.ErrDecided):
		reply = fmt.Sprintf("%s (%s → %s) was already answered: %s.", code, ask.Folder, ask.Target(), ask.Decision)
	case err != nil:
		// Taken all the same, and said: a message that failed here would be
		// fetched again and again (Telegram), and the owner can answer anew.
		a.log.Warn("egress: cannot record the owner's answer", "code", code, "err", err)
		reply = fmt.Sprintf("Your answer to %s could not be recorded: %s", code, sanitize.FirstLine(err.Error(), 200))
	default:
		a.mu.Lock()
		if w := a.waiting[code]; w != nil {
			w <- v
		}
		a.mu.Unlock()
		a.log.Info("egress: the owner answered", "group", ask.Folder, "target", ask.Target(), "code", code, "decision", string(v))
		reply = map[egress.Verdict]string{
			egress.VerdictAllow:  "Allowed once: %s → %s.",
			egress.VerdictAlways: "Allowed from now on: %s → %s (nanoclaw groups show lists it; groups set %[1]s approved= removes it).",
			egress.VerdictDeny:   "Denied: %s → %s.",
		}[v]
		reply = fmt.Sprintf(reply, ask.Folder, ask.Target())
	}
	a.send(ctx, m.ChatJID, g.Folder, reply)
	return reply, nil
}
