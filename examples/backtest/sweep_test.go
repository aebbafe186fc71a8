package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/btjob"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/sweep"
	"github.com/banfleet/banfleet/worker"
)

// smallGrid is a grid of 132 parameter sets: enough to spread over two workers,
// quick under the race detector.
func smallGrid() engine.Grid {
	return engine.Grid{
		Fast:        []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		Slow:        []int{15, 20, 25, 30, 35, 40},
		Kinds:       []string{engine.KindSMA, engine.KindEMA},
		FeeBps:      engine.DefaultFeeBps,
		SlippageBps: engine.DefaultSlippageBps,
	}
}

// quietLog discards everything below errors.
var quietLog = slog.New(slog.DiscardHandler)

// countingHandler is the backtest handler counting its calls.
func countingHandler(calls *atomic.Int64) worker.Handler {
	h := btjob.NewHandler()
	return func(ctx context.Context, job *worker.Job) (any, error) {
		calls.Add(1)
		return h(ctx, job)
	}
}

// startTestFleet runs a fleet of n workers serving h for the test.
func startTestFleet(t *testing.T, n int, h worker.Handler) *fleettest.Fleet {
	t.Helper()
	return fleettest.New(t, map[string]worker.Handler{btjob.Type: h}, fleettest.WithWorkers(n),
		fleettest.WithWorkerOptions(worker.WithConcurrency(2)))
}

func masterBlob(f *fleettest.Fleet) func([]byte) (string, error) {
	return f.Master().PutBlob
}

// assertEqualResults fails unless got and want are bit-identical, in order.
func assertEqualResults(t *testing.T, got, want []engine.Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("result %d (%s) differs from engine.RunAll:\n got %+v\nwant %+v", i, want[i].Params, got[i], want[i])
		}
	}
}

