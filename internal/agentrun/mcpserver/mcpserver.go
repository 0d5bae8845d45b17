// Package mcpserver is the `nanoclaw` MCP server that Claude Code starts
// inside the container (nanoclaw-agent mcp, over stdio). Each tool is a thin
// forwarder: it checks the model's arguments, posts them to the host's
// /ipc/tool/<name> on the gateway socket, and hands back the host's answer.
// The host decides what the group may do from the socket the call came in
// on; nothing here grants or checks a privilege.
package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// ServerName is the MCP server's name in Claude Code's --mcp-config; its
// tools appear to the model as mcp__nanoclaw__<tool>.
const ServerName = "nanoclaw"

// Caller forwards one tool call to the host (hostclient.Client in the
// container, a fake in tests).
type Caller interface {
	CallTool(ctx context.Context, name string, args json.RawMessage) (ipc.ToolResponse, error)
}

// Tool declares one host tool: what the model sees (name, description,
// argument schema) and how a call is forwarded. Build one with Forward.
type Tool struct {
	Name        string
	Description string
	add         func(s *mcp.Server, c Caller, log *slog.Logger)
}

// Forward declares a host tool whose arguments are the JSON object In (its
// fields, with `json` tags and `omitempty` for optional ones, are the input
// schema). params describes each argument for the model, by JSON name; a
// field without a description, or a description of no field, panics when
// the tool is added (a bug in the declaration). If In has a Validate()
// error method, a call failing it is answered with that error without
// asking the host (the host validates again: it is the boundary).
func Forward[In any](name, description string, params map[string]string) Tool {
	t := Tool{Name: name, Description: description}
	t.add = func(s *mcp.Server, c Caller, log *slog.Logger) {
		schema, err := inputSchema[In](params)
		if err != nil {
			panic(fmt.Sprintf("mcpserver: tool %s: %v", name, err))
		}
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: description, InputSchema: schema},
			func(ctx context.Context, _ *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
				return forward(ctx, c, log, name, in), nil, nil
			})
	}
	return t
}

// inputSchema derives the JSON schema of In and sets each property's
// description from params. (The SDK reads descriptions from `jsonschema`
// struct tags; the argument types live in package ipc, which carries the
// wire contract, so the words for the model are kept here instead.)
func inputSchema[In any](params map[string]string) (*jsonschema.Schema, error) {
	schema, err := jsonschema.For[In](nil)
	if err != nil {
		return nil, err
	}
	if schema.Type != "object" {
		return nil, fmt.Errorf("arguments type %v is not a struct", reflect.TypeFor[In]())
	}
	for prop, s := range schema.Properties {
		d, ok := params[prop]
		if !ok || d == "" {
			return nil, fmt.Errorf("argument %q has no description", prop)
		}
		s.Description = d
	}
	for prop := range params {
		if _, ok := schema.Properties[prop]; !ok {
			return nil, fmt.Errorf("description for %q, which is not an argument", prop)
		}
	}
	// jsonschema.For forbids additional properties: an argument the model
	// invents is an error it can correct, not something silently dropped.
	return schema, nil
}

// forward sends one call to the host and turns the answer into what the
// model reads: the host's result as text, or its error as a tool error.
func forward[In any](ctx context.Context, c Caller, log *slog.Logger, name string, in In) *mcp.CallToolResult {
	if v, ok := any(in).(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return toolError(fmt.Sprintf("%s: invalid arguments: %v", name, err))
		}
	}
	args, err := json.Marshal(in)
	if err != nil {
		return toolError(fmt.Sprintf("%s: %v", name, err))
	}
	resp, err := c.CallTool(ctx, name, args)
	if err != nil {
		log.Error("tool call failed", "tool", name, "err", err)
		return toolError(fmt.Sprintf("%s failed: the host could not be reached or answered badly (%v)", name, err))
	}
	if resp.Error != "" {
		log.Info("tool refused by the host", "tool", name, "error", resp.Error)
		return toolError(resp.Error)
	}
	log.Info("tool call done", "tool", name)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(resp.Result)}}}
}

