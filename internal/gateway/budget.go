package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// Budget caps model usage per day and per month (UTC), in tokens (input,
// output and cache together) and in dollars (by the price table); 0 means
// no cap. Its fields are store.Budget's, so the daemon converts one to the
// other.
type Budget struct {
	DayTokens   int64
	MonthTokens int64
	DayUSD      float64
	MonthUSD    float64
}

// IsZero reports whether b caps nothing.
func (b Budget) IsZero() bool { return b == Budget{} }

// Spend is usage summed over a day or a month; its fields are
// store.Spend's.
type Spend struct {
	Requests         int64
	InputTokens      int64
	OutputTokens     int64
	CacheReadTokens  int64
	CacheWriteTokens int64
	CostMicro        int64 // millionths of a dollar
}

// Tokens is every token a budget counts.
func (s Spend) Tokens() int64 {
	return s.InputTokens + s.OutputTokens + s.CacheReadTokens + s.CacheWriteTokens
}

func (s Spend) add(o Spend) Spend {
	return Spend{s.Requests + o.Requests, s.InputTokens + o.InputTokens, s.OutputTokens + o.OutputTokens,
		s.CacheReadTokens + o.CacheReadTokens, s.CacheWriteTokens + o.CacheWriteTokens, s.CostMicro + o.CostMicro}
}

// BudgetSource is the host's side of budgets: the groups' settings and
// the store's counts. The daemon provides it.
type BudgetSource interface {
	// Budgets returns the budget of the group in folder and the host's
	// total budget of all groups together.
	Budgets(ctx context.Context, folder string) (group, total Budget, err error)
	// Spent returns what the group in folder ("" = all groups together)
	// spent on day (YYYY-MM-DD, UTC) and in day's month.
	Spent(ctx context.Context, folder, day string) (onDay, inMonth Spend, err error)
}

// BudgetMarker is what a BudgetSource may also do: note a budget found
// reached durably, so that the group and the owner are told once a period
// across restarts too (*store.Store's MarkBudgetHit, through the daemon).
type BudgetMarker interface {
	// MarkBudgetHit reports whether the budget what ("day-tokens",
	// "total-month-usd", ...) of folder ("" for the owner's notice of a
	// total) is marked reached in period (YYYY-MM-DD or YYYY-MM) for the
	// first time.
	MarkBudgetHit(ctx context.Context, folder, what, period string) (first bool, err error)
}

// BudgetHit is a budget found reached.
type BudgetHit struct {
	Total  bool      // the host's budget of all groups together, not the group's own
	Month  bool      // the monthly budget; else the daily one
	USD    bool      // in dollars; else in tokens
	Limit  float64   // the cap: tokens, or dollars
	Spent  float64   // what was spent when it was found reached, in the same unit
	Resets time.Time // when the period ends, UTC
}

// Message is the one line the agent (and the owner) reads: which budget of
// the group in folder, its cap, what was spent and when it resets.
func (h BudgetHit) Message(folder string) string {
	period := "daily"
	if h.Month {
		period = "monthly"
	}
	amount := func(v float64) string {
		if h.USD {
			return "$" + strconv.FormatFloat(v, 'f', 2, 64)
		}
		return strconv.FormatFloat(v, 'f', 0, 64) + " tokens"
	}
	whose := fmt.Sprintf("group %s's %s budget", folder, period)
	if h.Total {
		whose = fmt.Sprintf("the %s budget of all groups together", period)
	}
	return fmt.Sprintf("nanoclaw: %s of %s is reached (%s used); it resets at %s",
		whose, amount(h.Limit), amount(h.Spent), h.Resets.UTC().Format("2006-01-02 15:04 UTC"))
}

// Budgeter decides whether a group may make another model call: its own
// budget and the host's total, against what was counted (the store's
// rows plus responses still being stored). It tells OnBudget of each
// budget the first time it is found reached in its period. The gateway's
// API proxy asks it before each Messages call; the scheduler may ask
// OverBudget before starting a task.
type Budgeter struct {
	src     BudgetSource
	onHit   func(folder string, hit BudgetHit)
	log     *slog.Logger
	now     func() time.Time
	mu      sync.Mutex
	pending map[pendingKey]Spend // counted, not yet stored
	// reserved are the estimates of calls in flight (reserve): counted
	// against the calls that start beside them, never reported as spent.
	reserved map[pendingKey]Spend
	told     map[toldKey]bool // hits OnBudget heard of, this day's and month's
}

type pendingKey struct{ folder, day string }

type toldKey struct {
	folder     string // "" for the total, told once
	total      bool
	month, usd bool
	period     string // the day or month it was reached in
}

