package main

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/banfleet/banfleet/examples/backtest/engine"
)

// Bounds of the grid flags. They keep a typo (-fast 1:1000000) from
// expanding into more jobs than a sweep can hold in memory.
const (
	maxPeriod     = 100_000 // bars; longer averages need more bars than -data takes
	maxPeriodList = 10_000  // values of one -fast or -slow
	maxGridSets   = 200_000 // parameter sets of the whole grid (the default has 2,638)
)

// Defaults of the grid flags: engine.DefaultGrid, so that no flag means the
// sweep the example always ran.
const (
	defaultFast  = "2:60:1"
	defaultSlow  = "10:250:10"
	defaultKinds = "sma,ema"
)

// periodList is a -fast or -slow value: FROM:TO[:STEP] (inclusive, step 1 by
// default), a comma-separated list, or one period.
type periodList struct{ values []int }

func (p *periodList) String() string {
	if p == nil {
		return ""
	}
	return engine.DescribeInts(p.values)
}

// Set parses FROM:TO[:STEP], A,B,C or N.
func (p *periodList) Set(s string) error {
	values, err := parsePeriods(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	p.values = values
	return nil
}

// parsePeriods is periodList.Set's parser.
func parsePeriods(s string) ([]int, error) {
	if s == "" {
		return nil, fmt.Errorf("empty: want FROM:TO[:STEP] (such as 2:60:1), a list (5,10,20) or one period")
	}
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		if len(parts) > 3 {
			return nil, fmt.Errorf("want FROM:TO or FROM:TO:STEP")
		}
		nums := []int{0, 0, 1}
		for i, part := range parts {
			n, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil {
				return nil, fmt.Errorf("%q is not a whole number", part)
			}
			nums[i] = n
		}
		from, to, step := nums[0], nums[1], nums[2]
		switch {
		case len(parts) < 2:
			return nil, fmt.Errorf("want FROM:TO or FROM:TO:STEP")
		case step < 1:
			return nil, fmt.Errorf("the step must be at least 1, not %d", step)
		case from > to:
			return nil, fmt.Errorf("FROM %d is above TO %d", from, to)
		case from < 1 || to > maxPeriod:
			return nil, fmt.Errorf("periods must lie in 1..%d bars", maxPeriod)
		case (to-from)/step+1 > maxPeriodList:
			return nil, fmt.Errorf("%d periods, more than %d; use a larger step", (to-from)/step+1, maxPeriodList)
		}
		var out []int
		for v := from; v <= to; v += step {
			out = append(out, v)
		}
		return out, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number (want FROM:TO[:STEP], a list A,B,C or one period)", part)
		}
		if n < 1 || n > maxPeriod {
			return nil, fmt.Errorf("period %d is outside 1..%d bars", n, maxPeriod)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("period %d is listed twice", n)
		}
		out = append(out, n)
	}
	if len(out) > maxPeriodList {
		return nil, fmt.Errorf("%d periods, more than %d", len(out), maxPeriodList)
	}
	return out, nil
}

// kindList is the -kinds value: moving-average kinds separated by commas.
type kindList struct{ values []string }

func (k *kindList) String() string {
	if k == nil {
		return ""
	}
	return strings.Join(k.values, ",")
}

// Set parses sma, ema or both.
func (k *kindList) Set(s string) error {
	var out []string
	for _, part := range strings.Split(s, ",") {
		kind := strings.ToLower(strings.TrimSpace(part))
		if kind != engine.KindSMA && kind != engine.KindEMA {
			return fmt.Errorf("unknown kind %q; want %s, %s or both (%s,%s)", part, engine.KindSMA, engine.KindEMA, engine.KindSMA, engine.KindEMA)
		}
		if slices.Contains(out, kind) {
			return fmt.Errorf("kind %s is listed twice", kind)
		}
		out = append(out, kind)
	}
	k.values = out
	return nil
}

// gridFlags are the flags that shape the sweep.
type gridFlags struct {
	fast, slow  periodList
	kinds       kindList
	feeBps      float64
	slippageBps float64
}

// register adds -fast, -slow, -kinds, -fee-bps and -slippage-bps to fs with
// engine.DefaultGrid's values as defaults.
func (g *gridFlags) register(fs *flag.FlagSet) {
	_ = g.fast.Set(defaultFast)
	_ = g.slow.Set(defaultSlow)
	_ = g.kinds.Set(defaultKinds)
	fs.Var(&g.fast, "fast", "fast moving-average periods in bars: `FROM:TO[:STEP]`, a list A,B,C, or one period")
	fs.Var(&g.slow, "slow", "slow moving-average periods in bars: `FROM:TO[:STEP]`, a list or one period, as -fast; only sets with fast < slow run")
	fs.Var(&g.kinds, "kinds", "moving-average `kinds`: sma, ema or sma,ema")
	fs.Float64Var(&g.feeBps, "fee-bps", engine.DefaultFeeBps, "fee per side in `bps` of traded notional")
	fs.Float64Var(&g.slippageBps, "slippage-bps", engine.DefaultSlippageBps, "slippage per side in `bps` of traded notional, charged like the fee")
}

// grid validates the flags and builds the sweep's grid.
func (g *gridFlags) grid() (engine.Grid, error) {
	for _, c := range []struct {
		name string
		v    float64
	}{{"-fee-bps", g.feeBps}, {"-slippage-bps", g.slippageBps}} {
		if !(c.v >= 0) || math.IsInf(c.v, 1) {
			return engine.Grid{}, fmt.Errorf("%s must be a non-negative number of basis points, not %v", c.name, c.v)
		}
	}
	if g.feeBps+g.slippageBps >= 10_000 {
		return engine.Grid{}, fmt.Errorf("-fee-bps plus -slippage-bps must be below 10000 (100%% per side), not %v", g.feeBps+g.slippageBps)
	}
	grid := engine.Grid{
		Fast: slices.Clone(g.fast.values), Slow: slices.Clone(g.slow.values), Kinds: slices.Clone(g.kinds.values),
		FeeBps: g.feeBps, SlippageBps: g.slippageBps,
	}
	if n := len(grid.Fast) * len(grid.Slow) * len(grid.Kinds); n > maxGridSets {
		return engine.Grid{}, fmt.Errorf("the grid has %d combinations (-fast × -slow × -kinds), more than %d; use larger steps", n, maxGridSets)
	}
	if len(grid.Params()) == 0 {
		return engine.Grid{}, fmt.Errorf("no parameter set of -fast %s and -slow %s has a fast period below the slow one",
			&g.fast, &g.slow)
	}
	return grid, nil
}
