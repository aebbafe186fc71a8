package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
	"weak"

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
	f.startWorker(map[string]worker.Handler{"nobody": echo})
	if res, err := keep.Wait(context.Background()); err != nil || string(res) != "kept" {
		t.Fatalf("the job left queued: %q %v", res, err)
	}
}

// TestIdleJobTypesForgotten: a job type the master has seen, but that nothing waits
// for and no worker serves, costs it nothing: its queue entry is dropped.
func TestIdleJobTypesForgotten(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	const types = 1000
	ctx, cancel := context.WithCancel(context.Background())
	var tickets []*dispatch.Ticket
	for i := range types {
		tk, err := f.master.Submit(ctx, dispatch.Job{Type: fmt.Sprintf("type-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	if _, n := dispatch.QueueRetention(f.master); n != types {
		t.Fatalf("%d type entries with a job queued in each of %d types", n, types)
	}
	cancel()
	for _, tk := range tickets {
		if _, err := tk.Wait(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled job: %v", err)
		}
	}
	if held, n := dispatch.QueueRetention(f.master); held != 0 || n != 0 {
		t.Fatalf("after every job left: %d jobs and %d type entries retained, want none", held, n)
	}
	// A served type keeps its entry while its worker lives, and loses it with it.
	rw := f.startWorker(map[string]worker.Handler{"served": echo})
	if _, n := dispatch.QueueRetention(f.master); n != 1 {
		t.Fatalf("%d type entries with one worker serving one type, want 1", n)
	}
	if _, err := f.master.Call(context.Background(), "served", "x"); err != nil {
		t.Fatal(err)
	}
	if err := rw.Stop(); err != nil {
		t.Fatal(err)
	}
	f.awaitWorkers("worker forgotten", func() bool { return len(f.master.Workers()) == 0 })
	if held, n := dispatch.QueueRetention(f.master); held != 0 || n != 0 {
		t.Fatalf("after its only worker left: %d jobs and %d type entries retained, want none", held, n)
	}
	if err := dispatch.IndexError(f.master); err != nil {
		t.Fatal(err)
	}
}

// TestClosedMasterIsCollected: once closed, a Master and everything it held (its
// retained outcomes, its connections' state) can be collected, although a remote
// caller's connection closed with it and that caller's grace period (30 s) has not
// passed. The grace timer used to hold the Master until it fired, so a process that
// opened and closed masters (tests, the benchmark's matrix) held several at once.
func TestClosedMasterIsCollected(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	f.startWorker(map[string]worker.Handler{"echo": echo})
	tk, err := f.Client().Submit(context.Background(), dispatch.Job{Type: "echo", Payload: make([]byte, 64<<10)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	master := weak.Make(f.master)
	f.master = nil
	f.StopMaster() // the Client's connection closes with the server: its grace begins
	for range 3 {
		runtime.GC()
	}
	if master.Value() != nil {
		t.Fatal("a closed Master is still reachable: something it armed holds it")
	}
}
