package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

func TestParsePrices(t *testing.T) {
	p, err := ParsePrices(" claude-a=3/15/0.3/3.75, claude-a-big=15/75/1.5/18.75 ")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != "claude-a=3/15/0.3/3.75,claude-a-big=15/75/1.5/18.75" {
		t.Errorf("String() = %q", got)
	}
	for model, want := range map[string]float64{
		"claude-a": 3, "claude-a-20250929": 3, "claude-a@20250929": 3,
		"claude-a-big": 15, "claude-a-big-1": 15, // the longest prefix wins
		"claude-ab": -1, "claude": -1, "": -1,
	} {
		pr, ok := p.Lookup(model)
		if !ok && want != -1 || ok && pr.Input != want {
			t.Errorf("Lookup(%q) = %+v, %v; want input %v", model, pr, ok, want)
		}
	}
	// A price per million tokens is micro-dollars per token.
	if c := p["claude-a"].CostMicro(Tokens{Input: 1000, Output: 100, CacheRead: 10000, CacheWrite: 1000}); c != 3000+1500+3000+3750 {
		t.Errorf("CostMicro = %d", c)
	}
	def, err := ParsePrices(DefaultPrices)
	if err != nil || len(def) < 5 {
		t.Errorf("DefaultPrices: %v, %v", def, err)
	}
	for model, want := range map[string]float64{"claude-opus-5-5": 4, "claude-opus-5-5-20260101": 4, "claude-opus-5": 15, "claude-sonnet-5-5": 3,
		"claude-opus-4-5-20251101": 5, "claude-opus-4-1-20250805": 15, "claude-haiku-4-5-20251001": 1} {
		if p, ok := def.Lookup(model); !ok || p.Input != want {
			t.Errorf("default price of %s: %+v, %v; want input %v", model, p, ok, want)
		}
	}
	if e, err := ParsePrices(""); err != nil || len(e) != 0 {
		t.Errorf(`ParsePrices("") = %v, %v`, e, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"claude-a", `price "claude-a": want MODEL=INPUT/OUTPUT/CACHE_READ/CACHE_WRITE`},
		{"=1/2/3/4", `price "=1/2/3/4": want MODEL=`},
		{"claude-a=1/2/3", `want 4 prices INPUT/OUTPUT/CACHE_READ/CACHE_WRITE, got 3`},
		{"claude-a=1/2/3/x", `"x" is not a number of dollars within 0..10000`},
		{"claude-a=1/-2/3/4", `"-2" is not a number`},
		{"claude-a=1/NaN/3/4", `"NaN" is not a number`},
		{"claude-a=1/2/3/1e9", `"1e9" is not a number`},
		{"claude a=1/2/3/4", `model "claude a": want letters`},
		{"claude-a=1/2/3/4,claude-a=1/2/3/4", "model claude-a priced twice"},
		{"claude-a=1/2/3/4,", `price "": want MODEL=`},
	} {
		if _, err := ParsePrices(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePrices(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// memBudgets is a BudgetSource: budgets set by the test, spend summed from
// what the gateway recorded.
type memBudgets struct {
	usage *testUsage
	mu    sync.Mutex
	group map[string]Budget
	total Budget
	err   error
}

func (m *memBudgets) Budgets(_ context.Context, folder string) (Budget, Budget, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.group[folder], m.total, m.err
}

func (m *memBudgets) Spent(_ context.Context, folder, day string) (onDay, inMonth Spend, err error) {
	m.usage.mu.Lock()
	defer m.usage.mu.Unlock()
	for _, r := range m.usage.records {
		if folder != "" && r.Folder != folder || r.Day[:7] != day[:7] {
			continue
		}
		s := Spend{1, r.In, r.Out, r.CacheRead, r.CacheWrite, r.Cost}
		inMonth = inMonth.add(s)
		if r.Day == day {
			onDay = onDay.add(s)
		}
	}
	return onDay, inMonth, nil
}

// hitLog records OnBudget calls.
type hitLog struct {
	mu   sync.Mutex
	hits []string // folder + " " + message
}

func (h *hitLog) add(folder string, hit BudgetHit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hits = append(h.hits, folder+" "+hit.Message(folder))
}

func (h *hitLog) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.hits...)
}

// A budget of a few hundred tokens lets the call that crosses it finish,
// refuses the next with the documented error, tells OnBudget once, and
// leaves another group working.
func TestBudgetRefusesNextCall(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	// The database is slow: the first call's record is not stored before
	// the next call is checked, yet it counts.
	usage := &testUsage{block: make(chan struct{})}
	unblock := sync.OnceFunc(func() { close(usage.block) })
	src := &memBudgets{usage: usage, group: map[string]Budget{"family": {DayTokens: 300}}}
	hits := &hitLog{}
	prices, _ := ParsePrices("claude-test=3/15/0.3/3.75")
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey, Usage: usage, Prices: prices,
		Budget: NewBudgeter(BudgetOptions{Source: src, OnBudget: hits.add})})
	e.usage = usage
	t.Cleanup(unblock) // before the gateway's Close, which waits for records
	family := e.open(t, "family", false, egress.Policy{})
	work := e.open(t, "work", false, egress.Policy{})
	fake.Script(fakeapi.Text("first").WithCache(400, 0), fakeapi.Text("work 1"), fakeapi.Text("work 2"))

	if s, body, _ := do(t, family, http.MethodPost, "/v1/messages", streamBody); s != 200 || !strings.Contains(body, "message_stop") {
		t.Fatalf("family's first call: %d %s", s, body)
	}
	// No wait for the record to be stored: the next call must see it.
	s, body, _ := do(t, family, http.MethodPost, "/v1/messages", streamBody)
	var apiErr struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal([]byte(body), &apiErr); err != nil {
		t.Fatalf("refusal %q: %v", body, err)
	}
	u := fake.Requests()[0].Usage
	used := u.InputTokens + u.OutputTokens + 400
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	want := "nanoclaw: group family's daily budget of 300 tokens is reached (" + strconv.Itoa(used) + " tokens used); it resets at " + tomorrow + " 00:00 UTC"
	if s != http.StatusPaymentRequired || apiErr.Type != "error" || apiErr.Error.Type != "billing_error" || apiErr.Error.Message != want {
		t.Fatalf("family's second call: %d %s\nwant 402 billing_error %q", s, body, want)
	}
	if n := len(fake.MainRequests()); n != 1 {
		t.Fatalf("the refused call reached the upstream: %d requests", n)
	}
	// Token counts are free: not refused.
	if s, _, _ := do(t, family, http.MethodPost, "/v1/messages/count_tokens", jsonBody); s != 200 {
		t.Errorf("count_tokens over budget: %d", s)
	}
	for i := range 2 {
		if s, body, _ := do(t, work, http.MethodPost, "/v1/messages", jsonBody); s != 200 {
			t.Fatalf("work's call %d: %d %s", i, s, body)
		}
	}
	do(t, family, http.MethodPost, "/v1/messages", streamBody) // refused again
	unblock()
	e.gw.Close()
	if got := hits.get(); len(got) != 1 || got[0] != "family "+want {
		t.Errorf("OnBudget heard %q, want once %q", got, want)
	}
	if st := e.gw.Stats()["family"]; st.APIRefused != 2 || st.APIRequests != 2 {
		t.Errorf("family's stats %+v: want 2 refused, 2 forwarded (one a token count)", st)
	}
	for _, r := range usage.wait(t, 3) {
		if r.Folder == "family" && r.Cost != int64(math.Round(float64(u.InputTokens)*3+float64(u.OutputTokens)*15+400*0.3)) {
			t.Errorf("cost of %+v", r)
		}
	}
	// The scheduler's question has the same answer.
	hit, over, err := e.gw.opt.Budget.OverBudget(context.Background(), "family")
	if err != nil || !over || hit.Message("family") != want {
		t.Errorf("OverBudget = %+v, %v, %v", hit, over, err)
	}
	if _, over, err := e.gw.opt.Budget.OverBudget(context.Background(), "work"); over || err != nil {
		t.Errorf("work over budget: %v, %v", over, err)
	}
}