func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// Tools is every host tool the agent offers, in the order the model sees
// them. A new tool is one Forward declaration here (and its handler on the
// host).
var Tools = []Tool{
	Forward[ipc.SendMessageArgs]("send_message",
		"Send a message to this chat right now, while you keep working. Use it to acknowledge "+
			"a request that will take a while, or to report progress on long work. Scheduled "+
			"tasks must use it to say anything to the chat: a task's final output is only "+
			"logged, not sent. Do not use it to send your final answer to an ordinary message: "+
			"that answer is sent for you.",
		map[string]string{
			"text": "The message text, as the chat should show it (plain text; WhatsApp-style *bold* and _italics_ work).",
		}),
	Forward[ipc.ScheduleTaskArgs]("schedule_task",
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
	Forward[ipc.ListTasksArgs]("list_tasks",
		"List scheduled tasks: this group's own; the main group sees every group's.",
		map[string]string{"group": "Main group only: list just this group folder's tasks."}),
	Forward[ipc.TaskIDArgs]("get_task", "Show one task with its recent runs.",
		map[string]string{"task_id": "The task's id, as list_tasks shows it."}),
	Forward[ipc.UpdateTaskArgs]("update_task", "Change a task's prompt and/or schedule; its next run is recomputed.",
		map[string]string{
			"task_id":        "The task's id.",
			"prompt":         "The new prompt, if it changes.",
			"schedule_type":  "The new schedule type (cron, interval, once), if it changes; give schedule_value with it.",
			"schedule_value": "The new schedule value, if it changes.",
		}),
	Forward[ipc.TaskIDArgs]("pause_task", "Pause a task: it does not run until resumed.",
		map[string]string{"task_id": "The task's id."}),
	Forward[ipc.TaskIDArgs]("resume_task", "Resume a paused task; its next run is recomputed from now. A task paused by the main group or the owner is theirs to resume.",
		map[string]string{"task_id": "The task's id."}),
	Forward[ipc.TaskIDArgs]("cancel_task", "Cancel a task for good: a cancelled task can never run again.",
		map[string]string{"task_id": "The task's id."}),
	Forward[ipc.NoArgs]("list_available_groups",
		"Main group only: list every chat the account is in (from all channels), with its name, "+
			"last activity and whether it is already a registered group.", map[string]string{}),
	Forward[ipc.NoArgs]("refresh_groups",
		"Main group only: ask the channels for their current chats and names, then list them as list_available_groups does.",
		map[string]string{}),
	Forward[ipc.RegisterGroupArgs]("register_group",
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
	Forward[ipc.ConfigureGroupArgs]("configure_group",
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
		}),
}

// New returns the MCP server with the given tools forwarding to c. A nil
// logger discards.
func New(c Caller, tools []Tool, log *slog.Logger) *mcp.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: ServerName, Version: "1"}, &mcp.ServerOptions{
		Logger: log,
		// Only tools: no logging capability, so Claude Code does not ask to
		// set a log level.
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
		// Claude Code 2.1.332 opens with a server/discover probe at
		// 2026-07-28. Leaving that version out makes the probe fail with
		// "unsupported protocol version", after which Claude Code falls back
		// to the initialize handshake at 2025-11-25 (checked with the real
		// binary; it also works when the probe succeeds, but the handshake
		// is the long-proven path and needs no per-request _meta).
		SupportedProtocolVersions: handshakeVersions(),
	})
	for _, t := range tools {
		t.add(s, c, log)
	}
	return s
}

// handshakeVersions is every protocol version the SDK supports that is
// negotiated with the initialize handshake (before 2026-07-28).
func handshakeVersions() []string {
	var out []string
	for _, v := range mcp.SupportedProtocolVersions() {
		if v < "2026-07-28" {
			out = append(out, v)
		}
	}
	return out
}

// Serve runs the server on stdin/stdout until the client closes the
// connection or ctx ends.
func Serve(ctx context.Context, c Caller, log *slog.Logger) error {
	return New(c, Tools, log).Run(ctx, &mcp.StdioTransport{})
}
