// Package mcpserver is the `nanoclaw` MCP server that Claude Code starts
// inside the container (nanoclaw-agent mcp, over stdio). It offers the tools
// of ipc.Tools; each is a thin forwarder: it checks the model's arguments,
// posts them to the host's /ipc/tool/<name> on the gateway socket, and
// hands back the host's answer.
// The host decides what the group may do from the socket the call came in
// on; nothing here grants or checks a privilege.
package mcpserver

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

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

// inputSchema derives the JSON schema of the tool's arguments and sets each
// property's description from its Params.
func inputSchema(t ipc.ToolSpec) (*jsonschema.Schema, error) {
	schema, err := jsonschema.ForType(t.Args, nil)
	if err != nil {
		return nil, err
	}
	if schema.Type != "object" {
		return nil, fmt.Errorf("arguments type %v is not a struct", t.Args)
	}
	for prop, s := range schema.Properties {
		s.Description = t.Params[prop]
		if s.Description == "" {
			return nil, fmt.Errorf("argument %q has no description", prop)
		}
	}
	// Every argument is described: a description more describes nothing.
	if len(t.Params) != len(schema.Properties) {
		return nil, fmt.Errorf("%d descriptions for %d arguments", len(t.Params), len(schema.Properties))
	}
	// jsonschema.ForType forbids additional properties: an argument the
	// model invents is an error it can correct, not something silently
	// dropped.
	return schema, nil
}

// forward sends one call, whose arguments the SDK checked against the
// schema, to the host and turns the answer into what the model reads: the
// host's result as text, or its error as a tool error. Arguments whose type
// has a Validate() error method and fail it are answered with that error
// without asking the host (the host validates again: it is the boundary).
func forward(ctx context.Context, c Caller, log *slog.Logger, t ipc.ToolSpec, in json.RawMessage) *mcp.CallToolResult {
	name := t.Name
	a := t.NewArgs()
	err := json.Unmarshal(in, a)
	if v, ok := a.(interface{ Validate() error }); ok && err == nil {
		err = v.Validate()
	}
	if err != nil {
		return toolError(fmt.Sprintf("%s: invalid arguments: %v", name, err))
	}
	args, err := json.Marshal(a)
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

// New returns the MCP server offering the described tools of tools (see
// ipc.ToolSpec) to the model, each with the argument schema derived from
// its argument type and each property described by the spec's Params, and
// forwarding to c. A property without a description, or a description of
// no property, panics (a bug in the declaration). A nil logger discards.
func New(c Caller, tools []ipc.ToolSpec, log *slog.Logger) *mcp.Server {
	log = cmp.Or(log, slog.New(slog.DiscardHandler))
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
		SupportedProtocolVersions: slices.DeleteFunc(slices.Clone(mcp.SupportedProtocolVersions()),
			func(v string) bool { return v >= "2026-07-28" }),
	})
	for _, t := range tools {
		if t.Description == "" {
			continue
		}
		schema, err := inputSchema(t)
		if err != nil {
			panic(fmt.Sprintf("mcpserver: tool %s: %v", t.Name, err))
		}
		mcp.AddTool(s, &mcp.Tool{Name: t.Name, Description: t.Description, InputSchema: schema},
			func(ctx context.Context, _ *mcp.CallToolRequest, in json.RawMessage) (*mcp.CallToolResult, any, error) {
				return forward(ctx, c, log, t, in), nil, nil
			})
	}
	return s
}

// Serve runs the server on stdin/stdout until the client closes the
// connection or ctx ends.
func Serve(ctx context.Context, c Caller, log *slog.Logger) error {
	return New(c, ipc.Tools, log).Run(ctx, &mcp.StdioTransport{})
}
