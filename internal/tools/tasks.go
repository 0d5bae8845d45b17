package tools

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/scheduler"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// errNotPermitted answers a non-main group that reaches for another group.
var errNotPermitted = errors.New("not permitted: only the main group can act for other groups")

// configHint says where the owner changes a setting.
const configHint = "the nanoclaw config file (~/.config/nanoclaw/config, KEY=VALUE lines), then restart nanoclaw"

// TaskLimits bound what the agents may schedule (R9): every run starts a
// container and spends tokens, so a prompt-injected agent must not be able
// to schedule without end. Main's agent and the owner have their own, higher
// limits.
type TaskLimits struct {
	// MaxActive is the most tasks that count (store.TaskLimitError) of a
	// non-main group, scheduled by its agent (0: no limit); ten times as
	// many are the most it keeps, finished ones included.
	MaxActive int
	// MaxActiveMain is the same, per group, for what main's agent or the
	// owner schedules.
	MaxActiveMain int
	// MinInterval is the shortest interval (or cron frequency) a non-main
	// group's agent may schedule (0: the scheduler's minimum), and the least
	// time between its group's once tasks (0: none).
	MinInterval time.Duration
	// MinIntervalMain is the shortest interval for main's agent and the
	// owner (0: the scheduler's minimum); their once tasks are not spaced.
	MinIntervalMain time.Duration
}

// The task tools. The caller is the socket's group: a non-main group sees
// and manages only its own tasks, and a task of another group is "not
// found" to it exactly like a task that does not exist, so nothing leaks
// about other groups. The actor (the group, main's agent, or the owner
// through OwnerCall) decides whose pause it may lift (R20) and which limits
// apply (R9).

// scheduleTask answers schedule_task.
func (s *Set) scheduleTask(ctx context.Context, c caller, a *ipc.ScheduleTaskArgs) (any, error) {
	actor := c.actor
	folder := c.Folder
	if a.TargetGroup != "" && a.TargetGroup != c.Folder {
		if !c.IsMain {
			return nil, errNotPermitted
		}
		if _, found, err := s.st.GetGroup(ctx, a.TargetGroup); err != nil || !found {
			return nil, fmt.Errorf("no registered group %q", a.TargetGroup)
		}
		folder = a.TargetGroup
	}
	chat, err := s.chatOf(ctx, folder)
	if err != nil {
		return nil, err
	}
	t, err := scheduler.NewTask(scheduler.TaskRequest{Prompt: a.Prompt, ScheduleType: a.ScheduleType,
		ScheduleValue: a.ScheduleValue, ContextMode: a.ContextMode, MinInterval: s.minInterval(actor)},
		folder, chat, time.Now(), s.opt.Location)
	if err != nil {
		return nil, s.limitHint(actor, "not scheduled", err)
	}
	if err := s.st.CreateTaskWithin(ctx, t, s.caps(actor)); err != nil {
		return nil, s.limitHint(actor, "not scheduled", err)
	}
	s.opt.TasksChanged()
	s.log.Info("task scheduled", "group", folder, "task", t.ID, "type", t.ScheduleType, "next_run", t.NextRun)
	return taskInfo(t, nil), nil
}

// listTasks answers list_tasks. R9: the answer is bounded whatever a group
// keeps: the newest ipc.ListTasksLimit tasks, active and paused ones unless all
// are asked for, with their prompts and results cut short (get_task shows
// one whole), and how many more there are.
func (s *Set) listTasks(ctx context.Context, c caller, a *ipc.ListTasksArgs) (any, error) {
	folder := c.Folder
	if c.IsMain {
		folder = a.Group // "" lists every group's
	} else if a.Group != "" && a.Group != c.Folder {
		return nil, errNotPermitted
	}
	tasks, more, err := s.st.ListTasksPage(ctx, store.TaskQuery{Folder: folder, Finished: a.All, Limit: ipc.ListTasksLimit})
	if err != nil {
		return nil, err
	}
	out := ipc.TaskList{Tasks: make([]ipc.TaskInfo, 0, len(tasks)), More: more}
	for _, t := range tasks {
		info := taskInfo(t, nil)
		info.Prompt = sanitize.Clip(info.Prompt, ipc.ListPromptBytes, "…")
		info.LastResult = sanitize.Clip(info.LastResult, ipc.ListPromptBytes, "…")
		out.Tasks = append(out.Tasks, info)
	}
	return out, nil
}

