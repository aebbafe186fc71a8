package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/engine"
)

// Defaults of the example's flags.
const (
	defaultSeed     = 42
	defaultBars     = 8760 // one year of hourly bars
	defaultWorkers  = 2
	defaultInFlight = 256
	defaultTop      = 10
	defaultReport   = "backtest-report.html"
)

// config is the example's command line.
type config struct {
	DataFile string      // CSV of bars; "" → synthetic bars
	Seed     int64       // synthetic bars' seed
	Bars     int         // synthetic bars' count
	Grid     engine.Grid // the sweep (-fast, -slow, -kinds, -fee-bps, -slippage-bps)

	Master          string        // remote master host:port; "" → embedded fleet
	ReconnectBudget time.Duration // remote mode: how long a lost master may stay away
	Workers         int           // embedded workers
	Conn            daemon.Conn
	Trace           daemon.Tracing

	Journal  string
	InFlight int
	Top      int
	Report   string // HTML report file; "" → none
	CSV      string // every result as CSV; "" → none (default: next to the report)
	JSONL    string // every result as JSON lines; "" → none (default: next to the report)
	Quiet    bool
}

// parseConfig reads the command line, falling back to BANFLEET_* variables.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (config, error) {
	var c config
	var grid gridFlags
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.DataFile, "data", "", "CSV `file` of your own bars, oldest first (formats: examples/backtest/README.md); default synthetic bars")
	fs.Int64Var(&c.Seed, "seed", defaultSeed, "seed of the synthetic bars")
	fs.IntVar(&c.Bars, "bars", defaultBars, "number of synthetic hourly bars")
	grid.register(fs)
	fs.StringVar(&c.Master, "master", "", "run on the fleet of the master at `host:port` (a cluster: every master, comma-separated; default: an embedded master and workers)")
	fs.DurationVar(&c.ReconnectBudget, "reconnect-budget", dispatch.DefaultReconnectBudget,
		"with -master: how long the sweep waits for a lost master to come back (a restart) before it gives up")
	fs.IntVar(&c.Workers, "workers", defaultWorkers, "embedded mode: number of in-process workers")
	c.Conn.RegisterClient(fs)
	c.Trace.Register(fs)
	fs.StringVar(&c.Journal, "journal", "", "sweep journal `file`: finished jobs are recorded and a rerun replays them")
	fs.IntVar(&c.InFlight, "inflight", defaultInFlight, "jobs submitted and not yet finished")
	fs.IntVar(&c.Top, "top", defaultTop, "rows of the results table")
	fs.StringVar(&c.Report, "report", defaultReport, "HTML report `file` (empty: none)")
	fs.StringVar(&c.CSV, "csv", "", "CSV `file` of every result (default: the report's name with .csv; empty with no report: none)")
	fs.StringVar(&c.JSONL, "jsonl", "", "JSON-lines `file` of every result (default: the report's name with .jsonl; empty with no report: none)")
	fs.BoolVar(&c.Quiet, "quiet", false, "print neither progress nor the table, only the summary")
	daemon.SetUsage(fs, "go run ./examples/backtest [flags]")
	if err := daemon.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	if err := c.Conn.Validate(); err != nil {
		return c, err
	}
	var err error
	if c.Grid, err = grid.grid(); err != nil {
		return c, err
	}
	c.CSV, c.JSONL = exportPaths(fs, c.Report, c.CSV, c.JSONL)
	if err := distinctOutputs(map[string]string{"-report": c.Report, "-csv": c.CSV, "-jsonl": c.JSONL}); err != nil {
		return c, err
	}
	switch {
	case c.Workers < 1:
		return c, fmt.Errorf("-workers must be at least 1, not %d", c.Workers)
	case c.ReconnectBudget <= 0:
		return c, fmt.Errorf("-reconnect-budget must be positive, not %s", c.ReconnectBudget)
	case c.InFlight < 1:
		return c, fmt.Errorf("-inflight must be at least 1, not %d", c.InFlight)
	case c.Top < 0:
		return c, fmt.Errorf("-top must not be negative, not %d", c.Top)
	case c.DataFile == "" && c.Bars < 2:
		return c, fmt.Errorf("-bars must be at least 2, not %d", c.Bars)
	}
	return c, nil
}

// exportPaths resolves -csv and -jsonl: a flag given (or set by its BANFLEET_
// variable) is taken as is, empty meaning none; one left alone lies next to the
// report, with the report's name and its own extension, or is none without a
// report. So the default run writes backtest-report.html, .csv and .jsonl.
func exportPaths(fs *flag.FlagSet, report, csvPath, jsonlPath string) (string, string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	beside := func(ext string) string {
		if report == "" {
			return ""
		}
		return strings.TrimSuffix(report, filepath.Ext(report)) + ext
	}
	if !set["csv"] {
		csvPath = beside(".csv")
	}
	if !set["jsonl"] {
		jsonlPath = beside(".jsonl")
	}
	return csvPath, jsonlPath
}

// distinctOutputs refuses two output flags naming one file, which would
// overwrite one output with another.
func distinctOutputs(byFlag map[string]string) error {
	seen := map[string]string{}
	for _, name := range []string{"-report", "-csv", "-jsonl"} {
		path := byFlag[name]
		if path == "" {
			continue
		}
		if other, ok := seen[filepath.Clean(path)]; ok {
			return fmt.Errorf("%s and %s both name %s: give them different files", other, name, path)
		}
		seen[filepath.Clean(path)] = name
	}
	return nil
}
