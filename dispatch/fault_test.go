package dispatch_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/sweep"
	"github.com/banfleet/banfleet/worker"
)

// TestManyJobsUnderConnectionCuts runs 10,000 jobs over three workers, two of them
// behind proxies that cut their connections mid-sweep. Every job must resolve exactly
// once with its own correct result.
func TestManyJobsUnderConnectionCuts(t *testing.T) {
	leakcheck.Check(t)
	const jobs, maxCuts = 10_000, 6
	f := newFleet(t, dispatch.WithMaxAttempts(20))
	double := func(ctx context.Context, j *worker.Job) (any, error) {
		n, err := strconv.Atoi(string(j.Payload))
		if err != nil {
			return nil, err
		}
		return strconv.Itoa(2 * n), nil
	}
	var cuttable []*fleettest.Worker
	for range 2 {
		cuttable = append(cuttable, f.startWorker(map[string]worker.Handler{"double": double}, worker.WithConcurrency(8)))
	}
	f.startWorker(map[string]worker.Handler{"double": double}, worker.WithConcurrency(8))

	specs := make([]dispatch.Job, jobs)
	for i := range specs {
		specs[i] = dispatch.Job{Type: "double", Payload: strconv.Itoa(i)}
	}
	s, err := sweep.Start(context.Background(), f.master, specs, sweep.Options{MaxInFlight: 256})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, jobs)
	n, cuts := 0, 0
	for r := range s.Results() {
		if r.Err != nil {
			t.Fatalf("job %d: %v", r.Index, r.Err)
		}
		if seen[r.Index] {
			t.Fatalf("job %d resolved twice", r.Index)
		}
		seen[r.Index] = true
		if want := strconv.Itoa(2 * r.Index); string(r.Result) != want {
			t.Fatalf("job %d: result %q, want %q", r.Index, r.Result, want)
		}
		n++
		if n%1500 == 0 && cuts < maxCuts {
			cuttable[cuts%2].Cut()
			cuts++
		}
	}
	if n != jobs || s.Err() != nil {
		t.Fatalf("%d of %d jobs finished; sweep error %v", n, jobs, s.Err())
	}
	st := f.master.Stats()
	if st.Done != jobs || st.Failed != 0 || st.Queued != 0 || st.InFlight != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	if cuts == 0 || st.Retried == 0 {
		t.Fatalf("the test cut %d connections and %d jobs were re-dispatched: the faults did not bite", cuts, st.Retried)
	}
	t.Logf("%d jobs, %d cuts, %d re-dispatches", jobs, cuts, st.Retried)
}
