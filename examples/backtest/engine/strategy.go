package engine

import (
	"errors"
	"fmt"
	"math"
)

// Params is one parameter set of the long/short moving-average crossover
// strategy: long while the fast average is above the slow one, short while
// it is below, flat until both are defined. It is the unit of work the
// sweep distributes, hence the JSON tags.
type Params struct {
	// Fast is the period of the fast moving average, in bars.
	Fast int `json:"fast"`
	// Slow is the period of the slow moving average, in bars; > Fast.
	Slow int `json:"slow"`
	// Kind selects the average: KindSMA ("sma") or KindEMA ("ema").
	Kind string `json:"kind"`
	// FeeBps is the commission per side in basis points of traded notional.
	FeeBps float64 `json:"fee_bps"`
	// SlippageBps is the expected adverse fill per side in basis points of
	// traded notional, charged exactly like the fee.
	SlippageBps float64 `json:"slippage_bps"`
}

// Validate reports why p cannot be backtested: non-positive periods, a
// fast period not below the slow one (the crossover would be meaningless),
// an unknown kind, negative or non-finite costs, or costs of 100% or more
// per side (which would leave nothing to invest).
func (p Params) Validate() error {
	if p.Fast <= 0 || p.Slow <= 0 {
		return fmt.Errorf("params: periods must be positive, got fast=%d slow=%d", p.Fast, p.Slow)
	}
	if p.Fast >= p.Slow {
		return fmt.Errorf("params: fast period %d must be below slow period %d", p.Fast, p.Slow)
	}
	if p.Kind != KindSMA && p.Kind != KindEMA {
		return fmt.Errorf("params: unknown kind %q, want %q or %q", p.Kind, KindSMA, KindEMA)
	}
	if !isFiniteNonNegative(p.FeeBps) {
		return fmt.Errorf("params: fee must be a finite non-negative number of bps, got %v", p.FeeBps)
	}
	if !isFiniteNonNegative(p.SlippageBps) {
		return fmt.Errorf("params: slippage must be a finite non-negative number of bps, got %v", p.SlippageBps)
	}
	if p.FeeBps+p.SlippageBps >= 10_000 {
		return fmt.Errorf("params: fee plus slippage must be below 10000 bps (100%%), got %v", p.FeeBps+p.SlippageBps)
	}
	return nil
}

// String renders p compactly for logs and headings, e.g. "ema 12/26".
// Costs are left out because a sweep shares them across all sets.
func (p Params) String() string {
	return fmt.Sprintf("%s %d/%d", p.Kind, p.Fast, p.Slow)
}

// isFiniteNonNegative reports whether x is a usable cost: finite and ≥ 0.
func isFiniteNonNegative(x float64) bool {
	return x >= 0 && !math.IsInf(x, 1)
}

// errTooFewBars is returned when a backtest has no bar to trade on.
var errTooFewBars = errors.New("backtest: need at least 2 bars")

// crossoverSignal returns the position the strategy wants after seeing the
// two averages: +1 (long) when fast > slow, -1 (short) when fast < slow.
// On an exact tie it keeps current, because a tie carries no information
// and switching on it would only pay costs.
func crossoverSignal(fast, slow float64, current int8) int8 {
	switch {
	case fast > slow:
		return 1
	case fast < slow:
		return -1
	default:
		return current
	}
}