// A budget that cannot be checked refuses the call (fail closed) with a
// 5xx, not a budget message.
func TestBudgetCheckFails(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	usage := &testUsage{}
	src := &memBudgets{usage: usage, err: errors.New("database is locked")}
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey, Usage: usage,
		Budget: NewBudgeter(BudgetOptions{Source: src})})
	ep := e.open(t, "family", false, egress.Policy{})
	if s, body, _ := do(t, ep, http.MethodPost, "/v1/messages", jsonBody); s != http.StatusInternalServerError || !strings.Contains(body, "could not be checked") {
		t.Fatalf("%d %s", s, body)
	}
	if n := len(fake.MainRequests()); n != 0 {
		t.Fatalf("%d requests reached the upstream", n)
	}
}

// fixedSource answers fixed spend for a group and for all groups.
type fixedSource struct {
	group, total         Budget
	groupDay, groupMonth Spend
	allDay, allMonth     Spend
	days                 []string
}

func (f *fixedSource) Budgets(context.Context, string) (Budget, Budget, error) {
	return f.group, f.total, nil
}

func (f *fixedSource) Spent(_ context.Context, folder, day string) (Spend, Spend, error) {
	f.days = append(f.days, folder+"@"+day)
	if folder == "" {
		return f.allDay, f.allMonth, nil
	}
	return f.groupDay, f.groupMonth, nil
}

