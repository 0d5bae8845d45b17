package ipc

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Callers says who may call a tool. The host decides who a caller is from
// the socket a call came in on (or the control socket, for the owner),
// never from the arguments.
type Callers uint8

// The callers.
const (
	// Groups is every group's model, each acting for its own group.
	Groups Callers = 1 << iota
	// Main is main's model, which may act for every group but never widen
	// a sandbox (R6).
	Main
	// Owner is the owner: the CLI, through the control socket or on the
	// database when the daemon is down.
	Owner
)

// ToolSpec declares one host tool: its name, what the model reads about it,
// who may call it and the type of its arguments (a JSON object). Make one
// with NewToolSpec.
type ToolSpec struct {
	Name string
	// Description is what the model reads; a tool without one is not
	// offered to the model (the owner's CLI or main's socket may still call
	// it).
	Description string
	// Params describes each argument for the model, by JSON name.
	Params  map[string]string
	Callers Callers
	Args    reflect.Type // the arguments' type: a struct
}

// NewToolSpec declares a tool whose arguments are the JSON object A: its
// fields, with `json` tags and `omitempty` for optional ones, are the
// arguments.
func NewToolSpec[A any](name string, callers Callers, description string, params map[string]string) ToolSpec {
	return ToolSpec{Name: name, Description: description, Params: params, Callers: callers, Args: reflect.TypeFor[A]()}
}

// NewArgs returns a pointer to a zero argument value of the tool, to decode
// a call into. If it has a Validate() error method, arguments failing it
// are refused wherever they are checked.
func (t ToolSpec) NewArgs() any { return reflect.New(t.Args).Interface() }

// toolName is the grammar of a tool's name, which becomes part of a path.
var toolName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ValidToolName reports whether s may name a tool: a lowercase letter, then
// up to 63 of a-z, 0-9 and '_'.
func ValidToolName(s string) bool { return toolName.MatchString(s) }

// LookupTool finds a tool of Tools by name.
func LookupTool(name string) (ToolSpec, bool) {
	i := slices.IndexFunc(Tools, func(t ToolSpec) bool { return t.Name == name })
	if i < 0 {
		return ToolSpec{}, false
	}
	return Tools[i], true
}

