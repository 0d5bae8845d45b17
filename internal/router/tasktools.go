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

// taskTool answers the task tools. The caller is the socket's group: a
// non-main group sees and manages only its own tasks, and a task of another
// group is "not found" to it exactly like a task that does not exist, so
// nothing leaks about other groups.
func (r *Router) taskTool(ctx context.Context, caller gateway.Caller, name string, args json.RawMessage) (any, error) {
	now := time.Now()
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
			ScheduleValue: a.ScheduleValue, ContextMode: a.ContextMode, MinInterval: r.opt.MinInterval},
			folder, chat, now, r.opt.Location)
		if err != nil {
			return nil, err
		}
		if err := r.st.CreateTask(ctx, t); err != nil {
			return nil, err
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
	switch name {
	case "get_task":
		runs, err := r.st.TaskRuns(ctx, t.ID, 10)
		if err != nil {
			return nil, err
		}
		return taskInfo(t, runs), nil
	case "update_task":
		t, err = scheduler.Update(t, scheduler.TaskEdit{Prompt: edit.Prompt, ScheduleType: edit.ScheduleType,
			ScheduleValue: edit.ScheduleValue, MinInterval: r.opt.MinInterval}, now)
		if err != nil {
			return nil, err
		}
		if err := r.st.UpdateTask(ctx, t); err != nil {
			return nil, err
		}
	case "pause_task":
		if err := r.st.SetTaskStatus(ctx, t.ID, store.TaskPaused); err != nil {
			return nil, err
		}
		t.Status = store.TaskPaused
	case "resume_task":
		next, err := scheduler.NextRun(store.Task{ID: t.ID, ScheduleType: t.ScheduleType, ScheduleValue: t.ScheduleValue, Timezone: t.Timezone}, now)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, fmt.Errorf("task %s has no further run to resume (its once time has passed)", t.ID)
		}
		if err := r.st.SetTaskNextRun(ctx, t.ID, next); err != nil {
			return nil, err
		}
		if err := r.st.SetTaskStatus(ctx, t.ID, store.TaskActive); err != nil {
			return nil, err
		}
		t.Status, t.NextRun = store.TaskActive, next
	case "cancel_task":
		if err := r.st.SetTaskStatus(ctx, t.ID, store.TaskCancelled); err != nil {
			return nil, err
		}
		t.Status = store.TaskCancelled
	default:
		return nil, fmt.Errorf("unknown tool %q", name)
	}
	r.tasksChanged()
	r.log.Info("task changed", "group", t.Folder, "task", t.ID, "tool", name)
	return taskInfo(t, nil), nil
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