func TestBudgeterPeriods(t *testing.T) {
	now := time.Date(2026, 1, 16, 3, 30, 0, 0, time.FixedZone("east", 5*3600)) // 22:30 UTC on the 15th
	src := &fixedSource{
		group:    Budget{DayTokens: 1000, MonthUSD: 2},
		total:    Budget{DayUSD: 5},
		groupDay: Spend{InputTokens: 999}, groupMonth: Spend{CostMicro: 1_999_999},
		allDay: Spend{CostMicro: 4_000_000},
	}
	hits := &hitLog{}
	b := NewBudgeter(BudgetOptions{Source: src, OnBudget: hits.add, Now: func() time.Time { return now }})
	ctx := context.Background()
	if _, over, err := b.OverBudget(ctx, "family"); over || err != nil {
		t.Fatalf("under every cap: over %v, %v", over, err)
	}
	if src.days[0] != "family@2026-01-15" || src.days[1] != "@2026-01-15" {
		t.Errorf("days asked: %v (want UTC's)", src.days)
	}
	// A response being stored counts already.
	release := b.hold("family", "2026-01-15", Spend{OutputTokens: 1})
	hit, over, _ := b.OverBudget(ctx, "family")
	if !over || hit.Month || hit.USD || hit.Total || hit.Limit != 1000 || hit.Spent != 1000 || !hit.Resets.Equal(time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("with a pending response: %+v, %v", hit, over)
	}
	release()
	if _, over, _ := b.OverBudget(ctx, "family"); over {
		t.Fatal("the released response still counts")
	}
	// Several reached: the one that resets last is reported; each is told
	// once, the total's also to the owner (folder "").
	src.groupDay.InputTokens, src.groupMonth.CostMicro, src.allDay.CostMicro = 1000, 2_000_000, 5_000_000
	hit, over, _ = b.OverBudget(ctx, "family")
	if !over || !hit.Month || !hit.USD || hit.Total {
		t.Fatalf("reported %+v, want the monthly dollar budget", hit)
	}
	if got, want := hit.Message("family"), "nanoclaw: group family's monthly budget of $2.00 is reached ($2.00 used); it resets at 2026-02-01 00:00 UTC"; got != want {
		t.Errorf("message %q\nwant %q", got, want)
	}
	b.OverBudget(ctx, "family")
	b.OverBudget(ctx, "work") // the same source: work's own hits are its own, the total's owner line is not repeated
	want := []string{
		"family nanoclaw: group family's daily budget of 1000 tokens is reached (1000 tokens used); it resets at 2026-01-16 00:00 UTC",
		"family nanoclaw: group family's monthly budget of $2.00 is reached ($2.00 used); it resets at 2026-02-01 00:00 UTC",
		"family nanoclaw: the daily budget of all groups together of $5.00 is reached ($5.00 used); it resets at 2026-01-16 00:00 UTC",
		" nanoclaw: the daily budget of all groups together of $5.00 is reached ($5.00 used); it resets at 2026-01-16 00:00 UTC",
		"work nanoclaw: group work's daily budget of 1000 tokens is reached (1000 tokens used); it resets at 2026-01-16 00:00 UTC",
		"work nanoclaw: group work's monthly budget of $2.00 is reached ($2.00 used); it resets at 2026-02-01 00:00 UTC",
		"work nanoclaw: the daily budget of all groups together of $5.00 is reached ($5.00 used); it resets at 2026-01-16 00:00 UTC",
	}
	if got := hits.get(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("told:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A new day: the daily budgets are told again, the monthly not.
	now = now.Add(2 * time.Hour)
	b.OverBudget(ctx, "family")
	if got := hits.get()[len(want):]; len(got) != 3 || strings.Contains(strings.Join(got, ""), "monthly") {
		t.Errorf("the next day told %q", got)
	}
	// No budget at all reads no spend.
	src.group, src.total, src.days = Budget{}, Budget{}, nil
	if _, over, err := b.OverBudget(ctx, "family"); over || err != nil || len(src.days) != 0 {
		t.Errorf("without budgets: %v, %v, spend read %v", over, err, src.days)
	}
}

// A model the price table lacks costs 0, logged once.
func TestUnpricedModel(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey, Prices: Prices{"claude-other": {Input: 1}}})
	ep := e.open(t, "family", false, egress.Policy{})
	for range 3 {
		if s, body, _ := do(t, ep, http.MethodPost, "/v1/messages", jsonBody); s != 200 {
			t.Fatalf("%d %s", s, body)
		}
	}
	e.gw.Close()
	for _, r := range e.usage.wait(t, 3) {
		if r.Cost != 0 || r.In == 0 {
			t.Errorf("record %+v: want tokens at cost 0", r)
		}
	}
	if l := e.log.lines(t, "gateway: model not in the price table (PRICES); its calls cost 0 (refused while a dollar budget applies)"); len(l) != 1 || l[0]["model"] != "claude-test" {
		t.Errorf("log lines %v, want one naming claude-test", l)
	}
}

