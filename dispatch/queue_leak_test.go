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

// TestRemovedQueuedJobsFreedAtOnce: jobs that leave their queue before a worker takes
// them (here half cancelled, half timed out, for a type nobody serves) are no longer
// held by it, so their payloads can be collected while /status says they are gone.
func TestRemovedQueuedJobsFreedAtOnce(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	const jobs = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payload := make([]byte, 1<<10)
	var tickets []*dispatch.Ticket
	for i := range jobs {
		spec := dispatch.Job{Type: "nobody", Payload: payload}
		jobCtx := ctx
		if i%2 == 1 {
			spec.Timeout = time.Millisecond
			jobCtx = context.Background()
		}
		tk, err := f.master.Submit(jobCtx, spec)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	keep, err := f.master.Submit(context.Background(), dispatch.Job{Type: "nobody", Payload: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for _, tk := range tickets {
		if _, err := tk.Wait(context.Background()); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("removed job: %v", err)
		}
	}
	if held, _ := dispatch.QueueRetention(f.master); held != 1 {
		t.Fatalf("the queue holds %d jobs after %d of its %d left it, want 1", held, jobs, jobs+1)
	}
	if s := f.master.Stats(); s.Queued != 1 || s.QueuedByType["nobody"] != 1 {
		t.Fatalf("Stats = %+v, want the one job left queued", s)
	}
	if err := dispatch.IndexError(f.master); err != nil {
		t.Fatal(err)
	}
	f.startWorker("", map[string]worker.Handler{"nobody": echo})
	if res, err := keep.Wait(context.Background()); err != nil || string(res) != "kept" {
		t.Fatalf("the job left queued: %q %v", res, err)
	}
}
