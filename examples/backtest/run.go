package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/sweep"
)

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "backtest:", err)
		return 2
	}
	if err := backtest(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "backtest:", daemon.AuthHint(err))
		return 1
	}
	return 0
}

// backtest loads the bars, runs the sweep in the chosen mode, and reports.
func backtest(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	bars, source, err := loadBars(cfg)
	if err != nil {
		return err
	}
	tp, flush, err := cfg.Trace.Setup(ctx, "banfleet-backtest")
	if err != nil {
		return err
	}
	defer daemon.FlushSpans(flush, 5*time.Second, newLogger(stderr, slog.LevelWarn))
	grid := cfg.Grid
	opts := sweepOptions{Journal: cfg.Journal, MaxInFlight: cfg.InFlight}
	if cfg.Trace.Mode != daemon.TraceNone {
		opts.Tracing = tp
	}
	if !cfg.Quiet {
		opts.Progress = stderr
		if f, ok := stderr.(*os.File); ok {
			opts.Terminal = engine.IsTerminal(f)
		}
	}
	var replayed int
	opts.OnResult = func(r sweep.Result) {
		if r.Replayed {
			replayed++
		}
	}
	announce := func(fleet string) {
		if !cfg.Quiet {
			fmt.Fprintf(stdout, "backtesting %d parameter sets over %s on %s\n", len(grid.Params()), source, fleet)
		}
	}
	var out sweepOutcome
	started := time.Now()
	if cfg.Master == "" {
		// Errors only: the in-process fleet's info logs would drown the progress line,
		// and an interrupted sweep would log a warning for every job a draining worker
		// answers after its connection closed.
		out, err = sweepEmbedded(ctx, cfg, bars, grid, opts, newLogger(stderr, slog.LevelError), announce)
	} else {
		out, err = sweepRemote(ctx, cfg, bars, grid, opts, newLogger(stderr, slog.LevelWarn), announce)
	}
	if err != nil {
		if ctx.Err() != nil && cfg.Journal != "" {
			return fmt.Errorf("%w; run again with -journal %s to resume", err, cfg.Journal)
		}
		return err
	}
	out.summary.Jobs, out.summary.Replayed = len(out.results), replayed
	out.summary.Started, out.summary.Source = started, source
	return report(cfg, out.results, bars, out.summary, stdout)
}

// loadBars reads -data, or synthesises bars; source describes them.
func loadBars(cfg config) (bars []engine.Bar, source string, err error) {
	if cfg.DataFile == "" {
		return engine.Synthetic(cfg.Bars, cfg.Seed), fmt.Sprintf("%d synthetic hourly bars (seed %d)", cfg.Bars, cfg.Seed), nil
	}
	f, err := os.Open(cfg.DataFile)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	bars, err = engine.LoadCSV(f)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", cfg.DataFile, err)
	}
	return bars, fmt.Sprintf("%d bars from %s", len(bars), cfg.DataFile), nil
}

// newLogger logs to w from level up.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// elapsed measures from now; the sweep's wall time excludes starting the fleet.
func elapsed() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}
