package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
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

	Started time.Time // when the sweep started, for the report
	Source  string    // where the bars came from
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
	var exports []string
	for _, e := range []struct {
		path  string
		write func(io.Writer, []engine.Result) error
	}{{cfg.CSV, engine.WriteResultsCSV}, {cfg.JSONL, engine.WriteResultsJSONL}} {
		if e.path == "" {
			continue
		}
		if err := writeFileAtomic(e.path, func(w io.Writer) error { return e.write(w, results) }); err != nil {
			return err
		}
		exports = append(exports, e.path)
		fmt.Fprintf(stdout, "results: %s\n", e.path)
	}
	if cfg.Report == "" {
		return nil
	}
	run := engine.RunInfo{
		Date: sum.Started, Fleet: sum.Fleet, Workers: sum.Workers, Wall: sum.Wall,
		Grid: &cfg.Grid, DataSource: sum.Source, Version: buildVersion(), Exports: relativeTo(cfg.Report, exports),
	}
	if err := writeFileAtomic(cfg.Report, func(w io.Writer) error {
		return engine.WriteHTMLReport(w, results, best, bars, run)
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s\n", cfg.Report)
	return nil
}

// relativeTo is each of paths as a link from the page at report.
func relativeTo(report string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p
		if rel, err := filepath.Rel(filepath.Dir(report), p); err == nil {
			out[i] = filepath.ToSlash(rel)
		}
	}
	return out
}

// buildVersion is the program's module version and VCS revision, as far as
// the build recorded them ("(devel)" under go run).
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	parts := []string{info.Main.Version}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			parts = append(parts, "rev "+s.Value[:min(len(s.Value), 12)])
		case s.Key == "vcs.modified" && s.Value == "true":
			parts = append(parts, "modified")
		}
	}
	return strings.Join(append(parts, info.GoVersion), ", ")
}

// withEquity is r with its equity curve set to eq.
func withEquity(r engine.Result, eq []float64) engine.Result {
	r.Equity = eq
	return r
}

// writeFileAtomic writes path through a temporary file beside it, so a failure
// never leaves half a report or export behind.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".backtest-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = write(tmp)
	err = errors.Join(err, tmp.Close())
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
