package dispatch_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
)

// TestDurableRecordsFollowTheMaster runs a master on an in-memory store (the same code
// as a bolt-backed one) through everything that changes jobs: results, retryable and
// fatal failures, cancellations, timeouts, and workers cut off mid-job. The store's
// state machine refuses any transition the master did not make in order, so it
// refusing none, and ending with nothing unresolved, shows the master's records are
// exactly its state changes.
func TestDurableRecordsFollowTheMaster(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 1500
	mem := store.NewMem()
	ft := fleettest.New(t, nil, fleettest.WithStore(mem),
		fleettest.WithMasterOptions(dispatch.WithRetryBackoff(time.Millisecond, 5*time.Millisecond), dispatch.WithMaxAttempts(4)))
	m := ft.Master()

	var mu sync.Mutex
	tries := map[string]int{}
	handler := func(ctx context.Context, j *worker.Job) (any, error) {
		mu.Lock()
		tries[j.ID]++
		n := tries[j.ID]
		mu.Unlock()
		i, _ := strconv.Atoi(j.ID[len("j-"):])
		switch i % 5 {
		case 1: // retryable twice, then fine
			if n <= 2 {
				return nil, &worker.Error{Code: "flaky", Err: errors.New("again"), Retryable: true}
			}
		case 2:
			return nil, errors.New("fatal")
		case 3: // runs until cancelled or timed out
			<-ctx.Done()
			return nil, ctx.Err()
		}
		select {
		case <-time.After(time.Duration(i%3) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return j.Payload, nil
	}
	var workers []*fleettest.Worker
	for range 3 {
		workers = append(workers, ft.StartWorker(map[string]worker.Handler{"mix": handler}, worker.WithConcurrency(20)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tks := make([]*dispatch.Ticket, jobs)
	for i := range tks {
		jctx := ctx
		spec := dispatch.Job{ID: "j-" + strconv.Itoa(i), Type: "mix", Payload: strconv.Itoa(i)}
		if i%5 == 3 {
			if i%2 == 0 {
				spec.Timeout = 20 * time.Millisecond
			} else {
				c, stop := context.WithTimeout(ctx, 15*time.Millisecond)
				defer stop()
				jctx = c
			}
		}
		tk, err := m.Submit(jctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		tks[i] = tk
		if i%300 == 150 {
			workers[(i/300)%len(workers)].Cut() // a worker lost mid-job
		}
	}
	for i, tk := range tks {
		if _, err := tk.Wait(ctx); ctx.Err() != nil {
			t.Fatalf("job %d unresolved: %v", i, err)
		}
	}
	waitFor(t, "the store to see every job resolved", func() bool {
		s := mem.Stats()
		return s.Queued == 0 && s.Running == 0
	})
	if s := mem.Stats(); s.Rejected != 0 || s.Resolved != jobs {
		t.Fatalf("store: %d calls refused, %d outcomes held; want 0 and %d", s.Rejected, s.Resolved, jobs)
	}
}
