package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
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
	MaxActive       int           // most tasks that count (store.TaskLimitError) of a non-main group, scheduled by its agent; 0: no limit
	MaxActiveMain   int           // the same, per group, for what main's agent or the owner schedules; 0: no limit
	MinInterval     time.Duration // shortest interval (or cron frequency) a non-main group's agent may schedule; 0: the scheduler's minimum
	MinIntervalMain time.Duration // the same for main's agent and the owner; 0: the scheduler's minimum
}

// taskTools are the tools taskTool answers.
var taskTools = map[string]bool{
	"schedule_task": true, "list_tasks": true, "get_task": true, "update_task": true,
	"pause_task": true, "resume_task": true, "cancel_task": true,
}

// taskTool answers a model's task tools, as its group.
func (r *Router) taskTool(ctx context.Context, caller gateway.Caller, name string, args json.RawMessage) (any, error) {
	actor := store.ActorGroup
	if caller.IsMain {
		actor = store.ActorMain
	}
	return r.taskToolBy(ctx, caller, actor, name, args)
}

// taskToolBy answers the task tools. The caller is the socket's group: a
// non-main group sees and manages only its own tasks, and a task of another
// group is "not found" to it exactly like a task that does not exist, so
// nothing leaks about other groups. actor is who acts (the group, main's
// agent, or the owner through OwnerCall), which decides whose pause it may
// lift (R20) and which limits apply (R9).
func (r *Router) taskToolBy(ctx context.Context, caller gateway.Caller, actor store.TaskActor, name string, args json.RawMessage) (any, error) {
	now := time.Now()
	minInterval := r.minInterval(actor)
	switch name {
	case "schedule_task":
		var a ipc.ScheduleTaskArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		folder := caller.Folder
		if a.TargetGroup != "" && a.TargetGroup != caller.Folder {
			if !caller.IsMain {
				return nil, errNotPermitted
			}
			if _, found, err := r.st.GetGroup(ctx, a.TargetGroup); err != nil || !found {
				return nil, fmt.Errorf("no registered group %q", a.TargetGroup)
			}
			folder = a.TargetGroup
		}
		chat, err := r.chatOf(ctx, folder)
		if err != nil {
			return nil, err
		}
		t, err := scheduler.NewTask(scheduler.TaskRequest{Prompt: a.Prompt, ScheduleType: a.ScheduleType,
			ScheduleValue: a.ScheduleValue, ContextMode: a.ContextMode, MinInterval: minInterval},
			folder, chat, now, r.opt.Location)
		if err != nil {
			return nil, r.limitHint(actor, "not scheduled", err)
		}
		if err := r.st.CreateTaskWithin(ctx, t, r.maxActive(actor)); err != nil {
			return nil, r.limitHint(actor, "not scheduled", err)
		}
		r.tasksChanged()
		r.log.Info("task scheduled", "group", folder, "task", t.ID, "type", t.ScheduleType, "next_run", t.NextRun)
		return taskInfo(t, nil), nil

	case "list_tasks":
		var a ipc.ListTasksArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		folder := caller.Folder
		if caller.IsMain {
			folder = a.Group // "" lists every group's
		} else if a.Group != "" && a.Group != caller.Folder {
			return nil, errNotPermitted
		}
		tasks, err := r.st.ListTasks(ctx, folder)
		if err != nil {
			return nil, err
		}
		out := make([]ipc.TaskInfo, 0, len(tasks))
		for _, t := range tasks {
			out = append(out, taskInfo(t, nil))
		}
		return out, nil
	}

	// The tools that name a task.
	var id string
	var edit ipc.UpdateTaskArgs
	if name == "update_task" {
		if err := decodeArgs(args, &edit); err != nil {
			return nil, err
		}
		id = edit.TaskID
	} else {
		var a ipc.TaskIDArgs
		if err := decodeArgs(args, &a); err != nil {
			return nil, err
		}
		id = a.TaskID
	}
	t, err := r.ownTask(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if err := mayChange(t, actor, name); err != nil {
		return nil, err
	}
	switch name {
	case "get_task":
		runs, err := r.st.TaskRuns(ctx, t.ID, 10)
		if err != nil {
			return nil, err
		}
		return taskInfo(t, runs), nil
	case "update_task":
		t, err = scheduler.Update(t, scheduler.TaskEdit{Prompt: edit.Prompt, ScheduleType: edit.ScheduleType,
			ScheduleValue: edit.ScheduleValue, MinInterval: minInterval}, now)
		if err != nil {
			return nil, r.limitHint(actor, "not scheduled", err)
		}
		if err := r.st.UpdateTask(ctx, t, actor); err != nil {
			return nil, r.lockedNow(ctx, t.ID, actor, name, err)
		}
	case "pause_task":
		if err := r.st.PauseTask(ctx, t.ID, actor); err != nil {
			return nil, r.lockedNow(ctx, t.ID, actor, name, err)
		}
		if t, _, err = r.st.GetTask(ctx, t.ID); err != nil {
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
		if err := r.st.ResumeTask(ctx, t.ID, *next, actor, r.maxActive(actor)); err != nil {
			return nil, r.limitHint(actor, "not resumed", r.lockedNow(ctx, t.ID, actor, name, err))
		}
		t.Status, t.PausedBy, t.NextRun = store.TaskActive, "", next
	case "cancel_task":
		if err := r.st.SetTaskStatus(ctx, t.ID, store.TaskCancelled); err != nil {
			return nil, err
		}
		t.Status, t.PausedBy = store.TaskCancelled, ""
	default:
		return nil, fmt.Errorf("unknown tool %q", name)
	}
	r.tasksChanged()
	r.log.Info("task changed", "group", t.Folder, "task", t.ID, "tool", name, "by", actor)
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
			t.ID, pauserName(t.PausedBy), t.ID)
	}
	return nil
}

