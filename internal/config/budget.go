package config

import (
	"fmt"
	"math"
	"strconv"

	"github.com/nanoclaw/nanoclaw/internal/gateway"
)

// Limits of the total budget's settings: far above any real budget, low
// enough that a slipped digit is caught.
const (
	maxBudgetTokens = 1e15
	maxBudgetUSD    = 1e9
)

// pricesSetting is the host's price table, which dollar budgets count by.
func pricesSetting() setting {
	return setting{Name: "PRICES", Default: gateway.DefaultPrices,
		Help: "model prices for dollar budgets: MODEL=INPUT/OUTPUT/CACHE_READ/CACHE_WRITE dollars per million tokens, comma-separated; a name also prices its dated versions (MODEL-20250929); the default is approximate list prices of late 2025; a model not listed costs 0",
		apply: func(c *Config, v string) (err error) {
			c.Prices, err = gateway.ParsePrices(v)
			return err
		},
		show: func(c *Config) string { return c.Prices.String() }}
}

// tokenBudgetSetting is a whole number of tokens, 0 for no cap.
func tokenBudgetSetting(name, help string, field func(*gateway.Budget) *int64) setting {
	return setting{Name: name, Default: "0", Help: help,
		apply: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > maxBudgetTokens {
				return fmt.Errorf("%q is not a whole number of tokens within 0..%d (0: no cap)", v, int64(maxBudgetTokens))
			}
			*field(&c.Budget) = n
			return nil
		},
		show: func(c *Config) string { return strconv.FormatInt(*field(&c.Budget), 10) }}
}

// usdBudgetSetting is an amount of dollars, 0 for no cap.
func usdBudgetSetting(name, help string, field func(*gateway.Budget) *float64) setting {
	return setting{Name: name, Default: "0", Help: help,
		apply: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			// Written so that NaN fails too.
			if err != nil || !(f >= 0 && f <= maxBudgetUSD) || math.IsInf(f, 0) {
				return fmt.Errorf("%q is not an amount of dollars within 0..%d (0: no cap)", v, int64(maxBudgetUSD))
			}
			*field(&c.Budget) = f
			return nil
		},
		show: func(c *Config) string { return strconv.FormatFloat(*field(&c.Budget), 'f', -1, 64) }}
}
