package engine

import (
	"fmt"
	"math"
)

// Run backtests the crossover strategy p over bars and returns its
// metrics without the equity curve. It is a pure function: no state is
// shared between calls, so any number may run concurrently and the result
// is bit-identical on every machine. It allocates nothing, which keeps a
// sweep of thousands of parameter sets fast.
//
// Semantics: the signal is computed from closes up to and including bar
// i and executed at the open of bar i+1 (no look-ahead); a signal on the
// last bar is never executed. The account starts flat with equity 1, is
// marked to market at every close, and any position still open at the
// end is valued at the last close (it is not counted as a trade).
//
// Run fails when p is invalid, there are fewer than 2 bars, timestamps do
// not increase, or an open or close price is not a positive finite number.
func Run(bars []Bar, p Params) (Result, error) {
	return simulate(bars, p, nil, nil)
}

// RunWithEquity is [Run] plus the equity curve: Result.Equity[i] is the
// account equity (starting at 1) at the close of bars[i]. It is separate
// from Run because only the winning parameter set's curve is charted and
// a sweep should not allocate thousands of curves.
func RunWithEquity(bars []Bar, p Params) (Result, error) {
	equity := make([]float64, len(bars))
	r, err := simulate(bars, p, equity, nil)
	if err != nil {
		return Result{}, err
	}
	r.Equity = equity
	return r, nil
}

// Positions returns the position held during each bar (+1 long, -1 short,
// 0 flat) after any trade at that bar's open. It shares its code path with
// [Run], which makes it the natural way to inspect or test the strategy's
// decisions.
func Positions(bars []Bar, p Params) ([]int8, error) {
	positions := make([]int8, len(bars))
	if _, err := simulate(bars, p, nil, positions); err != nil {
		return nil, err
	}
	return positions, nil
}

// simulate is the single pass shared by Run, RunWithEquity and Positions.
// equity and positions, when non-nil, have len(bars) and are filled in.
func simulate(bars []Bar, p Params, equity []float64, positions []int8) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	if len(bars) < 2 {
		return Result{}, errTooFewBars
	}
	costRate := (p.FeeBps + p.SlippageBps) / 10_000
	fast := newMovingAverage(p.Kind, p.Fast)
	slow := newMovingAverage(p.Kind, p.Slow)
	acct := newAccount()
	perf := newPerformance()
	var target int8 // position decided at the previous close

	for i := range bars {
		bar := &bars[i]
		if err := checkTradableBar(bars, i); err != nil {
			return Result{}, err
		}
		// Execute yesterday's decision at today's open.
		acct.moveTo(target, bar.Open, costRate)

		marked := acct.equity(bar.Close)
		if marked <= 0 && !acct.ruined {
			acct.ruin()
			marked = 0
		}
		perf.observe(marked)
		if equity != nil {
			equity[i] = marked
		}
		if positions != nil {
			positions[i] = acct.side
		}

		// Decide tomorrow's position from closes up to today.
		fastValue, fastReady := fast.push(bar.Close, closeLeavingWindow(bars, i, p.Fast))
		slowValue, slowReady := slow.push(bar.Close, closeLeavingWindow(bars, i, p.Slow))
		if fastReady && slowReady {
			target = crossoverSignal(fastValue, slowValue, target)
		}
	}
	return perf.result(p, bars, acct), nil
}

// closeLeavingWindow returns the close that drops out of an SMA window of
// length period when bar i enters it, or 0 while the window is filling.
func closeLeavingWindow(bars []Bar, i, period int) float64 {
	if i >= period {
		return bars[i-period].Close
	}
	return 0
}

// checkTradableBar verifies only what the simulation relies on (positive,
// finite open and close; increasing time), inline in the main loop so that
// Run stays a single pass. Full validation is [ValidateBars].
func checkTradableBar(bars []Bar, i int) error {
	b := &bars[i]
	if !(b.Open > 0) || math.IsInf(b.Open, 1) || !(b.Close > 0) || math.IsInf(b.Close, 1) {
		return fmt.Errorf("backtest: bar %d: open %v and close %v must be positive finite numbers", i, b.Open, b.Close)
	}
	if i > 0 && b.Time <= bars[i-1].Time {
		return fmt.Errorf("backtest: bar %d: timestamp %d does not increase (previous %d)", i, b.Time, bars[i-1].Time)
	}
	return nil
}
