package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// budgetSource is what the gateway's Budgeter reads: each group's budget
// from its container config, the total from the host's config, spend from
// the store. It is read per call, so `groups set` takes effect on the
// group's next model call.
type budgetSource struct {
	st    *store.Store
	total gateway.Budget
}

func (b budgetSource) Budgets(ctx context.Context, folder string) (group, total gateway.Budget, err error) {
	g, found, err := b.st.GetGroup(ctx, folder)
	if err != nil {
		return gateway.Budget{}, gateway.Budget{}, err
	}
	if found { // a group removed while its agent runs has no budget of its own; the total still holds
		group = gateway.Budget(g.Config.Budget)
	}
	return group, b.total, nil
}

func (b budgetSource) Spent(ctx context.Context, folder, day string) (onDay, inMonth gateway.Spend, err error) {
	d, m, err := b.st.Spent(ctx, folder, day)
	return gateway.Spend(d), gateway.Spend(m), err
}

// MarkBudgetHit notes a budget reached in the store, so that a restart
// does not tell the group and the owner again in the same period.
func (b budgetSource) MarkBudgetHit(ctx context.Context, folder, what, period string) (bool, error) {
	return b.st.MarkBudgetHit(ctx, folder, what, period, time.Now())
}

// NewBudgeter makes the Budgeter the gateway enforces budgets with and the
// scheduler may ask (OverBudget); onBudget hears of each budget reached,
// once a period (see gateway.BudgetOptions.OnBudget).
func NewBudgeter(cfg *config.Config, st *store.Store, log *slog.Logger, onBudget func(folder string, hit gateway.BudgetHit)) *gateway.Budgeter {
	return gateway.NewBudgeter(gateway.BudgetOptions{Source: budgetSource{st, cfg.Budget}, OnBudget: onBudget, Logger: log})
}