// Tools is every host tool, in the order the model sees them: the one list
// the MCP server offers, the gateway checks and the host answers. A new
// tool is one declaration here and its answer in internal/tools.
var Tools = []ToolSpec{
	NewToolSpec[SendMessageArgs]("send_message", Groups|Main,
		"Send a message to this chat right now, while you keep working. Use it to acknowledge "+
			"a request that will take a while, or to report progress on long work. Scheduled "+
			"tasks must use it to say anything to the chat: a task's final output is only "+
			"logged, not sent. Do not use it to send your final answer to an ordinary message: "+
			"that answer is sent for you.",
		map[string]string{
			"text": "The message text, as the chat should show it (plain text; WhatsApp-style *bold* and _italics_ work).",
		}),
	NewToolSpec[SendFileArgs]("send_file", Groups|Main,
		"Send a file from this group's folder (/workspace/group) to this chat right now: a photo, "+
			"a document, a screenshot, audio or video, with an optional caption. The host detects "+
			"the file's type from its content and sends it as a picture, audio, video or document. "+
			"Files the chat sent you are under /workspace/group/media/. Only a regular file inside "+
			"the folder can be sent: a link (send the file itself), a directory or a file over the "+
			"host's size limit is refused, and the refusal says why. Your final answer is still sent as text.",
		map[string]string{
			"path":    "The file's path: under /workspace/group, or relative to it (e.g. \"report.pdf\" or \"/workspace/group/media/photo.jpg\").",
			"caption": "Text shown with the file (plain text; WhatsApp-style *bold* and _italics_ work).",
		}),
	NewToolSpec[ScheduleTaskArgs]("schedule_task", Groups|Main|Owner,
		"Schedule work for later: the prompt runs as a full agent in this group's container at the "+
			"scheduled times. Its final output is only logged; to tell the chat anything, the task "+
			"must call send_message. Write the prompt so it stands on its own. A group may have only "+
			"so many tasks, running only so often; a refusal says the limit.",
		map[string]string{
			"prompt":         "What the agent should do when the task runs.",
			"schedule_type":  "cron, interval or once.",
			"schedule_value": "cron: 5 fields (minute hour day month weekday), e.g. \"0 9 * * 1-5\"; interval: milliseconds, e.g. \"3600000\"; once: local time \"2026-12-01T09:00:00\" or RFC 3339 with zone.",
			"context_mode":   "group (default): run in this group's conversation, with its history; isolated: a fresh session (the prompt must carry all context).",
			"target_group":   "Main group only: the folder of the group to schedule for.",
		}),
	NewToolSpec[ListTasksArgs]("list_tasks", Groups|Main|Owner,
		"List scheduled tasks, newest first: this group's own; the main group sees every group's. "+
			"Active and paused tasks unless all is true; at most "+strconv.Itoa(ListTasksLimit)+", each prompt cut short (get_task shows a task whole); "+
			"\"more\" says how many older tasks were left out.",
		map[string]string{
			"group": "Main group only: list just this group folder's tasks.",
			"all":   "true: also completed and cancelled tasks (the newest finished ones are kept for a while).",
		}),
	NewToolSpec[TaskIDArgs]("get_task", Groups|Main|Owner, "Show one task with its recent runs.",
		map[string]string{"task_id": "The task's id, as list_tasks shows it."}),
	NewToolSpec[UpdateTaskArgs]("update_task", Groups|Main|Owner, "Change a task's prompt and/or schedule; its next run is recomputed.",
		map[string]string{
			"task_id":        "The task's id.",
			"prompt":         "The new prompt, if it changes.",
			"schedule_type":  "The new schedule type (cron, interval, once), if it changes; give schedule_value with it.",
			"schedule_value": "The new schedule value, if it changes.",
		}),
	NewToolSpec[TaskIDArgs]("pause_task", Groups|Main|Owner, "Pause a task: it does not run until resumed.",
		map[string]string{"task_id": "The task's id."}),
	NewToolSpec[TaskIDArgs]("resume_task", Groups|Main|Owner, "Resume a paused task; its next run is recomputed from now. A task paused by the main group or the owner is theirs to resume.",
		map[string]string{"task_id": "The task's id."}),
	NewToolSpec[TaskIDArgs]("cancel_task", Groups|Main|Owner, "Cancel a task for good: a cancelled task can never run again.",
		map[string]string{"task_id": "The task's id."}),
	NewToolSpec[NoArgs]("list_available_groups", Main|Owner,
		"Main group only: list every chat the account is in (from all channels), with its name, "+
			"last activity and whether it is already a registered group.", map[string]string{}),
	NewToolSpec[NoArgs]("refresh_groups", Main|Owner,
		"Main group only: ask the channels for their current chats and names, then list them as list_available_groups does.",
		map[string]string{}),
	NewToolSpec[RegisterGroupArgs]("register_group", Main|Owner,
		"Main group only: start answering in another chat. The chat becomes a group with its own folder, "+
			"memory and sandbox; by default it answers only messages that start with the trigger. "+
			"Only chats that list_available_groups shows can be registered.",
		map[string]string{
			"jid":              "The chat's id, exactly as list_available_groups shows it.",
			"name":             "A display name for the group.",
			"folder":           "The group's folder name: lowercase letters, digits and '-', e.g. \"family\".",
			"trigger":          "The trigger word, default @ plus the assistant's name.",
			"requires_trigger": "false: answer every message in this chat, not only those starting with the trigger.",
		}),
	NewToolSpec[ConfigureGroupArgs]("configure_group", Main|Owner,
		"Main group only: change a group's settings; only the fields given change, and all are validated. "+
			"A sandbox can only be narrowed here: lower limits, egress mode none, fewer egress rules, fewer mounts "+
			"or read-only ones. Anything that gives a group more (a higher limit, a new egress rule or a wider mode, "+
			"a new or read-write mount) is refused with the command the owner can run on the host instead.",
		map[string]string{
			"folder":            "The group's folder.",
			"name":              "New display name.",
			"trigger":           "New trigger word.",
			"requires_trigger":  "Whether messages must start with the trigger.",
			"timeout_seconds":   "Longest agent run in seconds; at most the one in force (0: the default).",
			"memory_mb":         "Memory limit of the group's container in MiB; at most the one in force (0: the default).",
			"cpus":              "CPU limit of the group's container; at most the one in force (0: the default).",
			"pids_limit":        "Process limit of the group's container; at most the one in force (0: the default).",
			"egress_mode":       "Network policy: none, or allowlist (only the rules given) where the group had more.",
			"egress_allow":      "The allow list: rules the group has already, or (with egress_mode allowlist) web host names and *.suffixes.",
			"additional_mounts": "The group's extra host directories [{host_path, container_path, readonly}]: a subset of its current ones.",
			"reactions":         "false: no status reactions (👀 when a run starts, ✅ answered, ❌ failed) on the message answered; true: them again (the default).",
			"mentions":          "false: an @-mention of the assistant's account no longer asks for an answer (on WhatsApp that account is the owner's, so people mentioning the owner would start runs); true: it does again (the default).",
			"trigger_senders":   "The sender ids (as sender_id shows them) who may start a run; the others' messages still go along as context. An empty list: anyone in the chat. Once the owner set a list, you may only remove senders from it.",
			"model":             "The Claude model of the group's runs, like claude-sonnet-4-5; empty: the host's default. It changes what the group's runs cost, not what they may reach; the group's budget (the owner's alone) still holds.",
			"approved_allow":    "The destinations (host:port) the owner's \"always\" answers added in egress mode ask: you may only remove some; only the owner adds one.",
			"browser":           "false: the group's runs no longer have the browser (Chromium and agent-browser). Turning it on is the owner's alone (nanoclaw groups set FOLDER browser=true).",
			"budget":            "The owner's alone: refused here. The group's caps {day_tokens, month_tokens, day_usd, month_usd} are set on the host (nanoclaw groups set FOLDER day_tokens=N ...).",
		}),
	// Not offered to the model: the owner's CLI uses them; main's socket
	// answers all but reset_session.
	NewToolSpec[NoArgs]("list_groups", Main|Owner, "", nil),
	NewToolSpec[FolderArgs]("get_group", Main|Owner, "", nil),
	NewToolSpec[FolderArgs]("unregister_group", Main|Owner, "", nil),
	NewToolSpec[FolderArgs]("reset_session", Owner, "", nil),
}

// SendFileArgs are the arguments of the send_file tool.
type SendFileArgs struct {
	Path    string `json:"path"`
	Caption string `json:"caption,omitempty"`
}

// MaxFilePathBytes bounds send_file's path (Linux's PATH_MAX).
const MaxFilePathBytes = 4096

// Validate checks send_file's arguments; which paths may be sent is the
// host's to judge, on the file itself.
func (a SendFileArgs) Validate() error {
	switch {
	case strings.TrimSpace(a.Path) == "":
		return errors.New("path is empty")
	case len(a.Path) > MaxFilePathBytes || !utf8.ValidString(a.Path) || strings.ContainsRune(a.Path, 0):
		return fmt.Errorf("path must be UTF-8 of at most %d bytes without NUL", MaxFilePathBytes)
	case len(a.Caption) > MaxMessageBytes || !utf8.ValidString(a.Caption) || strings.ContainsRune(a.Caption, 0):
		return fmt.Errorf("caption must be UTF-8 of at most %d bytes without NUL", MaxMessageBytes)
	}
	return nil
}

// SendFileResult is what send_file returns to the model.
type SendFileResult struct {
	Delivered bool `json:"delivered"`
}