// changeTask answers the tools that name a task; edit holds update_task's
// changes.
func (s *Set) changeTask(ctx context.Context, c caller, name, id string, edit *ipc.UpdateTaskArgs) (any, error) {
	now := time.Now()
	actor := c.actor
	t, err := s.ownTask(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := mayChange(t, actor, name); err != nil {
		return nil, err
	}
	switch name {
	case "get_task":
		runs, err := s.st.TaskRuns(ctx, t.ID, 10)
		if err != nil {
			return nil, err
		}
		return taskInfo(t, runs), nil
	case "update_task":
		t, err = scheduler.Update(t, scheduler.TaskEdit{Prompt: edit.Prompt, ScheduleType: edit.ScheduleType,
			ScheduleValue: edit.ScheduleValue, MinInterval: s.minInterval(actor)}, now)
		if err != nil {
			return nil, s.limitHint(actor, "not scheduled", err)
		}
		if err := s.st.UpdateTask(ctx, t, actor, s.caps(actor).OnceGap); err != nil {
			return nil, s.limitHint(actor, "not changed", s.lockedNow(ctx, t.ID, actor, name, err))
		}
	case "pause_task":
		if err := s.st.PauseTask(ctx, t.ID, actor); err != nil {
			return nil, s.lockedNow(ctx, t.ID, actor, name, err)
		}
		if t, _, err = s.st.GetTask(ctx, t.ID); err != nil {
			return nil, err
		}
	case "resume_task":
		next, err := scheduler.NextRun(store.Task{ID: t.ID, ScheduleType: t.ScheduleType, ScheduleValue: t.ScheduleValue, Timezone: t.Timezone}, now)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, fmt.Errorf("task %s has no further run to resume (its once time has passed)", t.ID)
		}
		// R9: resuming is held to the same cap as scheduling.
		if err := s.st.ResumeTask(ctx, t.ID, *next, actor, s.maxActive(actor)); err != nil {
			return nil, s.limitHint(actor, "not resumed", s.lockedNow(ctx, t.ID, actor, name, err))
		}
		t.Status, t.PausedBy, t.NextRun = store.TaskActive, "", next
	case "cancel_task":
		if err := s.st.SetTaskStatus(ctx, t.ID, store.TaskCancelled); err != nil {
			return nil, err
		}
		t.Status, t.PausedBy = store.TaskCancelled, ""
	default:
		return nil, fmt.Errorf("unknown tool %q", name)
	}
	s.opt.TasksChanged()
	s.log.Info("task changed", "group", t.Folder, "task", t.ID, "tool", name, "by", actor)
	return taskInfo(t, nil), nil
}

// mayChange says whether actor may use tool on t as it was read. R20: a
// cancelled task stays cancelled, for everyone; a task paused by main or the
// owner is resumed or edited only by main or the owner. R9: a completed task
// stays completed, for everyone, or a group could schedule once tasks, let
// them complete and turn them into schedules beside its cap. Cancelling is
// always allowed: it only narrows what runs. The store checks the same again
// when it writes, so a change in between cannot slip through.
func mayChange(t store.Task, actor store.TaskActor, tool string) error {
	switch tool {
	case "get_task", "cancel_task":
		return nil
	}
	if t.Status == store.TaskCancelled {
		return fmt.Errorf("task %s was cancelled, and a cancelled task stays cancelled: schedule a new task with schedule_task instead", t.ID)
	}
	if t.Status == store.TaskCompleted {
		if tool == "pause_task" {
			return fmt.Errorf("task %s is completed: there is nothing to pause", t.ID)
		}
		return fmt.Errorf("task %s is completed, and a completed task stays completed: schedule a new task with schedule_task instead", t.ID)
	}
	if tool == "pause_task" {
		return nil
	}
	if t.Status == store.TaskPaused && !actor.MayLift(t.PausedBy) {
		return fmt.Errorf("task %s was paused by %s; only the main group or the owner can resume or change it (the owner, on the host: nanoclaw tasks resume %s)",
			t.ID, pauserNames[t.PausedBy], t.ID)
	}
	return nil
}

var pauserNames = map[store.TaskActor]string{
	store.ActorOwner: "the owner", store.ActorMain: "the main group", store.ActorGroup: "its group",
	store.ActorScheduler: "nanoclaw (its schedule could not be computed)",
}

// lockedNow turns the store's refusal of a change that mayChange allowed
// (the task changed in between) into mayChange's answer for the task as it
// is now.
func (s *Set) lockedNow(ctx context.Context, id string, actor store.TaskActor, tool string, err error) error {
	if !errors.Is(err, store.ErrTaskLocked) {
		return err
	}
	if t, found, gerr := s.st.GetTask(ctx, id); gerr == nil && found {
		if merr := mayChange(t, actor, tool); merr != nil {
			return merr
		}
	}
	return err
}

