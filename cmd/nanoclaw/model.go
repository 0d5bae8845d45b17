package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// checkModel refuses a model the upstream does not offer to the host's
// credential, so a typo is an error at groups set rather than every run of
// the group failing later. When the list cannot be read (offline, no
// credential yet) a name that looks like a Claude model is accepted, and
// the owner is told it was not checked. So is an empty list.
func (m *Main) checkModel(ctx context.Context, cfg *config.Config, name string) error {
	ids, err := gateway.ListModels(ctx, cfg.UpstreamURL, cfg.APIKey.Reveal(), cfg.OAuthToken.Reveal())
	if err == nil && len(ids) == 0 {
		// Some proxies in front of the API answer with an empty list: that
		// is no list to check against, not a refusal of every model.
		err = fmt.Errorf("%s lists no models", cfg.UpstreamURL.Redacted())
	}
	if err != nil {
		if !strings.HasPrefix(name, "claude-") {
			return fmt.Errorf("model %q: not checked (%v), and it does not look like a Claude model (claude-...)", name, err)
		}
		fmt.Fprintf(m.Stderr, "model %q not checked with the upstream: %v\n", name, err)
		return nil
	}
	if !slices.Contains(ids, name) {
		return fmt.Errorf("model %q: unknown to %s, which offers: %s", name, cfg.UpstreamURL.Redacted(), strings.Join(ids, ", "))
	}
	return nil
}

// describeBudget is a group's budget as groups show prints it.
func describeBudget(b ipc.Budget) string {
	var parts []string
	if b.DayTokens > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens a day", b.DayTokens))
	}
	if b.MonthTokens > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens a month", b.MonthTokens))
	}
	if b.DayUSD > 0 {
		parts = append(parts, fmt.Sprintf("$%.2f a day", b.DayUSD))
	}
	if b.MonthUSD > 0 {
		parts = append(parts, fmt.Sprintf("$%.2f a month", b.MonthUSD))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
