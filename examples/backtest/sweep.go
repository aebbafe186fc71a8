package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/btjob"
	"github.com/banfleet/banfleet/examples/backtest/engine"
)

// sweepOptions configures runSweep.
type sweepOptions struct {
	Journal     string        // sweep journal file ("" for none)
	MaxInFlight int           // jobs submitted and not yet finished (0: dispatch's default)
	JobTimeout  time.Duration // per job (0: the master's default)

	Progress io.Writer // where the progress line goes (nil: nowhere)
	Terminal bool      // Progress is a terminal: redraw one line

	// OnResult, if set, sees every finished job as it arrives, before it is decoded.
	OnResult func(dispatch.SweepResult)
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
	if err != nil {
		return nil, fmt.Errorf("store bars on the master: %w", err)
	}
	jobs, err := btjob.Jobs(hash, params, opts.JobTimeout)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	sweep, err := dispatch.StartSweep(ctx, liveSubmitter{submitter}, jobs, dispatch.SweepOptions{
		MaxInFlight: opts.MaxInFlight, Journal: opts.Journal, StopOnError: true,
	})
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
	for r := range sweep.Results() { // read to the end: the sweep blocks until we do
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
		if err := decodeResult(r, params[r.Index], &results[r.Index]); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			sweep.Stop()
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
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("sweep interrupted after %d of %d jobs: %w", got, len(jobs), context.Cause(ctx))
	case firstErr != nil:
		return nil, firstErr
	case sweep.Err() != nil:
		return nil, fmt.Errorf("sweep ended early after %d of %d jobs: %w", got, len(jobs), sweep.Err())
	case got != len(jobs):
		return nil, fmt.Errorf("sweep ended with %d of %d results", got, len(jobs))
	}
	return results, nil
}

// decodeResult checks one finished job and decodes its engine.Result into dst.
func decodeResult(r dispatch.SweepResult, want engine.Params, dst *engine.Result) error {
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
