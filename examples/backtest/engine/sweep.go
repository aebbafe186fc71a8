package engine

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Default costs of DefaultGrid, typical of a liquid crypto or futures
// market, so the sweep penalises over-trading realistically.
const (
	// DefaultFeeBps is a typical taker fee per side.
	DefaultFeeBps = 4.0
	// DefaultSlippageBps is a typical fill slippage per side.
	DefaultSlippageBps = 2.0
)

// Grid describes a parameter sweep as the cartesian product of fast
// periods, slow periods and kinds, all sharing the same costs.
type Grid struct {
	// Fast lists the fast periods to try.
	Fast []int `json:"fast"`
	// Slow lists the slow periods to try.
	Slow []int `json:"slow"`
	// Kinds lists the moving-average kinds to try (KindSMA, KindEMA).
	Kinds []string `json:"kinds"`
	// FeeBps is the fee per side applied to every parameter set.
	FeeBps float64 `json:"fee_bps"`
	// SlippageBps is the slippage per side applied to every parameter set.
	SlippageBps float64 `json:"slippage_bps"`
}

// Params expands the grid into parameter sets in a fixed order (kind, then
// fast, then slow, each in the order given), skipping combinations that
// fail [Params.Validate], such as fast ≥ slow. The fixed order is what
// lets a master hand out job i and know which parameter set it means.
func (g Grid) Params() []Params {
	var out []Params
	for _, kind := range g.Kinds {
		for _, fast := range g.Fast {
			for _, slow := range g.Slow {
				p := Params{Fast: fast, Slow: slow, Kind: kind, FeeBps: g.FeeBps, SlippageBps: g.SlippageBps}
				if p.Validate() == nil {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// DefaultGrid is the sweep of the flagship example: fast periods 2..60
// step 1, slow periods 10..250 step 10, SMA and EMA, with
// DefaultFeeBps and DefaultSlippageBps. It expands to 2,638 valid
// parameter sets: enough work to make distribution worthwhile, small
// enough to finish in seconds.
func DefaultGrid() Grid {
	return Grid{
		Fast:        intRange(2, 60, 1),
		Slow:        intRange(10, 250, 10),
		Kinds:       []string{KindSMA, KindEMA},
		FeeBps:      DefaultFeeBps,
		SlippageBps: DefaultSlippageBps,
	}
}

// intRange returns from, from+step, … up to and including to.
func intRange(from, to, step int) []int {
	var out []int
	for v := from; v <= to; v += step {
		out = append(out, v)
	}
	return out
}

// RunAll backtests every parameter set over bars using up to workers
// goroutines (GOMAXPROCS when workers ≤ 0) and returns results in the
// order of params. It is the in-process reference the distributed sweep is
// compared against; since [Run] is pure, the goroutine schedule cannot
// affect the output. The first error in params order is returned.
func RunAll(bars []Bar, params []Params, workers int) ([]Result, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, max(len(params), 1))
	results := make([]Result, len(params))
	errs := make([]error, len(params))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Static striding: worker w takes w, w+workers, … which needs
			// no coordination and writes disjoint slice elements.
			for i := w; i < len(params); i += workers {
				results[i], errs[i] = Run(bars, params[i])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

// String describes the grid in the example's flag syntax, so a report's
// reader can rerun it: "fast 2:60:1 (59), slow 10:250:10 (25), kinds sma,ema,
// fee 4 bps, slippage 2 bps per side, 2638 valid sets".
func (g Grid) String() string {
	return fmt.Sprintf("fast %s (%d), slow %s (%d), kinds %s, fee %g bps, slippage %g bps per side, %d valid sets",
		DescribeInts(g.Fast), len(g.Fast), DescribeInts(g.Slow), len(g.Slow), strings.Join(g.Kinds, ","),
		g.FeeBps, g.SlippageBps, len(g.Params()))
}

// DescribeInts renders values as FROM:TO:STEP when they form an increasing
// arithmetic progression of three or more, else as a comma-separated list.
func DescribeInts(values []int) string {
	if n := len(values); n >= 3 {
		step := values[1] - values[0]
		progression := step > 0
		for i := 2; i < n && progression; i++ {
			progression = values[i]-values[i-1] == step
		}
		if progression {
			return fmt.Sprintf("%d:%d:%d", values[0], values[n-1], step)
		}
	}
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}
