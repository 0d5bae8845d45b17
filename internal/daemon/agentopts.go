package daemon

import (
	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
)

// AgentOptions are the agent runner's options as cfg sets them, with the
// data home's directories under home: cfg.Home for the daemon, a scratch
// one for the self-test. The gateway gets the upstream and no credential;
// the caller adds what it needs (the daemon: the credential, the tools,
// the store, the budgets).
func AgentOptions(cfg *config.Config, home string) agent.Options {
	at := *cfg // the same layout, under home
	at.Home = home
	return agent.Options{
		Image:         cfg.Image,
		BrowserImage:  cfg.BrowserImage,
		AgentBinary:   cfg.AgentBinary,
		GroupsDir:     at.GroupsDir(),
		SessionsDir:   at.SessionsDir(),
		IPCDir:        at.IPCDir(),
		LogsDir:       at.LogsDir(),
		SpoolDir:      at.SpoolDir(),
		SkillsDir:     at.SkillsDir(),
		Model:         cfg.Model,
		Timeout:       cfg.ContainerTimeout,
		IdleTimeout:   cfg.IdleTimeout,
		MemoryMB:      cfg.ContainerMemoryMB,
		CPUs:          cfg.ContainerCPUs,
		PidsLimit:     cfg.ContainerPidsLimit,
		DefaultEgress: egress.Policy{Mode: egress.DefaultMode}, // a group that does not choose
		AllowlistPath: cfg.AllowlistPath(),
		Gateway:       gateway.Options{Upstream: cfg.UpstreamURL, Prices: cfg.Prices},
	}
}