// markingSource also marks hits durably, as the store does.
type markingSource struct {
	fixedSource
	marks map[string]bool
	err   error
}

func (m *markingSource) MarkBudgetHit(_ context.Context, folder, what, period string) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	k := folder + "/" + what + "/" + period
	first := !m.marks[k]
	m.marks[k] = true
	return first, nil
}

// A hit marked by an earlier process is not told again; one that cannot
// be marked is told rather than lost.
func TestBudgeterMarksHits(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	src := &markingSource{fixedSource: fixedSource{group: Budget{DayTokens: 10}, total: Budget{MonthTokens: 10},
		groupDay: Spend{InputTokens: 10}, allMonth: Spend{OutputTokens: 10}}, marks: map[string]bool{}}
	ctx := context.Background()
	hits := &hitLog{}
	NewBudgeter(BudgetOptions{Source: src, OnBudget: hits.add, Now: func() time.Time { return now }}).OverBudget(ctx, "family")
	if len(hits.get()) != 3 || len(src.marks) != 3 || !src.marks["family/day-tokens/2026-03-10"] ||
		!src.marks["family/total-month-tokens/2026-03"] || !src.marks["/total-month-tokens/2026-03"] {
		t.Fatalf("told %q, marked %v", hits.get(), src.marks)
	}
	// A restart: a new Budgeter, the same marks.
	again := &hitLog{}
	NewBudgeter(BudgetOptions{Source: src, OnBudget: again.add, Now: func() time.Time { return now }}).OverBudget(ctx, "family")
	if got := again.get(); len(got) != 0 {
		t.Errorf("told again after a restart: %q", got)
	}
	src.err = errors.New("disk full")
	NewBudgeter(BudgetOptions{Source: src, OnBudget: again.add, Now: func() time.Time { return now }}).OverBudget(ctx, "family")
	if got := again.get(); len(got) != 3 {
		t.Errorf("with marks failing, told %q; want all 3", got)
	}
}
