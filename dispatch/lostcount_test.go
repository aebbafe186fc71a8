package dispatch_test

import (
	"context"
	"errors"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// TestLostWorkerCountedOncePerJob: a worker lost with two jobs running costs each of
// them one retry, not more.
func TestLostWorkerCountedOncePerJob(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	lost := newExecCounter(true)
	dw := f.startWorker(map[string]worker.Handler{"job": lost.handle}, worker.WithConcurrency(2), worker.WithID("doomed"))
	var tks []*dispatch.Ticket
	for range 2 {
		tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "job"})
		if err != nil {
			t.Fatal(err)
		}
		tks = append(tks, tk)
	}
	for range 2 {
		recv(t, lost.started, "jobs running on the doomed worker")
	}
	dw.Partition(true)
	defer close(lost.gate) // the cut-off worker's attempts end, and it drains at once
	healthy := newExecCounter(false)
	f.startWorker(map[string]worker.Handler{"job": healthy.handle}, worker.WithConcurrency(2))
	for _, tk := range tks {
		if _, err := tk.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if s := f.master.Stats(); s.Retried != 2 || s.Done != 2 {
		t.Fatalf("Stats %+v: want 2 retried, 2 done", s)
	}
}

// TestNoDispatchToAClosedConnection: when a worker's connection drops, the slots its
// lost attempts free must not be filled from the queue with jobs for that same dead
// connection. Before, each freed slot took a queued job whose envelope could never
// leave; that "attempt" lost its worker too, so a kill -9 of a capacity-2 worker showed
// 4 worker_lost events and retried=4 while the master logged inflight=2. With one
// attempt allowed, such a job failed with ErrWorkerLost without ever reaching a worker.
func TestNoDispatchToAClosedConnection(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t, dispatch.WithMaxAttempts(1))
	doomed := newExecCounter(true)
	dw := f.startWorker(map[string]worker.Handler{"job": doomed.handle}, worker.WithConcurrency(2), worker.WithID("doomed"))
	var running, queued []*dispatch.Ticket
	for i := range 4 {
		tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "job"})
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			running = append(running, tk)
			recv(t, doomed.started, "a job running on the doomed worker")
		} else {
			queued = append(queued, tk)
		}
	}
	if s := f.master.Stats(); s.Queued != 2 {
		t.Fatalf("Stats %+v: want 2 queued behind the doomed worker's 2 slots", s)
	}
	dw.Partition(true)
	defer close(doomed.gate)
	for _, tk := range running {
		if _, err := tk.Wait(context.Background()); !errors.Is(err, dispatch.ErrWorkerLost) {
			t.Fatalf("a job running on the lost worker, with one attempt: %v, want ErrWorkerLost", err)
		}
	}
	healthy := newExecCounter(false)
	f.startWorker(map[string]worker.Handler{"job": healthy.handle}, worker.WithConcurrency(2))
	for _, tk := range queued {
		if _, err := tk.Wait(context.Background()); err != nil {
			t.Fatalf("a job that was queued when the worker was lost: %v, want it run by the healthy worker", err)
		}
	}
	if s := f.master.Stats(); s.Retried != 0 || s.Done != 2 || s.Lost != 2 || s.Failed != 0 {
		t.Fatalf("Stats %+v: want 0 retried, 2 done, 2 lost and none failed", s)
	}
}
