// Command backtest runs a moving-average crossover parameter sweep (2,638
// parameter sets by default) over banfleet workers and reports the best sets.
//
// With no flags it starts a master and two workers in this process, connected
// over loopback TCP, and backtests a year of synthetic hourly bars:
//
//	go run ./examples/backtest
//
// With -master it submits the same sweep to a running cmd/master and its
// workers, from any machine that can reach it:
//
//	go run ./examples/backtest -master host:6789 -token …
//
// Either way the bars are stored once as a blob on the master and fetched once
// per worker, the jobs have stable IDs (so -journal can resume an interrupted
// sweep), and the results are bit-identical to an in-process engine.RunAll.
// It prints a progress line, the top parameter sets and a summary, and writes
// an HTML report (backtest-report.html) and every result as CSV and JSON lines
// beside it (-csv, -jsonl).
//
// It is a template for a sweep of one's own: -fast, -slow and -kinds set the
// grid (FROM:TO[:STEP], lists), -fee-bps and -slippage-bps the costs, and -data
// a CSV of one's own bars. README.md lists the accepted bar formats and the
// strategy's rules: signal at a bar's close, fill at the next open, long or
// short with all equity, Sharpe annualised by the bars per year observed.
//
// A remote sweep rides through a restart of its master: a cmd/master with a store
// (-data-dir) keeps its jobs, and the sweep reconnects, collects the results the
// master held for it, submits again what the master does not know, and ends with the
// same results as an uninterrupted run. If the master stays unreachable for
// -reconnect-budget (default 1m), the sweep gives up with "lost the master at ADDR:
// it was unreachable for …, so the sweep gave up with N of M results", followed by how
// to resume: run again with the same -journal once the master is back (the completed
// results are kept there), or, if no journal was in use, with one next time.
package main

import (
	"os"

	"github.com/banfleet/banfleet/daemon"
)

func main() {
	ctx, stop := daemon.ShutdownContext()
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
