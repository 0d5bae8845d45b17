package ipc

import "time"

// The task tools' arguments and answers. Authorization never comes from
// these: a non-main group reaches only its own tasks, whatever it names.

// ScheduleTaskArgs are the arguments of schedule_task.
type ScheduleTaskArgs struct {
	Prompt        string `json:"prompt"`
	ScheduleType  string `json:"schedule_type"`
	ScheduleValue string `json:"schedule_value"`
	ContextMode   string `json:"context_mode,omitempty"`
	// TargetGroup (main only) schedules the task for another group's folder.
	TargetGroup string `json:"target_group,omitempty"`
}

// ListTasksArgs are the arguments of list_tasks.
type ListTasksArgs struct {
	// Group (main only) lists one group's tasks; main sees all otherwise.
	Group string `json:"group,omitempty"`
	// All lists completed and cancelled tasks too.
	All bool `json:"all,omitempty"`
}

// What one list_tasks answer holds at most: so many tasks, each prompt and
// last result cut to so many bytes.
const (
	ListTasksLimit  = 100
	ListPromptBytes = 200
)

// TaskList is the answer of list_tasks: the newest tasks first, each
// prompt and last result cut short (get_task shows them whole), and how
// many more, older, tasks matched.
type TaskList struct {
	Tasks []TaskInfo `json:"tasks"`
	More  int        `json:"more,omitempty"`
}

// TaskIDArgs are the arguments of get_task, pause_task, resume_task and
// cancel_task.
type TaskIDArgs struct {
	TaskID string `json:"task_id"`
}

// UpdateTaskArgs are the arguments of update_task: the fields to change.
type UpdateTaskArgs struct {
	TaskID        string  `json:"task_id"`
	Prompt        *string `json:"prompt,omitempty"`
	ScheduleType  *string `json:"schedule_type,omitempty"`
	ScheduleValue *string `json:"schedule_value,omitempty"`
}

// TaskInfo is a task as the agent sees it.
type TaskInfo struct {
	ID            string     `json:"id"`
	Group         string     `json:"group"`
	Prompt        string     `json:"prompt"`
	ScheduleType  string     `json:"schedule_type"`
	ScheduleValue string     `json:"schedule_value"`
	Timezone      string     `json:"timezone"`
	ContextMode   string     `json:"context_mode"`
	Status        string     `json:"status"`
	NextRun       *time.Time `json:"next_run,omitempty"`
	LastRun       *time.Time `json:"last_run,omitempty"`
	LastResult    string     `json:"last_result,omitempty"`
	Runs          []TaskRun  `json:"recent_runs,omitempty"`
}

// TaskRun is one logged run of a task.
type TaskRun struct {
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Status     string    `json:"status"`
	Result     string    `json:"result,omitempty"`
	Error      string    `json:"error,omitempty"`
}