// BudgetOptions configure a Budgeter.
type BudgetOptions struct {
	// Source gives budgets and spend; required.
	Source BudgetSource
	// OnBudget hears once per period of each budget found reached (when
	// a response's usage is stored, or a call is refused): with the
	// group's folder for its own budget; for the total budget once with
	// folder "" (for the owner) and once with the folder of each group
	// found over it (for that group's chat). It must return fast.
	OnBudget func(folder string, hit BudgetHit)
	// Logger gets a line per hit; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewBudgeter makes a Budgeter.
func NewBudgeter(opt BudgetOptions) *Budgeter {
	b := &Budgeter{src: opt.Source, onHit: opt.OnBudget, log: opt.Logger, now: opt.Now,
		pending: map[pendingKey]Spend{}, reserved: map[pendingKey]Spend{}, told: map[toldKey]bool{}}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.onHit == nil {
		b.onHit = func(string, BudgetHit) {}
	}
	return b
}

// OverBudget reports whether the group in folder is over its budget or
// the total's, and which budget; the one that resets last when several
// are. An error (the settings or the counts could not be read) is no
// answer: the proxy refuses the call rather than spend unchecked.
func (b *Budgeter) OverBudget(ctx context.Context, folder string) (BudgetHit, bool, error) {
	hits, err := b.hits(ctx, folder, nil)
	if err != nil || len(hits) == 0 {
		return BudgetHit{}, false, err
	}
	b.tell(ctx, folder, hits)
	worst := hits[0]
	for _, h := range hits[1:] {
		if h.Resets.After(worst.Resets) {
			worst = h
		}
	}
	return worst, true, nil
}

// hits are the budgets reached by the group in folder now. With r, the
// reservations of calls in flight count too, and r itself is added to
// them (under the same lock as the check) when nothing is reached.
func (b *Budgeter) hits(ctx context.Context, folder string, r *reservation) ([]BudgetHit, error) {
	group, total, err := b.src.Budgets(ctx, folder)
	if err != nil {
		return nil, fmt.Errorf("budget of group %q: %w", folder, err)
	}
	if group.IsZero() && total.IsZero() {
		return nil, nil
	}
	if r != nil && !r.priced && (group.DayUSD > 0 || group.MonthUSD > 0 || total.DayUSD > 0 || total.MonthUSD > 0) {
		return nil, errUnpriced
	}
	now := b.now().UTC()
	day := now.Format("2006-01-02")
	dayEnd := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	monthEnd := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	type counted struct{ onDay, inMonth Spend }
	var stored [2]counted
	caps := []struct {
		b      Budget
		folder string
		total  bool
	}{{group, folder, false}, {total, "", true}}
	for i, c := range caps {
		if c.b.IsZero() {
			continue
		}
		onDay, inMonth, err := b.src.Spent(ctx, c.folder, day)
		if err != nil {
			return nil, fmt.Errorf("spend of group %q: %w", c.folder, err)
		}
		stored[i] = counted{onDay, inMonth}
	}
	// The store was read above, outside the lock; pending and reserved
	// are read, and r added, under it: of two calls starting at once the
	// second sees the first's reservation.
	b.mu.Lock()
	defer b.mu.Unlock()
	var hits []BudgetHit
	for i, c := range caps {
		if c.b.IsZero() {
			continue
		}
		onDay, inMonth := stored[i].onDay, stored[i].inMonth
		d, m := sumFor(b.pending, c.folder, day)
		onDay, inMonth = onDay.add(d), inMonth.add(m)
		if r != nil {
			d, m := sumFor(b.reserved, c.folder, day)
			onDay, inMonth = onDay.add(d), inMonth.add(m)
		}
		for _, k := range []struct {
			month, usd bool
			limit      float64
			s          Spend
			resets     time.Time
		}{
			{false, false, float64(c.b.DayTokens), onDay, dayEnd},
			{false, true, c.b.DayUSD, onDay, dayEnd},
			{true, false, float64(c.b.MonthTokens), inMonth, monthEnd},
			{true, true, c.b.MonthUSD, inMonth, monthEnd},
		} {
			spent := float64(k.s.Tokens())
			if k.usd {
				spent = float64(k.s.CostMicro) / 1e6
			}
			// A cap of 0 is none; a NaN or infinite one (the store and
			// config refuse both) caps nothing rather than everything.
			if k.limit > 0 && !math.IsInf(k.limit, 0) && spent >= k.limit {
				hits = append(hits, BudgetHit{Total: c.total, Month: k.month, USD: k.usd, Limit: k.limit, Spent: spent, Resets: k.resets})
			}
		}
	}
	if r != nil && len(hits) == 0 {
		r.key = pendingKey{folder, day}
		b.reserved[r.key] = b.reserved[r.key].add(r.est)
		r.held = true
	}
	return hits, nil
}

// sumFor sums the spends in m of folder ("": every group's) on day and in
// its month.
func sumFor(m map[pendingKey]Spend, folder, day string) (onDay, inMonth Spend) {
	for k, s := range m {
		if folder != "" && k.folder != folder || k.day[:7] != day[:7] {
			continue
		}
		inMonth = inMonth.add(s)
		if k.day == day {
			onDay = onDay.add(s)
		}
	}
	return onDay, inMonth
}

// hold counts s for folder on day until release is called: from when a
// response ends until its row is stored, a check sees it already.
// A response whose row could not be stored is never released: it counts
// until its month is over, when the next hold forgets it.
func (b *Budgeter) hold(folder, day string, s Spend) (release func()) {
	k := pendingKey{folder, day}
	b.mu.Lock()
	for old := range b.pending {
		if old.day[:7] != day[:7] {
			delete(b.pending, old)
		}
	}
	b.pending[k] = b.pending[k].add(s)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		subtract(b.pending, k, s)
	}
}

