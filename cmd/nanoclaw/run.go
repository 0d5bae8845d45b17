package main

import (
	"context"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
)

const runHelp = `Run the assistant in the foreground until interrupted (Ctrl-C or SIGTERM).
Logs go to stderr (text on a terminal, JSON otherwise) and, as JSON lines, to
the data home's logs/nanoclaw.log, rotated at 10 MB with 5 older files kept;
'nanoclaw logs' shows and follows it.

Settings (environment variables, or KEY=VALUE lines in $NANOCLAW_CONFIG_DIR/config;
the environment wins; the file is read literally, without any shell):
  NANOCLAW_CONFIG_DIR        config dir, never mounted into a container (default ~/.config/nanoclaw)
`

func (m *Main) runDaemon(ctx context.Context, args []string) error {
	fs := m.flagSet("run", "[--print-config]", runHelp+config.Help())
	printConfig := fs.Bool("print-config", false, "print the effective configuration, secrets masked, and exit")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}
	if *printConfig {
		cfg.Print(m.Stdout)
		return nil
	}
	m.useConfig(cfg)
	return daemon.Run(ctx, cfg, m.Logger, &m.level)
}