func TestEmbeddedSweepMatchesRunAllAndReplaysFromJournal(t *testing.T) {
	leakcheck.Check(t)
	bars := engine.Synthetic(600, 7)
	grid := smallGrid()
	want, err := engine.RunAll(bars, grid.Params(), 0)
	if err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(t.TempDir(), "sweep.journal")

	var calls atomic.Int64
	f := startTestFleet(t, 2, countingHandler(&calls))
	var replayed int
	opts := sweepOptions{Journal: journal, MaxInFlight: 16, OnResult: func(r sweep.Result) {
		if r.Replayed {
			replayed++
		}
	}}
	got, err := runSweep(context.Background(), f.Master(), masterBlob(f), bars, grid, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertEqualResults(t, got, want)
	if n := calls.Load(); n != int64(len(want)) || replayed != 0 {
		t.Fatalf("first run: %d handler calls and %d replays for %d jobs", n, replayed, len(want))
	}
	if served := f.Master().BlobsServed(); served != 2 {
		t.Fatalf("the bars were downloaded %d times by 2 workers, want once per worker", served)
	}

	// A rerun with the journal on a fresh fleet replays every job and runs none.
	var calls2 atomic.Int64
	f2 := startTestFleet(t, 2, countingHandler(&calls2))
	got, err = runSweep(context.Background(), f2.Master(), masterBlob(f2), bars, grid, opts)
	if err != nil {
		t.Fatal(err)
	}
	assertEqualResults(t, got, want)
	if n := calls2.Load(); n != 0 || replayed != len(want) {
		t.Fatalf("rerun: %d handler calls and %d replays for %d journalled jobs", n, replayed, len(want))
	}
}

func TestSweepFailsOnFailedJob(t *testing.T) {
	leakcheck.Check(t)
	f := startTestFleet(t, 1, func(ctx context.Context, job *worker.Job) (any, error) {
		return nil, &worker.Error{Code: "boom", Err: errors.New("engine on fire")}
	})
	_, err := runSweep(context.Background(), f.Master(), masterBlob(f), engine.Synthetic(100, 1), smallGrid(), sweepOptions{})
	var remote *dispatch.RemoteError
	if !errors.As(err, &remote) || remote.Code != "boom" || !strings.Contains(err.Error(), "(sma ") {
		t.Fatalf("err = %v, want a job's remote error naming its parameters", err)
	}
}

func TestSweepRejectsBadInput(t *testing.T) {
	noBlob := func([]byte) (string, error) { t.Fatal("nothing may be uploaded"); return "", nil }
	var sub dispatch.Submitter // never reached
	bars := engine.Synthetic(100, 1)
	if _, err := runSweep(context.Background(), sub, noBlob, bars[:1], smallGrid(), sweepOptions{}); err == nil {
		t.Error("one bar must be refused")
	}
	broken := append([]engine.Bar(nil), bars...)
	broken[5].Close = -1
	if _, err := runSweep(context.Background(), sub, noBlob, broken, smallGrid(), sweepOptions{}); err == nil || !strings.Contains(err.Error(), "5") {
		t.Errorf("a bad bar must be refused with its index, got %v", err)
	}
	if _, err := runSweep(context.Background(), sub, noBlob, bars, engine.Grid{Fast: []int{50}, Slow: []int{10}, Kinds: []string{"sma"}}, sweepOptions{}); err == nil {
		t.Error("a grid without a valid parameter set must be refused")
	}
	failingBlob := func([]byte) (string, error) { return "", errors.New("master unreachable") }
	if _, err := runSweep(context.Background(), sub, failingBlob, bars, smallGrid(), sweepOptions{}); err == nil || !strings.Contains(err.Error(), "master unreachable") {
		t.Errorf("an upload failure must be reported, got %v", err)
	}
}

func TestDecodeResultChecksParams(t *testing.T) {
	p := engine.Params{Fast: 2, Slow: 10, Kind: engine.KindSMA}
	other := p
	other.Slow = 20
	var dst engine.Result
	res := sweep.Result{ID: "x", Result: []byte(`{"params":{"fast":2,"slow":20,"kind":"sma"}}`)}
	if err := decodeResult(res, p, &dst); err == nil {
		t.Error("a result for other parameters must be refused")
	}
	if err := decodeResult(res, other, &dst); err != nil || dst.Params != other {
		t.Errorf("decodeResult = %v, %+v", err, dst.Params)
	}
	if err := decodeResult(sweep.Result{Result: []byte("{")}, p, &dst); err == nil {
		t.Error("bad JSON must be refused")
	}
}

func TestSweepCancelled(t *testing.T) {
	leakcheck.Check(t)
	f := startTestFleet(t, 1, func(ctx context.Context, job *worker.Job) (any, error) {
		<-ctx.Done() // every job runs until the sweep is cancelled
		return nil, ctx.Err()
	})
	capacity := f.Master().Stats().Capacity
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		defer cancel()
		// Cancel once the sweep has filled its in-flight bound and waits for a slot.
		// (Cancelling while a Submit is under way can crash dispatch.Master: see
		// liveSubmitter.) The master's counters have no event to wait on: a bounded
		// poll.
		deadline := time.Now().Add(10 * time.Second)
		for s := f.Master().Stats(); s.InFlight != capacity || s.Queued != 4; s = f.Master().Stats() {
			if time.Now().After(deadline) {
				t.Errorf("the sweep never filled its in-flight bound: %+v", s)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { <-polled }()
	_, err := runSweep(ctx, f.Master(), masterBlob(f), engine.Synthetic(100, 1), smallGrid(), sweepOptions{MaxInFlight: capacity + 4})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted after 0 of 132 jobs") {
		t.Fatalf("err = %v, want an interruption with context.Canceled", err)
	}
}

// submitterFunc adapts a function to dispatch.Submitter.
type submitterFunc func(context.Context, dispatch.Job) (*dispatch.Ticket, error)

func (f submitterFunc) Submit(ctx context.Context, job dispatch.Job) (*dispatch.Ticket, error) {
	return f(ctx, job)
}

func TestLiveSubmitterRefusesEndedContext(t *testing.T) {
	calls := 0
	s := liveSubmitter{submitterFunc(func(context.Context, dispatch.Job) (*dispatch.Ticket, error) {
		calls++
		return nil, nil
	})}
	if _, err := s.Submit(context.Background(), dispatch.Job{}); err != nil || calls != 1 {
		t.Fatalf("live context: %v, %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Submit(ctx, dispatch.Job{}); !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("ended context: %v, %d calls; want it refused before reaching the master", err, calls)
	}
}

func TestMasterLostErrorMessage(t *testing.T) {
	cause := fmt.Errorf("job j: %w: the master at m:1 was unreachable", dispatch.ErrMasterLost)
	e := &masterLostError{Results: 7, Jobs: 90, Err: cause, Master: "m:1", Budget: 2 * time.Second, Journal: "s.journal"}
	msg := e.Error()
	for _, want := range []string{"lost the master at m:1", "unreachable for 2s", "7 of 90 results", "run again with -journal s.journal to resume"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if !errors.Is(e, dispatch.ErrMasterLost) {
		t.Error("the error must wrap dispatch.ErrMasterLost")
	}
	e.Journal = ""
	if msg := e.Error(); !strings.Contains(msg, "no journal was in use") || !strings.Contains(msg, "run with -journal FILE") {
		t.Errorf("without a journal: %q", msg)
	}
}
