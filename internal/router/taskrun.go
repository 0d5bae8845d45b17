package router

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/scheduler"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// taskRuns holds the claimed tasks waiting for their group's turn. R16: a
// task has at most one run waiting or running here; the store's claim keeps
// that true across engines and restarts, this set within the process.
type taskRuns struct {
	mu      sync.Mutex
	waiting map[string][]store.Task // folder → claimed tasks, oldest claim first
	busy    map[string]bool         // task id → a run is waiting or running
}

// add queues t unless a run of it is waiting or running already.
func (q *taskRuns) add(t store.Task) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.busy[t.ID] {
		return false
	}
	if q.busy == nil {
		q.busy, q.waiting = make(map[string]bool), make(map[string][]store.Task)
	}
	q.busy[t.ID] = true
	q.waiting[t.Folder] = append(q.waiting[t.Folder], t)
	return true
}

// take returns the group's waiting tasks; each stays busy until done.
func (q *taskRuns) take(folder string) []store.Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	tasks := q.waiting[folder]
	delete(q.waiting, folder)
	return tasks
}

func (q *taskRuns) done(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, id)
}

// RunTask queues a claimed scheduled task: it runs in its group's turn, like
// messages (the scheduler's Run dispatches to it). It does not block. A task
// whose previous run is still waiting or running is not queued again.
func (r *Router) RunTask(t store.Task) {
	if !r.tasks.add(t) {
		r.log.Warn("task already has a run waiting or running; not queued again", "task", t.ID, "group", t.Folder)
		return
	}
	r.notify(t.Folder)
}

// runTask runs a scheduled task in the group's container: in the group's
// session (context_mode group) or a fresh one that is not kept (isolated).
// Its output is only logged; the task speaks to the chat through
// send_message. It returns the group's warm container (nil if none).
func (r *Router) runTask(ctx context.Context, g store.Group, sess Container, claimed store.Task) Container {
	defer r.tasks.done(claimed.ID)
	start := time.Now()
	// R16: the task as it is now, not as it was claimed: one paused,
	// cancelled or changed while it waited runs as it is now, or not at all.
	t, found, err := r.st.GetTask(ctx, claimed.ID)
	switch {
	case err != nil:
		r.log.Error("read task before its run", "task", claimed.ID, "err", err)
		r.recordRun(ctx, claimed, start, ipc.Output{}, fmt.Errorf("cannot read the task before its run: %w", err))
		return sess
	case !found:
		r.log.Info("task deleted before its run", "task", claimed.ID, "group", g.Folder)
		return sess
	case t.Folder != g.Folder:
		r.trace(ctx, g.Folder, t.ChatJID, 0, store.EventSkipped, "scheduled task %s belongs to group %s", t.ID, t.Folder)
		r.recordRun(ctx, t, start, ipc.Output{}, fmt.Errorf("%w: the task belongs to group %s, not %s", scheduler.ErrSkipped, t.Folder, g.Folder))
		return sess
	case r.skipOverBudget(ctx, t):
		return sess
	case t.Status != store.TaskActive && t.Status != store.TaskCompleted: // a claimed once task is completed
		r.log.Info("task not run: it was stopped after its claim", "task", t.ID, "group", g.Folder, "status", t.Status)
		r.trace(ctx, g.Folder, t.ChatJID, 0, store.EventSkipped, "scheduled task %s was %s before its run", t.ID, t.Status)
		r.recordRun(ctx, t, start, ipc.Output{}, fmt.Errorf("%w: the task was %s before this run started", scheduler.ErrSkipped, t.Status))
		return sess
	}
	r.ch.setCurrent(g.Folder, t.ChatJID)
	r.trace(ctx, g.Folder, t.ChatJID, 0, store.EventPrompted, "scheduled task %s", t.ID)
	prompt := fmt.Sprintf("[Scheduled task %s. No one is waiting for your answer: your final output is only logged. "+
		"To tell the chat anything, use the send_message tool.]\n\n%s", t.ID, t.Prompt)
	var out ipc.Output
	if t.ContextMode == store.ContextIsolated {
		if sess != nil { // one container per group: the warm one makes way
			sess.Close(context.WithoutCancel(ctx))
			sess = nil
		}
		var iso Container
		if iso, err = r.opt.Agents.Start(ctx, g, agent.StartOptions{Isolated: true}); err == nil {
			out, err = iso.Prompt(ctx, prompt)
			iso.Close(context.WithoutCancel(ctx))
		}
	} else {
		if sess == nil {
			sess, err = r.start(ctx, g)
		}
		if err == nil {
			if out, err = sess.Prompt(ctx, prompt); ended(sess) {
				sess = nil
			}
		}
	}
	err = failed(out, err)
	if err != nil {
		r.trace(ctx, g.Folder, t.ChatJID, 0, store.EventFailed, "scheduled task %s failed: %v", t.ID, err)
	} else {
		r.trace(ctx, g.Folder, t.ChatJID, 0, store.EventReplied, "scheduled task %s ran", t.ID)
	}
	r.log.Info("task ran", "group", g.Folder, "task", t.ID, "duration_ms", time.Since(start).Milliseconds(), "ok", err == nil)
	r.recordRun(ctx, t, start, out, err)
	return sess
}

// recordRun logs a task's run, which also ends its claim in the store.
func (r *Router) recordRun(ctx context.Context, t store.Task, start time.Time, out ipc.Output, err error) {
	if r.opt.Runs == nil {
		return
	}
	if rerr := r.opt.Runs.RecordRun(context.WithoutCancel(ctx), t, start, out.Result, err); rerr != nil {
		r.log.Error("record task run", "task", t.ID, "err", rerr)
	}
}
