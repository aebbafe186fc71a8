package engine_test

import (
	"fmt"
	"log"
	"os"

	"github.com/banfleet/banfleet/examples/backtest/engine"
)

// Example sweeps a small grid over a year of synthetic hourly bars and
// prints the three best parameter sets. The output is identical on every
// machine, which is what lets remote results be checked against local ones.
func Example() {
	bars := engine.Synthetic(8760, 1)
	grid := engine.Grid{
		Fast:        []int{5, 10, 20},
		Slow:        []int{50, 100, 200},
		Kinds:       []string{engine.KindSMA, engine.KindEMA},
		FeeBps:      engine.DefaultFeeBps,
		SlippageBps: engine.DefaultSlippageBps,
	}
	results, err := engine.RunAll(bars, grid.Params(), 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d parameter sets over %d bars\n", len(results), len(bars))
	if err := engine.WriteTable(os.Stdout, engine.TopN(results, 3)); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 18 parameter sets over 8760 bars
	// rank  kind  fast  slow  sharpe   return     cagr  max_dd  trades  win_rate
	//    1   sma    10    50   1.618  132.10%  132.26%  39.78%     220    35.91%
	//    2   ema    10   100   1.358   90.91%   91.01%  59.13%     149    24.83%
	//    3   sma    20    50   1.299   87.83%   87.93%  45.47%     186    39.78%
}

// ExampleRun backtests one parameter set.
func ExampleRun() {
	bars := engine.Synthetic(2000, 42)
	result, err := engine.Run(bars, engine.Params{Fast: 12, Slow: 48, Kind: engine.KindEMA, FeeBps: 4, SlippageBps: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("trades %d, win rate %.1f%%, total return %.2f%%, Sharpe %.3f\n",
		result.Trades, 100*result.WinRate, 100*result.TotalReturn, result.Sharpe)
	// Output:
	// trades 39, win rate 41.0%, total return 41.50%, Sharpe 2.758
}
