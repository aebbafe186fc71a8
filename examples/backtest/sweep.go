package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/btjob"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/sweep"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// sweepOptions configures runSweep.
type sweepOptions struct {
	Journal     string        // sweep journal file ("" for none)
	MaxInFlight int           // jobs submitted and not yet finished (0: dispatch's default)
	JobTimeout  time.Duration // per job (0: the master's default)

	Progress io.Writer // where the progress line goes (nil: nowhere)
	Terminal bool      // Progress is a terminal: redraw one line

	// OnResult, if set, sees every finished job as it arrives, before it is decoded.
	OnResult func(sweep.Result)

	// Tracing, if set, records the sweep as one trace: a "sweep" span with every
	// job's submit, dispatch and execute spans beneath it (the fleet's parts given the
	// same provider, or exporting to the same collector).
	Tracing trace.TracerProvider
}

// runSweep backtests every parameter set of grid over bars on the fleet behind
// submitter, and returns the results in grid order (the order of grid.Params()),
// whatever order the workers finished in. putBlob stores the encoded bars where
// the workers can fetch them (Master.PutBlob in-process, Client.PutBlob remotely).
//
// It is the one code path of both modes: embedded and remote runs differ only in
// submitter and putBlob, so their results are identical. Any failed job fails the
// sweep (a backtest job fails only on bad input or when MaxAttempts workers were
// lost running it), as does a result that does not belong to its job.
func runSweep(ctx context.Context, submitter dispatch.Submitter, putBlob func([]byte) (string, error),
	bars []engine.Bar, grid engine.Grid, opts sweepOptions) ([]engine.Result, error) {
	if len(bars) < 2 {
		return nil, fmt.Errorf("need at least 2 bars, have %d", len(bars))
	}
	if err := engine.ValidateBars(bars); err != nil {
		return nil, fmt.Errorf("bars: %w", err)
	}
	params := grid.Params()
	if len(params) == 0 {
		return nil, errors.New("the grid has no valid parameter set")
	}
	hash, err := putBlob(engine.EncodeBars(bars))
	if lost := masterLost(ctx, err); lost != nil {
		return nil, &masterLostError{Jobs: len(params), Err: fmt.Errorf("store bars on the master: %w", lost)}
	}
	if err != nil {
		return nil, fmt.Errorf("store bars on the master: %w", err)
	}
	jobs, err := btjob.Jobs(hash, params, opts.JobTimeout)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if opts.Tracing != nil {
		var span trace.Span
		ctx, span = opts.Tracing.Tracer("github.com/banfleet/banfleet/examples/backtest").Start(ctx, "sweep",
			trace.WithAttributes(attribute.Int("banfleet.sweep.jobs", len(jobs))))
		defer span.End()
	}
	// The description names the data and the grid in the journal's header for a
	// reader; the header's hash of the jobs (whose payloads name the bars' blob) is
	// what refuses a journal of another sweep.
	sw, err := sweep.Start(ctx, liveSubmitter{submitter}, jobs, sweep.Options{
		MaxInFlight: opts.MaxInFlight, Journal: opts.Journal, StopOnError: true,
		Description: fmt.Sprintf("examples/backtest: %d parameter sets over %d bars (%s)", len(params), len(bars), hash),
	})
	if errors.Is(err, sweep.ErrJournalMismatch) {
		return nil, fmt.Errorf("-journal %s: %w", opts.Journal, err)
	}
	if err != nil {
		return nil, err
	}
	var progress *engine.Progress
	if opts.Progress != nil {
		progress = engine.NewProgress(opts.Progress, len(jobs), opts.Terminal, start)
	}

	results := make([]engine.Result, len(params))
	got := 0
	var firstErr error
	for r := range sw.Results() { // read to the end: the sweep blocks until we do
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
		if err := decodeResult(r, params[r.Index], &results[r.Index]); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			sw.Stop()
			continue
		}
		got++
		if progress != nil {
			_ = progress.Increment(time.Now())
		}
	}
	if progress != nil {
		_ = progress.Finish(time.Now())
	}
	if lost := masterLost(ctx, firstErr, sw.Err()); lost != nil {
		return nil, &masterLostError{Results: got, Jobs: len(jobs), Err: lost}
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("sweep interrupted after %d of %d jobs: %w", got, len(jobs), context.Cause(ctx))
	case firstErr != nil:
		return nil, firstErr
	case sw.Err() != nil:
		return nil, fmt.Errorf("sweep ended early after %d of %d jobs: %w", got, len(jobs), sw.Err())
	case got != len(jobs):
		return nil, fmt.Errorf("sweep ended with %d of %d results", got, len(jobs))
	}
	return results, nil
}

// masterLost is the first of ctx's cause (once it has ended) and errs that wraps
// dispatch.ErrMasterLost, or nil.
func masterLost(ctx context.Context, errs ...error) error {
	if ctx.Err() != nil {
		errs = append([]error{context.Cause(ctx)}, errs...)
	}
	for _, err := range errs {
		if errors.Is(err, dispatch.ErrMasterLost) {
			return err
		}
	}
	return nil
}

// masterLostError is a sweep that gave up because its master stayed unreachable for
// the whole reconnect budget. Its message says so in words, with how far the sweep got
// and how to resume; Unwrap gives the dispatch error, which wraps
// dispatch.ErrMasterLost.
type masterLostError struct {
	Results, Jobs int   // results the sweep had when it gave up, of its jobs
	Err           error // why: wraps dispatch.ErrMasterLost

	// Set by the remote mode, which knows them.
	Master  string        // the master's address
	Budget  time.Duration // the reconnect budget
	Journal string        // the sweep journal ("" for none)
}

func (e *masterLostError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lost the master at %s: it was unreachable for %v (the reconnect budget, -reconnect-budget), so the sweep gave up with %d of %d results; ",
		cmp.Or(e.Master, "?"), e.Budget, e.Results, e.Jobs)
	if e.Journal != "" {
		fmt.Fprintf(&b, "once the master is back, run again with -journal %s to resume: the %d completed results are kept there and do not run again", e.Journal, e.Results)
	} else {
		b.WriteString("no journal was in use, so its results are not kept here: run with -journal FILE (for example -journal backtest.journal) for a rerun to resume where a sweep stopped")
	}
	return b.String()
}

func (e *masterLostError) Unwrap() error { return e.Err }

// decodeResult checks one finished job and decodes its engine.Result into dst.
func decodeResult(r sweep.Result, want engine.Params, dst *engine.Result) error {
	if r.Err != nil {
		return fmt.Errorf("job %s (%s): %w", r.ID, want, r.Err)
	}
	if err := json.Unmarshal(r.Result, dst); err != nil {
		return fmt.Errorf("job %s (%s): bad result: %w", r.ID, want, err)
	}
	if dst.Params != want {
		return fmt.Errorf("job %s: result is for %s, not %s (a journal from another sweep?)", r.ID, dst.Params, want)
	}
	return nil
}

// liveSubmitter refuses a submission whose context has already ended instead of
// passing it on. It works around a bug in dispatch.Master.Submit, which can crash on
// such a context (its job-context watcher may run before the job is set up), and
// which a sweep stopped mid-way would otherwise hit. Remove it once dispatch is
// fixed.
type liveSubmitter struct{ dispatch.Submitter }

func (s liveSubmitter) Submit(ctx context.Context, job dispatch.Job) (*dispatch.Ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Submitter.Submit(ctx, job)
}
