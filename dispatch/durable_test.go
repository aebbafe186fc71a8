package dispatch_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
)

// checkRanOnce fails the test unless every job "<prefix><i>", i < n, ran exactly once.
func checkRanOnce(t *testing.T, e *execCounter, prefix string, n int) {
	t.Helper()
	for i := range n {
		if runs := e.count(prefix + strconv.Itoa(i)); runs != 1 {
			t.Fatalf("job %s%d ran %d times, want once", prefix, i, runs)
		}
	}
}

// TestDurableRestartQueued: jobs queued when the master dies (no worker yet) are in its
// store; the next master queues them again, the Client re-attaches, and each runs once.
func TestDurableRestartQueued(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 200
	f := newDurableFleet(t)
	c := newRideClient(t, f.addr)
	tks := submitMany(t, c, "queued-", jobs)
	waitFor(t, "the jobs to be queued", func() bool { return f.master.Stats().Queued == jobs })
	f.kill()
	f.restart()
	if st := f.master.Stats(); st.Queued != jobs {
		t.Fatalf("the restarted master queued %d jobs, want %d", st.Queued, jobs)
	}
	d := doubler{newExecCounter(false)}
	f.startWorker(map[string]worker.Handler{"double": d.handle}, worker.WithConcurrency(16))
	checkDoubled(t, tks)
	checkRanOnce(t, d.execCounter, "queued-", jobs)
	if s := f.storeStats(); s.Rejected != 0 {
		t.Fatalf("the store refused %d of the master's calls", s.Rejected)
	}
}

// TestDurableRestartRetainedOutcomes: jobs that ended while their Client was away are
// retained in the store; after a restart the Client collects them without any job
// running again.
func TestDurableRestartRetainedOutcomes(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 100
	f := newDurableFleet(t)
	d := doubler{newExecCounter(true)}
	f.startWorker(map[string]worker.Handler{"double": d.handle}, worker.WithConcurrency(jobs))
	c, link := f.LinkedClient()
	tks := submitMany(t, c, "kept-", jobs)
	for range jobs {
		recv(t, d.started, "jobs running")
	}
	link.Partition(true)
	waitFor(t, "the master to see its caller gone", func() bool { gone, _ := dispatch.CallerGone(f.master, "kept-0"); return gone })
	close(d.gate)
	waitFor(t, "the outcomes to be in the store", func() bool { return f.storeStats().Resolved == jobs })
	f.kill()
	f.restart()
	link.Partition(false)
	checkDoubled(t, tks)
	checkRanOnce(t, d.execCounter, "kept-", jobs)
}

