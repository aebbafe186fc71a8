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
// an HTML report (backtest-report.html).
package main

import (
	"os"

	"github.com/banfleet/banfleet/internal/fleetcli"
)

func main() {
	ctx, stop := fleetcli.ShutdownContext()
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
