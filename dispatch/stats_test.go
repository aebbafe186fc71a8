package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// TestStatsCountOutcomesApart: a result, a handler's error, a timeout and a
// cancellation each count in their own field; Failed counts the handler's error only.
// (Lost jobs: TestNoDispatchToAClosedConnection.)
func TestStatsCountOutcomesApart(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started := make(chan struct{}, 4)
	f.startWorker(mixedHandlers(started), worker.WithConcurrency(4))
	ctx := context.Background()
	for range 3 {
		if _, err := f.master.Call(ctx, "ok", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.master.Call(ctx, "fail", nil); err == nil {
		t.Fatal("the failing job did not fail")
	}
	tk, err := f.master.Submit(ctx, dispatch.Job{Type: "wait", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out job: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	tk, err = f.master.Submit(cctx, dispatch.Job{Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job to cancel running")
	cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job: %v", err)
	}
	s := f.master.Stats()
	if s.Done != 3 || s.Failed != 1 || s.TimedOut != 1 || s.Cancelled != 1 || s.Lost != 0 || s.Retried != 0 {
		t.Fatalf("Stats %+v: want 3 done, 1 failed, 1 timed out, 1 cancelled", s)
	}
}
