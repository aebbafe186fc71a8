package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// Config says what the harness runs.
type Config struct {
	// Systems to run, in report order.
	Systems []Entry
	// Callers and Sizes span the case matrix (every size with every
	// caller count).
	Callers []int
	Sizes   []int
	// Warmup is the unmeasured window before each measured one.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration
	// Repeat is how many measured windows each system gets per case;
	// every repeat uses a freshly started System.
	Repeat int
	// StartTimeout bounds System.Start.
	StartTimeout time.Duration
	// Grace is how long past the end of a window the harness waits for
	// calls in flight before it cancels them and fails the case.
	Grace time.Duration
	// RandomPayload fills every caller's payload with random
	// (incompressible) bytes instead of the default short repeating
	// pattern, which compressing transports shrink a lot.
	RandomPayload bool
	// Log receives one progress line per window; nil discards them.
	Log io.Writer
}

// cases returns the case matrix in run order: sizes outermost.
func (c *Config) cases() []Case {
	var out []Case
	for _, size := range c.Sizes {
		for _, n := range c.Callers {
			out = append(out, Case{Callers: n, Size: size})
		}
	}
	return out
}

// validate checks c for values that cannot run.
func (c *Config) validate() error {
	switch {
	case len(c.Systems) == 0:
		return errors.New("no system selected")
	case len(c.Callers) == 0 || len(c.Sizes) == 0:
		return errors.New("need at least one caller count and one size")
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Warmup < 0:
		return errors.New("warm-up must not be negative")
	case c.Repeat < 1:
		return errors.New("repeat must be at least 1")
	}
	for _, n := range c.Callers {
		if n < 1 {
			return fmt.Errorf("caller count %d: must be at least 1", n)
		}
	}
	for _, s := range c.Sizes {
		if s < 1 || s > maxPayload {
			return fmt.Errorf("size %d: must be between 1 and %d bytes", s, maxPayload)
		}
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// maxPayload is the largest payload size the harness accepts; every system
// must carry it (NATS' default max_payload is 1 MiB).
const maxPayload = 512 << 10

// Run runs the whole matrix and returns one Result per system and case,
// ordered by case, then by system. For each case it runs repeat 1 of every
// system, then repeat 2 of every system, and so on, so that slow drift in
// the machine's load is shared by all systems rather than landing on one.
// A system that fails a repeat is not run again for that case.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var all []Result
	for _, c := range cfg.cases() {
		results := make([]Result, len(cfg.Systems))
		for i, e := range cfg.Systems {
			results[i] = Result{System: e.Name, Unit: e.unit(), Case: c}
			if err := supports(e, c); err != nil {
				results[i].Skipped = err.Error()
			}
		}
		for rep := 1; rep <= cfg.Repeat; rep++ {
			for i, e := range cfg.Systems {
				r := &results[i]
				if r.Skipped != "" || r.Error != "" {
					continue
				}
				if err := ctx.Err(); err != nil {
					return append(all, summarizeAll(results)...), err
				}
				got, err := runOnce(ctx, &cfg, e, c)
				if reason, ok := unavailableReason(err); ok {
					r.Skipped = reason
					fmt.Fprintf(cfg.Log, "size=%-6d callers=%-3d rep %d/%d %-16s skipped: %s\n",
						c.Size, c.Callers, rep, cfg.Repeat, e.Name, reason)
					continue
				}
				if err != nil {
					r.Error = err.Error()
					fmt.Fprintf(cfg.Log, "size=%-6d callers=%-3d rep %d/%d %-16s FAILED: %v\n",
						c.Size, c.Callers, rep, cfg.Repeat, e.Name, err)
					continue
				}
				r.Repeats = append(r.Repeats, got)
				fmt.Fprintf(cfg.Log, "size=%-6d callers=%-3d rep %d/%d %-16s %12.0f %s/s  p50 %s  p99 %s\n",
					c.Size, c.Callers, rep, cfg.Repeat, e.Name, got.OpsPerSec, r.Unit,
					fmtLatency(float64(got.P50Ns), got.HasLatency), fmtLatency(float64(got.P99Ns), got.HasLatency))
			}
		}
		all = append(all, summarizeAll(results)...)
	}
	return all, nil
}

// summarizeAll fills in the medians of results and returns it.
func summarizeAll(results []Result) []Result {
	for i := range results {
		results[i].Median = summarize(results[i].Repeats)
	}
	return results
}

// errUnavailable marks a Start error that means the system cannot run on
// this machine at all, such as a peer whose server program is not
// installed. The harness reports such a system as skipped, with the error's
// message as the reason, instead of failing the case (and the run's exit
// code); it still tries it again in the next case.
var errUnavailable = errors.New("unavailable")

// unavailable returns an error for System.Start that makes the harness skip
// the system: "unavailable: " followed by the formatted reason.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnavailable, fmt.Sprintf(format, args...))
}