func pauserName(a store.TaskActor) string {
	switch a {
	case store.ActorOwner:
		return "the owner"
	case store.ActorMain:
		return "the main group"
	case store.ActorScheduler:
		return "nanoclaw (its schedule could not be computed)"
	}
	return "its group"
}

// lockedNow turns the store's refusal of a change that mayChange allowed
// (the task changed in between) into mayChange's answer for the task as it
// is now.
func (r *Router) lockedNow(ctx context.Context, id string, actor store.TaskActor, tool string, err error) error {
	if !errors.Is(err, store.ErrTaskLocked) {
		return err
	}
	if t, found, gerr := r.st.GetTask(ctx, id); gerr == nil && found {
		if merr := mayChange(t, actor, tool); merr != nil {
			return merr
		}
	}
	return err
}

// maxActive is the cap on a group's tasks that holds for actor (R9).
func (r *Router) maxActive(actor store.TaskActor) int {
	if actor == store.ActorGroup {
		return r.opt.Tasks.MaxActive
	}
	return r.opt.Tasks.MaxActiveMain
}

func (r *Router) minInterval(actor store.TaskActor) time.Duration {
	if actor == store.ActorGroup {
		return r.opt.Tasks.MinInterval
	}
	return r.opt.Tasks.MinIntervalMain
}

// limitHint adds to an error of a limit (R9) what was not done ("not
// scheduled"), what the limit is and how the owner changes it; other errors
// are returned as they are.
func (r *Router) limitHint(actor store.TaskActor, notDone string, err error) error {
	var full *store.TaskLimitError
	var often *scheduler.TooFrequentError
	switch {
	case errors.As(err, &full):
		setting, who := "TASK_MAX_ACTIVE", "a non-main group's agent"
		if actor != store.ActorGroup {
			setting, who = "TASK_MAX_ACTIVE_MAIN", "the main group's agent"
		}
		return fmt.Errorf("%s: %w, the most %s may schedule (%s=%d). Cancel a task that is no longer needed (cancel_task), or ask the owner to raise %s in %s",
			notDone, full, who, setting, full.Limit, setting, configHint)
	case errors.As(err, &often) && actor == store.ActorGroup && often.Min == r.opt.Tasks.MinInterval && r.opt.Tasks.MinInterval > 0:
		return fmt.Errorf("%s: %w. A non-main group's tasks may run at most every %v (TASK_MIN_INTERVAL=%v): choose a longer interval, or ask the owner to lower TASK_MIN_INTERVAL in %s",
			notDone, err, often.Min, often.Min, configHint)
	}
	return err
}

// ownTask finds a task the caller may see: its own group's, or any for main.
func (r *Router) ownTask(ctx context.Context, caller gateway.Caller, id string) (store.Task, error) {
	notFound := fmt.Errorf("task %q not found", id)
	if id == "" || len(id) > 64 {
		return store.Task{}, notFound
	}
	t, found, err := r.st.GetTask(ctx, id)
	if err != nil || !found || (!caller.IsMain && t.Folder != caller.Folder) {
		return store.Task{}, notFound // the same answer: nothing leaks
	}
	return t, nil
}

// chatOf is the chat a group's scheduled tasks report to: the chat its work
// comes from now, or its first chat.
func (r *Router) chatOf(ctx context.Context, folder string) (string, error) {
	r.mu.Lock()
	chat := r.current[folder]
	r.mu.Unlock()
	if chat != "" {
		return chat, nil
	}
	chats, err := r.st.ChatsOfGroup(ctx, folder)
	if err != nil || len(chats) == 0 {
		return "", fmt.Errorf("group %s has no chat to report to", folder)
	}
	return chats[0], nil
}

func (r *Router) tasksChanged() {
	if r.opt.TasksChanged != nil {
		r.opt.TasksChanged()
	}
}

// decodeArgs decodes a tool's arguments strictly: an unknown field is an
// error the model sees, never silently ignored.
func decodeArgs(args json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid arguments: %w", err)
	}
	return nil
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