// maxActive is the cap on a group's tasks that holds for actor (R9).
func (s *Set) maxActive(actor store.TaskActor) int {
	if actor == store.ActorGroup {
		return s.opt.Tasks.MaxActive
	}
	return s.opt.Tasks.MaxActiveMain
}

// caps are the bounds a new task of actor's is held to. R9: a group keeps
// at most ten times its cap of tasks, finished ones included (the store
// prunes those beyond store.KeepFinishedTasks), so scheduling and cancelling
// in a loop cannot grow it; and a non-main group's once tasks are
// TASK_MIN_INTERVAL apart, so they cannot run back to back.
func (s *Set) caps(actor store.TaskActor) store.TaskCaps {
	caps := store.TaskCaps{Counted: s.maxActive(actor), Kept: 10 * s.maxActive(actor)}
	if actor == store.ActorGroup {
		caps.OnceGap = s.opt.Tasks.MinInterval
	}
	return caps
}

func (s *Set) minInterval(actor store.TaskActor) time.Duration {
	if actor == store.ActorGroup {
		return s.opt.Tasks.MinInterval
	}
	return s.opt.Tasks.MinIntervalMain
}

// limitHint adds to an error of a limit (R9) what was not done ("not
// scheduled"), what the limit is and how the owner changes it; other errors
// are returned as they are.
func (s *Set) limitHint(actor store.TaskActor, notDone string, err error) error {
	setting, who := "TASK_MAX_ACTIVE", "a non-main group's agent"
	if actor != store.ActorGroup {
		setting, who = "TASK_MAX_ACTIVE_MAIN", "the main group's agent"
	}
	if full, ok := errors.AsType[*store.TaskLimitError](err); ok {
		return fmt.Errorf("%s: %w, the most %s may schedule (%s=%d). Cancel a task that is no longer needed (cancel_task), or ask the owner to raise %s in %s",
			notDone, full, who, setting, full.Limit, setting, configHint)
	}
	if kept, ok := errors.AsType[*store.TaskKeptError](err); ok {
		return fmt.Errorf("%s: %w (at most 10 × %s=%d). Finished tasks are deleted when the group has more than %d of them or after %d days; cancel a task that is no longer needed (cancel_task), or ask the owner to raise %s in %s",
			notDone, kept, setting, kept.Limit/10, store.KeepFinishedTasks, int(store.FinishedTaskRetention.Hours()/24), setting, configHint)
	}
	if near, ok := errors.AsType[*store.OnceTooCloseError](err); ok {
		return fmt.Errorf("%s: %w. A non-main group's once tasks must be at least TASK_MIN_INTERVAL=%v apart, and from its latest once run: choose a time at least %v from %s, or ask the owner to lower TASK_MIN_INTERVAL in %s",
			notDone, near, near.Gap, near.Gap, near.Near.In(s.opt.Location).Format("2006-01-02T15:04:05 MST"), configHint)
	}
	if often, ok := errors.AsType[*scheduler.TooFrequentError](err); ok && actor == store.ActorGroup && often.Min == s.opt.Tasks.MinInterval && s.opt.Tasks.MinInterval > 0 {
		return fmt.Errorf("%s: %w. A non-main group's tasks may run at most every %v (TASK_MIN_INTERVAL=%v): choose a longer interval, or ask the owner to lower TASK_MIN_INTERVAL in %s",
			notDone, err, often.Min, often.Min, configHint)
	}
	return err
}

// ownTask finds a task the caller may see: its own group's, or any for main.
func (s *Set) ownTask(ctx context.Context, c caller, id string) (store.Task, error) {
	notFound := fmt.Errorf("task %q not found", id)
	if id == "" || len(id) > 64 {
		return store.Task{}, notFound
	}
	t, found, err := s.st.GetTask(ctx, id)
	if err != nil || !found || (!c.IsMain && t.Folder != c.Folder) {
		return store.Task{}, notFound // the same answer: nothing leaks
	}
	return t, nil
}

func taskInfo(t store.Task, runs []store.TaskRun) ipc.TaskInfo {
	info := ipc.TaskInfo{ID: t.ID, Group: t.Folder, Prompt: t.Prompt, ScheduleType: string(t.ScheduleType),
		ScheduleValue: t.ScheduleValue, Timezone: t.Timezone, ContextMode: string(t.ContextMode),
		Status: string(t.Status), NextRun: t.NextRun, LastRun: t.LastRun, LastResult: t.LastResult}
	for _, run := range runs {
		info.Runs = append(info.Runs, ipc.TaskRun{StartedAt: run.StartedAt, DurationMS: run.Duration.Milliseconds(),
			Status: string(run.Status), Result: run.Result, Error: run.Error})
	}
	return info
}
