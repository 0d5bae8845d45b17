package gateway

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Price is what one model costs, in US dollars per million tokens of each
// kind, as the API bills them.
type Price struct {
	Input, Output, CacheRead, CacheWrite float64
}

// Prices are the host's price table: by model name, or by a model name's
// prefix ("claude-sonnet-4-5" prices "claude-sonnet-4-5-20250929").
type Prices map[string]Price

// DefaultPrices is the built-in table (PRICES' default), approximate,
// per million input / output / cache-read / cache-write (5-minute) tokens:
// Anthropic's list prices as known when it was written; claude-opus-5-5's
// from the cost Claude Code 2.1.332 itself reports for it (its cache
// write assumed 1.25 times input, as for the others). A name prices its
// dated and later point versions too (Lookup), so an unlisted
// claude-sonnet-5-5 is priced as claude-sonnet-5. A model none of them
// names costs 0 (logged once): its tokens still count against token
// budgets; while a dollar budget applies (the group's or the total) a call
// asking for it is refused, as the container chooses the model.
const DefaultPrices = "claude-opus-5-5=4/20/0.2/5,claude-opus-5=15/75/1.5/18.75,claude-sonnet-5=3/15/0.3/3.75," +
	"claude-opus-4-5=5/25/0.5/6.25,claude-opus-4=15/75/1.5/18.75," +
	"claude-sonnet-4=3/15/0.3/3.75,claude-3-7-sonnet=3/15/0.3/3.75," +
	"claude-haiku-4-5=1/5/0.1/1.25,claude-3-5-haiku=0.8/4/0.08/1"

// maxPrice bounds one price, dollars per million tokens: far above any
// model's, low enough that a typo of a few digits is caught.
const maxPrice = 10000

// ParsePrices reads a price table written
// MODEL=INPUT/OUTPUT/CACHE_READ/CACHE_WRITE,... in dollars per million
// tokens; "" is an empty table.
func ParsePrices(v string) (Prices, error) {
	p := Prices{}
	if strings.TrimSpace(v) == "" {
		return p, nil
	}
	for entry := range strings.SplitSeq(v, ",") {
		entry = strings.TrimSpace(entry)
		model, nums, ok := strings.Cut(entry, "=")
		model = strings.TrimSpace(model)
		if !ok || model == "" {
			return nil, fmt.Errorf("price %q: want MODEL=INPUT/OUTPUT/CACHE_READ/CACHE_WRITE (dollars per million tokens)", entry)
		}
		if err := validModelName(model); err != nil {
			return nil, fmt.Errorf("price %q: %w", entry, err)
		}
		if _, dup := p[model]; dup {
			return nil, fmt.Errorf("price %q: model %s priced twice", entry, model)
		}
		parts := strings.Split(nums, "/")
		if len(parts) != 4 {
			return nil, fmt.Errorf("price %q: want 4 prices INPUT/OUTPUT/CACHE_READ/CACHE_WRITE, got %d", entry, len(parts))
		}
		var f [4]float64
		for i, s := range parts {
			n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || !(n >= 0 && n <= maxPrice) {
				return nil, fmt.Errorf("price %q: %q is not a number of dollars within 0..%d", entry, s, maxPrice)
			}
			f[i] = n
		}
		p[model] = Price{Input: f[0], Output: f[1], CacheRead: f[2], CacheWrite: f[3]}
	}
	return p, nil
}

// validModelName accepts what a model name is made of.
func validModelName(m string) error {
	if len(m) > 100 || strings.ContainsFunc(m, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._:/-@", r))
	}) {
		return fmt.Errorf("model %q: want letters, digits, '.', '_', ':', '/', '@' or '-'", m)
	}
	return nil
}

// String writes the table as ParsePrices reads it, by model.
func (p Prices) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	var out []string
	for _, m := range slices.Sorted(maps.Keys(p)) {
		pr := p[m]
		out = append(out, m+"="+f(pr.Input)+"/"+f(pr.Output)+"/"+f(pr.CacheRead)+"/"+f(pr.CacheWrite))
	}
	return strings.Join(out, ",")
}

// Lookup finds the price of model: its own entry, else the longest entry
// that model begins with followed by '-' or '@' (a dated or pinned
// version of a priced model).
func (p Prices) Lookup(model string) (Price, bool) {
	if pr, ok := p[model]; ok {
		return pr, true
	}
	best := ""
	for m := range p {
		if len(m) > len(best) && len(model) > len(m) && strings.HasPrefix(model, m) && (model[len(m)] == '-' || model[len(m)] == '@') {
			best = m
		}
	}
	if best == "" {
		return Price{}, false
	}
	return p[best], true
}

// CostMicro is what t costs at pr, in millionths of a dollar: a price per
// million tokens is the price of one token in micro-dollars.
func (pr Price) CostMicro(t Tokens) int64 {
	c := float64(t.Input)*pr.Input + float64(t.Output)*pr.Output + float64(t.CacheRead)*pr.CacheRead + float64(t.CacheWrite)*pr.CacheWrite
	return int64(math.Round(c))
}
