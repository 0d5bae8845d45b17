package main

import (
	"cmp"
	"context"

	"github.com/nanoclaw/nanoclaw/internal/incontainer"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/hostclient"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/mcpserver"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

func (m *Main) runMCP(ctx context.Context, args []string) error {
	fs := m.flagSet("mcp", "[options]",
		"Serve the nanoclaw MCP tools (send_message, …) over stdin/stdout. Claude Code starts this\n"+
			"itself, as configured by 'nanoclaw-agent run'; each tool call is forwarded to the host\n"+
			"over the gateway socket.")
	socket := fs.String("socket", "", "the gateway socket (default $"+incontainer.EnvSocket+", else "+ipc.ContainerSocket+")")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	log, err := m.logger(*level, "mcp")
	if err != nil {
		return err
	}
	path := cmp.Or(*socket, m.Getenv(incontainer.EnvSocket), ipc.ContainerSocket)
	client := hostclient.New(path, log)
	defer client.Close()
	log.Info("mcp server starting", "socket", path)
	return mcpserver.Serve(ctx, client, log)
}
