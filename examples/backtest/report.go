package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/banfleet/banfleet/examples/backtest/engine"
)

// runSummary is what the last lines of output report.
type runSummary struct {
	Jobs, Replayed int
	Wall           time.Duration // of the sweep alone
	Fleet          string        // where it ran
	Embedded       bool          // the master was in this process: the next two are known
	Workers        int           // embedded workers
	BlobsServed    uint64        // the embedded master's blob downloads
}

// report prints the top results and the summary and writes the HTML report.
func report(cfg config, results []engine.Result, bars []engine.Bar, sum runSummary, stdout io.Writer) error {
	top := engine.TopN(results, max(cfg.Top, 1))
	if !cfg.Quiet && cfg.Top > 0 {
		fmt.Fprintln(stdout)
		if err := engine.WriteTable(stdout, top[:min(cfg.Top, len(top))]); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
	}
	best, err := engine.RunWithEquity(bars, top[0].Params)
	if err != nil {
		return fmt.Errorf("equity curve of %s: %w", top[0].Params, err)
	}
	if !best.Equal(withEquity(top[0], best.Equity)) {
		return fmt.Errorf("the fleet's result for %s differs from a local run", top[0].Params)
	}

	rate := float64(sum.Jobs-sum.Replayed) / sum.Wall.Seconds()
	fmt.Fprintf(stdout, "%d jobs (%d replayed from the journal) on %s in %s: %.0f jobs/s\n",
		sum.Jobs, sum.Replayed, sum.Fleet, sum.Wall.Round(time.Millisecond), rate)
	if sum.Embedded {
		fmt.Fprintf(stdout, "bar data downloads served by the master: %d (%d workers)\n", sum.BlobsServed, sum.Workers)
	}
	fmt.Fprintf(stdout, "best: %s  sharpe %.3f  return %+.1f%%  max drawdown %.1f%%  %d trades\n",
		best.Params, best.Sharpe, 100*best.TotalReturn, 100*best.MaxDrawdown, best.Trades)
	if cfg.Report == "" {
		return nil
	}
	if err := writeReport(cfg.Report, results, best, bars); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n", cfg.Report)
	return nil
}

// withEquity is r with its equity curve set to eq.
func withEquity(r engine.Result, eq []float64) engine.Result {
	r.Equity = eq
	return r
}

// writeReport writes the HTML report through a temporary file, so a failure never
// leaves half a report behind.
func writeReport(path string, results []engine.Result, best engine.Result, bars []engine.Bar) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".backtest-report-*.html")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	err = engine.WriteHTMLReport(tmp, results, best, bars)
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}
