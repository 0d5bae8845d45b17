package router

import (
	"context"
	"fmt"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/scheduler"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Budgets says whether a group may spend on the model now (the gateway's
// Budgeter in production).
type Budgets interface {
	OverBudget(ctx context.Context, folder string) (gateway.BudgetHit, bool, error)
}

// overBudget says why the group in folder may not run now, "" when it
// may. A budget that cannot be read is no reason: the gateway refuses the
// run's calls itself then.
func (r *Router) overBudget(ctx context.Context, folder string) string {
	if r.opt.Budgets == nil {
		return ""
	}
	hit, over, err := r.opt.Budgets.OverBudget(ctx, folder)
	if err != nil || !over {
		return ""
	}
	return hit.Message(folder)
}

// skipOverBudget logs a due task of a group over its budget as skipped
// when its turn comes, instead of a run whose every call would be
// refused; it reports whether it did. (Checked in the group's worker, not
// where the scheduler hands tasks over: that must not wait on the store.)
func (r *Router) skipOverBudget(ctx context.Context, t store.Task) bool {
	why := r.overBudget(ctx, t.Folder)
	if why == "" {
		return false
	}
	r.log.Info("task not run: the budget is reached", "task", t.ID, "group", t.Folder, "why", why)
	r.trace(ctx, t.Folder, t.ChatJID, 0, store.EventSkipped, "scheduled task %s not run: %s", t.ID, why)
	r.recordRun(ctx, t, time.Now(), ipc.Output{}, fmt.Errorf("%w: %s", scheduler.ErrSkipped, why))
	return true
}

// BudgetReached tells the chats of a budget reached, once a period (the
// Budgeter calls it once): the group's chat that its assistant pauses
// until the budget resets, and the owner in main which budget it was. It
// returns at once; the messages go through the outbox.
func (r *Router) BudgetReached(folder string, hit gateway.BudgetHit) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		main, found, err := r.st.MainGroup(ctx)
		if err != nil || !found {
			r.log.Warn("budget reached; no main group to tell", "group", folder, "err", err)
			return
		}
		if folder != "" && folder != main.Folder {
			r.tell(ctx, folder, fmt.Sprintf("I have used this chat's model budget for now; I answer again after %s.",
				hit.Resets.In(r.opt.Location).Format("2006-01-02 15:04 MST")))
		}
		if folder != "" && hit.Total {
			return // the owner hears of the total budget once, with folder ""
		}
		r.tell(ctx, main.Folder, hit.Message(folder))
	}()
}

// tell sends text to the chat the group in folder reports to: the one its
// work came from last, or its first.
func (r *Router) tell(ctx context.Context, folder, text string) {
	chat := r.ch.CurrentChat(folder)
	if chat == "" {
		chats, err := r.st.ChatsOfGroup(ctx, folder)
		if err != nil || len(chats) == 0 {
			r.log.Warn("no chat to tell", "group", folder, "err", err)
			return
		}
		chat = chats[0]
	}
	o := store.NewOutgoing(chat, folder, r.prefix+text)
	if err := r.st.Enqueue(ctx, o); err != nil {
		r.log.Error("keep a message to the chat", "group", folder, "err", err)
		return
	}
	r.ch.Deliver(ctx, o)
}