// subtract takes s from m[k], deleting what is left at zero.
func subtract(m map[pendingKey]Spend, k pendingKey, s Spend) {
	neg := Spend{-s.Requests, -s.InputTokens, -s.OutputTokens, -s.CacheReadTokens, -s.CacheWriteTokens, -s.CostMicro}
	if left := m[k].add(neg); left == (Spend{}) {
		delete(m, k)
	} else {
		m[k] = left
	}
}

// errUnpriced refuses a call whose model the price table lacks while a
// dollar budget applies: it would cost $0 against it, and the container
// chooses the model.
var errUnpriced = errors.New("model not in the price table")

// reservation is the estimate of one call in flight.
type reservation struct {
	b      *Budgeter
	est    Spend
	priced bool
	key    pendingKey
	held   bool
	once   sync.Once
}

// Reserve checks whether the group in folder may start a Messages call
// estimated at est (priced: its model is in the price table) and, if so,
// reserves est until release. The rule: a call is refused when what was
// counted (stored, or being stored) plus the reservations of the OTHER
// calls in flight reaches a cap — its own estimate is not added, so one
// call at a time may always start while the group is under its caps (a
// first call asking max_tokens 32000 of a 300-token budget runs, and
// finishes, as the issue wants), while calls started beside it each
// count the others' estimates. over with a zero hit means only the
// reservations reached a cap (try again when they end); a hit with
// Spent reached means the counted spend did. err is errUnpriced when a
// dollar budget applies and priced is false, or the source's failure.
func (b *Budgeter) Reserve(ctx context.Context, folder string, est Spend, priced bool) (release func(), hit BudgetHit, over bool, err error) {
	r := &reservation{b: b, est: est, priced: priced}
	hits, err := b.hits(ctx, folder, r)
	if err != nil {
		return nil, BudgetHit{}, false, err
	}
	if len(hits) > 0 {
		// Reached by the counted spend alone: the group and the owner
		// hear of it, as when OverBudget finds it.
		if h, counted, err := b.OverBudget(ctx, folder); err != nil {
			return nil, BudgetHit{}, false, err
		} else if counted {
			return nil, h, true, nil
		}
		return nil, BudgetHit{}, true, nil
	}
	return r.release, BudgetHit{}, false, nil
}

// release takes the reservation back, once.
func (r *reservation) release() {
	r.once.Do(func() {
		if !r.held {
			return
		}
		r.b.mu.Lock()
		defer r.b.mu.Unlock()
		subtract(r.b.reserved, r.key, r.est)
	})
}

// What names the budget for BudgetMarker: "day-tokens", "month-usd",
// "total-day-usd" and so on.
func (h BudgetHit) What() string {
	w := "day"
	if h.Month {
		w = "month"
	}
	if h.USD {
		w += "-usd"
	} else {
		w += "-tokens"
	}
	if h.Total {
		w = "total-" + w
	}
	return w
}

// tell calls OnBudget for each hit not told before in its period: not in
// this process's memory, and, if the source marks hits, not by an earlier
// process either.
func (b *Budgeter) tell(ctx context.Context, folder string, hits []BudgetHit) {
	now := b.now().UTC()
	day, month := now.Format("2006-01-02"), now.Format("2006-01")
	var calls []func()
	b.mu.Lock()
	// Hits of past periods are forgotten: the map holds today's and this
	// month's alone.
	for k := range b.told {
		if k.period != day && k.period != month {
			delete(b.told, k)
		}
	}
	for _, h := range hits {
		period := day
		if h.Month {
			period = month
		}
		keys := []toldKey{{folder: folder, total: h.Total, month: h.Month, usd: h.USD, period: period}}
		if h.Total {
			keys = append(keys, toldKey{folder: "", total: true, month: h.Month, usd: h.USD, period: period})
		}
		for _, k := range keys {
			if b.told[k] {
				continue
			}
			b.told[k] = true
			calls = append(calls, func() {
				if m, ok := b.src.(BudgetMarker); ok {
					first, err := m.MarkBudgetHit(ctx, k.folder, h.What(), k.period)
					if err != nil { // told twice rather than never
						b.log.Error("gateway: mark budget reached", "group", k.folder, "budget", h.What(), "err", err)
					} else if !first {
						return
					}
				}
				b.log.Warn("budget reached", "group", k.folder, "budget", h.What(), "limit", h.Limit, "spent", h.Spent, "resets", h.Resets)
				b.onHit(k.folder, h)
			})
		}
	}
	b.mu.Unlock()
	for _, c := range calls {
		c()
	}
}