// TestDurableRestartKeepsSpentAttempts: a job backing off after a retryable failure is
// queued again after a restart with the attempt it spent still counted.
func TestDurableRestartKeepsSpentAttempts(t *testing.T) {
	leakcheck.Check(t)
	f := newDurableFleet(t, dispatch.WithRetryBackoff(time.Hour, time.Hour), dispatch.WithMaxAttempts(3))
	var mu sync.Mutex
	runs := 0
	failing := func(ctx context.Context, j *worker.Job) (any, error) {
		mu.Lock()
		runs++
		mu.Unlock()
		return nil, &worker.Error{Code: "flaky", Err: errors.New("try again"), Retryable: true}
	}
	f.startWorker(map[string]worker.Handler{"flaky": failing})
	c := newRideClient(t, f.addr)
	tk, err := c.Submit(context.Background(), dispatch.Job{ID: "flaky-1", Type: "flaky"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt's end in the store", func() bool {
		return f.store.Lookup("flaky-1").Spent == 1
	})
	f.kill()
	f.restart(dispatch.WithRetryBackoff(time.Millisecond, time.Millisecond), dispatch.WithMaxAttempts(3))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = tk.Wait(ctx)
	var re *dispatch.RemoteError
	if !errors.As(err, &re) || re.Code != "flaky" || !strings.Contains(err.Error(), "flaky") {
		t.Fatalf("the job ended with %v, want the handler's error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if runs != 3 {
		t.Fatalf("the job ran %d times in all, want 3 (one before the restart, two after)", runs)
	}
}

// TestDurableIdempotentAcrossRestart: an in-process submission's outcome outlives its
// master: submitting the id to the next one returns it without running the job again.
func TestDurableIdempotentAcrossRestart(t *testing.T) {
	leakcheck.Check(t)
	f := newDurableFleet(t)
	e := newExecCounter(false)
	f.startWorker(map[string]worker.Handler{"count": e.handle})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tk, err := f.master.Submit(ctx, dispatch.Job{ID: "once", Type: "count", Payload: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := tk.Wait(ctx); err != nil || string(res) != "r:p" {
		t.Fatalf("first run: %q %v", res, err)
	}
	waitFor(t, "the outcome in the store", func() bool { return f.store.Lookup("once").Phase == store.PhaseResolved })
	f.kill()
	f.restart()
	tk, err = f.master.Submit(ctx, dispatch.Job{ID: "once", Type: "count", Payload: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := tk.Wait(ctx); err != nil || string(res) != "r:p" {
		t.Fatalf("after the restart: %q %v", res, err)
	}
	if _, err := f.master.Submit(ctx, dispatch.Job{ID: "once", Type: "other"}); !errors.Is(err, dispatch.ErrIDConflict) {
		t.Fatalf("another type under the id: %v, want ErrIDConflict", err)
	}
	if n := e.count("once"); n != 1 {
		t.Fatalf("the job ran %d times", n)
	}
}

// TestDurableRestartWithNewWorkers: the master dies with 3,000 jobs queued and running,
// and its workers go too. The next master finds the running ones orphaned; new workers
// (other ids) cannot claim them, so they run again once the orphan grace ends. Every
// ticket resolves once with its result: re-execution is allowed, loss is not.
func TestDurableRestartWithNewWorkers(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 3000
	f := newDurableFleet(t, dispatch.WithOrphanGrace(200*time.Millisecond))
	slow := func(ctx context.Context, j *worker.Job) (any, error) {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		n, _ := strconv.Atoi(string(j.Payload))
		return strconv.Itoa(2 * n), nil
	}
	var old []*fleettest.Worker
	for range 2 {
		old = append(old, f.startWorker(map[string]worker.Handler{"double": slow}, worker.WithConcurrency(32)))
	}
	c := newRideClient(t, f.addr)
	tks := submitMany(t, c, "gone-", jobs)
	waitFor(t, "some jobs done", func() bool { return f.master.Stats().Done >= jobs/5 })
	f.kill()
	for _, rw := range old {
		_ = rw.Stop()
	}
	f.restart()
	orphaned := f.master.Stats().Orphaned
	for range 2 {
		f.startWorker(map[string]worker.Handler{"double": slow}, worker.WithConcurrency(32))
	}
	checkDoubled(t, tks)
	t.Logf("%d jobs orphaned by the restart ran again after the grace", orphaned)
	if s := f.storeStats(); s.Rejected != 0 {
		t.Fatalf("the store refused %d of the master's calls", s.Rejected)
	}
}

// TestDurableStoreFailureRefusesJobs: a job the store cannot record is not accepted,
// and the master takes no more jobs once its store failed: it says so, rather than
// running work it could lose.
func TestDurableStoreFailureRefusesJobs(t *testing.T) {
	leakcheck.Check(t)
	f := newDurableFleet(t)
	f.store.crashed.Store(true)
	ctx := context.Background()
	_, err := f.master.Submit(ctx, dispatch.Job{ID: "lost", Type: "t"})
	if err == nil || !errors.Is(err, errCrashed) || !strings.Contains(err.Error(), "not accepted") {
		t.Fatalf("Submit on a failed store: %v", err)
	}
	f.store.crashed.Store(false)
	_, err = f.master.Submit(ctx, dispatch.Job{ID: "later", Type: "t"})
	if err == nil || !strings.Contains(err.Error(), "store failed") {
		t.Fatalf("Submit after the store failed: %v, want a refusal that says the store failed", err)
	}
	if js := f.store.Lookup("later"); js.Phase != store.PhaseUnknown {
		t.Fatalf("a refused job reached the store: %+v", js)
	}
}

// TestDurableRestartSurvivingWorkers: the master dies (its server closes and the
// Master is dropped without a flush) with 3,000 jobs queued, running and resolving on
// workers that survive. The next master on the same file queues what was queued and
// holds what was running until its workers claim it with their held replies. Every
// ticket resolves once with its result, and no job runs twice.
func TestDurableRestartSurvivingWorkers(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 3000
	// The grace outlasts the test: an orphan that ran again would show as a repeat.
	f := newDurableFleet(t, dispatch.WithOrphanGrace(time.Hour))
	e := newExecCounter(false)
	double := func(ctx context.Context, j *worker.Job) (any, error) {
		if _, err := e.handle(ctx, j); err != nil {
			return nil, err
		}
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		n, _ := strconv.Atoi(string(j.Payload))
		return strconv.Itoa(2 * n), nil
	}
	e.started = make(chan string, jobs*2)
	for range 3 {
		f.startWorker(map[string]worker.Handler{"double": double}, worker.WithConcurrency(16))
	}
	c := newRideClient(t, f.addr)
	tks := submitMany(t, c, "live-", jobs)
	waitFor(t, "a third of the jobs done", func() bool { return f.master.Stats().Done >= jobs/3 })
	f.kill()
	f.restart()
	orphaned := f.master.Stats().Orphaned
	checkDoubled(t, tks)
	checkRanOnce(t, e, "live-", jobs)
	if orphaned == 0 {
		t.Fatal("the restart found no job running: the test killed nothing in flight")
	}
	if st := f.master.Stats(); st.Orphaned != 0 {
		t.Fatalf("%d orphans never claimed", st.Orphaned)
	}
	t.Logf("%d running jobs re-adopted from their workers", orphaned)
}

// TestDurableBlobsSurviveRestart: a blob put on a durable master is in its store when
// PutBlob returns, and the next master holds it again, with its bytes counted.
func TestDurableBlobsSurviveRestart(t *testing.T) {
	leakcheck.Check(t)
	f := newDurableFleet(t)
	data := []byte("the bars of a sweep")
	h, err := f.master.PutBlob(data)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := f.master.PutBlob(data); err != nil || again != h {
		t.Fatalf("the same bytes again: %q, %v", again, err)
	}
	f.kill()
	f.restart()
	if st := f.master.BlobStats(); st.Count != 1 || st.Bytes != int64(len(data)) {
		t.Fatalf("after the restart the master holds %+v, want the one blob", st)
	}
	if !f.master.DeleteBlob(h) {
		t.Fatal("the restored blob could not be deleted")
	}
}
