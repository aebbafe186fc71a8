package dispatch_test

import (
	"context"
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
	p := newProxy(t, f.addr)
	lost := newExecCounter(true)
	f.startWorker(p.Addr(), map[string]worker.Handler{"job": lost.handle}, worker.WithConcurrency(2), worker.WithID("doomed"))
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
	p.Refuse(true)
	p.Cut()
	defer close(lost.gate) // the cut-off worker's attempts end, and it drains at once
	healthy := newExecCounter(false)
	f.startWorker("", map[string]worker.Handler{"job": healthy.handle}, worker.WithConcurrency(2))
	for _, tk := range tks {
		if _, err := tk.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if s := f.master.Stats(); s.Retried != 2 || s.Done != 2 {
		t.Fatalf("Stats %+v: want 2 retried, 2 done", s)
	}
}