// unavailableReason returns the skip reason when err (from runOnce, so
// wrapped in "start: ") comes from unavailable.
func unavailableReason(err error) (string, bool) {
	if !errors.Is(err, errUnavailable) {
		return "", false
	}
	msg := err.Error()
	if i := strings.Index(msg, errUnavailable.Error()+": "); i >= 0 {
		msg = msg[i:]
	}
	return msg, true
}

// supports asks a fresh, unstarted System of e whether it runs c.
func supports(e Entry, c Case) error {
	if f, ok := e.New().(CaseFilter); ok {
		return f.Supports(c)
	}
	return nil
}

// runOnce starts a fresh System of e, warms it up, measures one window and
// closes it.
func runOnce(ctx context.Context, cfg *Config, e Entry, c Case) (rep Repeat, err error) {
	sys := e.New()
	defer func() {
		if cerr := sys.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	startCtx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	err = sys.Start(startCtx)
	cancel()
	if err != nil {
		return Repeat{}, fmt.Errorf("start: %w", err)
	}

	measure, err := newWindowFunc(sys, c, cfg.Grace, cfg.RandomPayload)
	if err != nil {
		return Repeat{}, err
	}
	if cfg.Warmup > 0 {
		if _, err := measure(ctx, cfg.Warmup); err != nil {
			return Repeat{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return accounted(ctx, sys, measure, cfg.Duration)
}

// windowFunc runs one window of about d and returns what it measured.
type windowFunc func(ctx context.Context, d time.Duration) (Sample, error)

// newWindowFunc returns the window runner for sys: its own Measure if it is
// a Measurer, otherwise closed-loop callers from NewCaller.
func newWindowFunc(sys System, c Case, grace time.Duration, random bool) (windowFunc, error) {
	if m, ok := sys.(Measurer); ok {
		return func(ctx context.Context, d time.Duration) (Sample, error) {
			return m.Measure(ctx, c, d)
		}, nil
	}
	loop, err := newClosedLoop(sys, c, grace, random)
	if err != nil {
		return nil, err
	}
	return loop.window, nil
}

// accounted runs one window of d and adds the process-wide CPU time and
// heap allocation it caused, plus the CPU time of sys's own child
// processes if it has any (ExternalCPU). It collects garbage first so that
// one window's garbage is not charged to the next.
func accounted(ctx context.Context, sys System, measure windowFunc, d time.Duration) (Repeat, error) {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, ok0 := systemCPU(sys)
	s, err := measure(ctx, d)
	cpu1, ok1 := systemCPU(sys)
	runtime.ReadMemStats(&m1)
	if err != nil {
		return Repeat{}, err
	}
	if s.Ops <= 0 {
		return Repeat{}, errors.New("window completed no op")
	}
	return newRepeat(s, cpu1-cpu0, ok0 && ok1, m1.TotalAlloc-m0.TotalAlloc, m1.Mallocs-m0.Mallocs), nil
}

// systemCPU is this process's CPU time plus, for a System that implements
// ExternalCPU, that of the processes it runs; false if either could not be
// read.
func systemCPU(sys System) (time.Duration, bool) {
	cpu, ok := processCPU()
	if x, isExt := sys.(ExternalCPU); isExt {
		ext, extOK := x.ExternalCPU()
		cpu += ext
		ok = ok && extOK
	}
	return cpu, ok
}
