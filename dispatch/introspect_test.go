package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// knownWorkload runs, on f's one worker (capacity 4, mixedHandlers), 3 jobs that
// succeed, 1 that fails, 1 that times out and 1 that is cancelled while it runs, and
// returns the ids of the last three.
func knownWorkload(t *testing.T, f *fleet, started chan struct{}) (failed, timedOut, cancelled string) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		if _, err := f.master.Call(ctx, "ok", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	tk, err := f.master.Submit(ctx, dispatch.Job{ID: "job-fail", Type: "fail"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(ctx); err == nil {
		t.Fatal("the failing job did not fail")
	}
	tk, err = f.master.Submit(ctx, dispatch.Job{ID: "job-timeout", Type: "wait", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job to time out running")
	if _, err := tk.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out job: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	tk, err = f.master.Submit(cctx, dispatch.Job{ID: "job-cancel", Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job to cancel running")
	cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job: %v", err)
	}
	return "job-fail", "job-timeout", "job-cancel"
}

// TestSnapshotAfterKnownWorkload: the snapshot's history, per-worker counts and rate,
// recent jobs by class, and type list say what the workload did.
func TestSnapshotAfterKnownWorkload(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	dispatch.StopSampler(f.master)
	started := make(chan struct{}, 4)
	rw := f.startWorker(mixedHandlers(started), worker.WithConcurrency(4), worker.WithName("w1"))
	t0 := time.Now()
	dispatch.SampleAt(f.master, t0)
	failedID, timedOutID, cancelledID := knownWorkload(t, f, started)
	// The attempts that ended on the worker are counted once the master handled the
	// replies; the jobs above resolved on them, so the counts are final.
	dispatch.SampleAt(f.master, t0.Add(2*time.Second))

	s := f.master.Snapshot()
	n := len(s.History.Points)
	if n != 2 {
		t.Fatalf("%d history points, want 2", n)
	}
	last := s.History.Points[n-1]
	if last.OK != 3 || last.NotOK != 3 || last.Duration != 2*time.Second || !last.End.Equal(t0.Add(2*time.Second)) {
		t.Errorf("last sample %+v: want 3 ok, 3 not ok over 2 s", last)
	}
	if s.History.Rate != 1.5 {
		t.Errorf("rate %v, want 1.5 (3 jobs in the 2 s sample)", s.History.Rate)
	}
	if len(s.Workers) != 1 {
		t.Fatalf("%d workers", len(s.Workers))
	}
	w := s.Workers[0]
	if w.ID != rw.ID() || w.Name != "w1" || w.Capacity != 4 || w.State != "ready" || w.Version == "" {
		t.Errorf("worker %+v", w)
	}
	if w.Done != 3 || w.Failed != 1 || w.TimedOut != 1 || w.Cancelled != 1 || w.Lost != 0 || w.Rate != 1.5 {
		t.Errorf("worker counts: done %d failed %d timed out %d cancelled %d lost %d rate %v; want 3 1 1 1 0 1.5",
			w.Done, w.Failed, w.TimedOut, w.Cancelled, w.Lost, w.Rate)
	}
	if w.Unsampled || !w.LastHeardAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("last heard %v (unsampled %v), want the second sample: the worker replied in between", w.LastHeardAt, w.Unsampled)
	}
	r := s.Recent
	if len(r.Failed) != 1 || len(r.TimedOut) != 1 || len(r.Cancelled) != 1 || len(r.Lost) != 0 {
		t.Fatalf("recent: %d failed, %d timed out, %d cancelled, %d lost; want 1 1 1 0", len(r.Failed), len(r.TimedOut), len(r.Cancelled), len(r.Lost))
	}
	for _, c := range []struct {
		v       dispatch.JobView
		id, out string
	}{{r.Failed[0], failedID, "error"}, {r.TimedOut[0], timedOutID, "timeout"}, {r.Cancelled[0], cancelledID, "cancelled"}} {
		v := c.v
		if v.ID != c.id || v.Outcome != c.out || v.Phase != dispatch.PhaseResolved || v.Worker != w.ID || v.Attempts != 1 ||
			v.Error == "" || v.SubmittedAt.IsZero() || v.StartedAt.IsZero() || v.ResolvedAt.Before(v.StartedAt) {
			t.Errorf("recent %s: %+v", c.id, v)
		}
	}
	if !strings.Contains(r.Failed[0].Error, "no") {
		t.Errorf("failed job's error %q lacks the handler's message", r.Failed[0].Error)
	}
	if s.Stats.Done != 3 || s.Store != nil {
		t.Errorf("stats %+v, store %v", s.Stats, s.Store)
	}
	types := map[string]dispatch.TypeState{}
	for _, ts := range s.Types {
		types[ts.Type] = ts
	}
	if ts := types["ok"]; ts.Workers != 1 || ts.FreeSlots != 4 || ts.Queued != 0 {
		t.Errorf("type ok: %+v", ts)
	}
}

// TestSnapshotBusyWorkerAndQueue: a worker with every slot taken is busy, and jobs
// that wait show in their type's depth and oldest wait.
func TestSnapshotBusyWorkerAndQueue(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started := make(chan struct{}, 4)
	f.startWorker(mixedHandlers(started), worker.WithConcurrency(2))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 {
		if _, err := f.master.Submit(ctx, dispatch.Job{Type: "wait"}); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, started, "a first job running")
	recv(t, started, "a second job running")
	if _, err := f.master.Submit(ctx, dispatch.Job{Type: "nobody-serves-this"}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	s := f.master.Snapshot()
	if w := s.Workers[0]; w.State != "busy" || w.InFlight != 2 {
		t.Errorf("worker at 2/2: state %q, inflight %d; want busy", w.State, w.InFlight)
	}
	if len(s.Types) < 3 {
		t.Fatalf("types %+v", s.Types)
	}
	// The most queued first, then by name.
	first, second := s.Types[0], s.Types[1]
	if first.Type != "nobody-serves-this" || first.Queued != 1 || first.Workers != 0 ||
		second.Type != "wait" || second.Queued != 1 || second.Workers != 1 || second.FreeSlots != 0 {
		t.Errorf("types %+v", s.Types)
	}
	if first.OldestWait <= 0 || first.OldestWait > time.Since(before)+time.Minute || first.QueuedBytes <= 0 {
		t.Errorf("oldest wait %v, bytes %d", first.OldestWait, first.QueuedBytes)
	}
}

// TestRecentRingsBoundedAndApart: each class keeps its last RecentPerClass jobs, most
// recent first, and a burst of cancellations does not push out the failures.
func TestRecentRingsBoundedAndApart(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t, dispatch.WithResultRetention(0))
	f.startWorker(mixedHandlers(nil), worker.WithConcurrency(4))
	ctx := context.Background()
	const n = dispatch.RecentPerClass + 20
	for i := range n {
		tk, err := f.master.Submit(ctx, dispatch.Job{ID: fmt.Sprintf("f%03d", i), Type: "fail"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Wait(ctx); err == nil {
			t.Fatal("no failure")
		}
	}
	// Cancelled while queued: a type nobody serves.
	for i := range n {
		cctx, cancel := context.WithCancel(ctx)
		tk, err := f.master.Submit(cctx, dispatch.Job{ID: fmt.Sprintf("c%03d", i), Type: "unserved"})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel: %v", err)
		}
	}
	r := f.master.Snapshot().Recent
	if len(r.Failed) != dispatch.RecentPerClass || len(r.Cancelled) != dispatch.RecentPerClass {
		t.Fatalf("%d failed, %d cancelled kept; want %d each", len(r.Failed), len(r.Cancelled), dispatch.RecentPerClass)
	}
	if r.Failed[0].ID != fmt.Sprintf("f%03d", n-1) || r.Failed[len(r.Failed)-1].ID != fmt.Sprintf("f%03d", n-dispatch.RecentPerClass) {
		t.Errorf("failed ring: newest %s, oldest %s", r.Failed[0].ID, r.Failed[len(r.Failed)-1].ID)
	}
	if c := r.Cancelled[0]; c.ID != fmt.Sprintf("c%03d", n-1) || c.Worker != "" || c.Attempts != 0 || !c.StartedAt.IsZero() {
		t.Errorf("a job cancelled in its queue: %+v", c)
	}
	if _, ok := f.master.LookupJob("f000"); ok {
		t.Error("a job pushed out of its ring, with nothing retained, is still found")
	}
	if v, ok := f.master.LookupJob(fmt.Sprintf("f%03d", n-1)); !ok || v.Source != "recent" || v.Outcome != "error" {
		t.Errorf("lookup of a recent failure: %+v %v", v, ok)
	}
}

// TestHistoryBounded: the history keeps HistoryLen samples, oldest first.
func TestHistoryBounded(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	dispatch.StopSampler(f.master)
	t0 := time.Now()
	const n = dispatch.HistoryLen + 50
	for i := 1; i <= n; i++ {
		dispatch.SampleAt(f.master, t0.Add(time.Duration(i)*time.Second))
	}
	h := f.master.Snapshot().History
	if len(h.Points) != dispatch.HistoryLen || h.Interval != dispatch.HistoryInterval {
		t.Fatalf("%d points, want %d", len(h.Points), dispatch.HistoryLen)
	}
	if first := h.Points[0].End; !first.Equal(t0.Add(51 * time.Second)) {
		t.Errorf("oldest point ends %v after t0, want 51 s", first.Sub(t0))
	}
	if last := h.Points[len(h.Points)-1]; !last.End.Equal(t0.Add(n*time.Second)) || last.Duration != time.Second {
		t.Errorf("newest point %+v", last)
	}
}

// TestLookupJob: a job is found queued, running and resolved, with its worker and
// attempts; an unknown id is not.
func TestLookupJob(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	started := make(chan struct{}, 1)
	rw := f.startWorker(mixedHandlers(started), worker.WithConcurrency(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running, err := f.master.Submit(ctx, dispatch.Job{ID: "running", Type: "wait"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job running")
	if _, err := f.master.Submit(ctx, dispatch.Job{ID: "queued", Type: "ok"}); err != nil {
		t.Fatal(err)
	}
	if v, ok := f.master.LookupJob("running"); !ok || v.Phase != dispatch.PhaseRunning || v.Worker != rw.ID() || v.Attempts != 1 ||
		v.Type != "wait" || v.Source != "live" || v.StartedAt.IsZero() {
		t.Errorf("running job: %+v %v", v, ok)
	}
	if v, ok := f.master.LookupJob("queued"); !ok || v.Phase != dispatch.PhaseQueued || v.Worker != "" || v.Attempts != 0 {
		t.Errorf("queued job: %+v %v", v, ok)
	}
	if _, ok := f.master.LookupJob("never-submitted"); ok {
		t.Error("an unknown id was found")
	}
	cancel()
	if _, err := running.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if v, ok := f.master.LookupJob("running"); !ok || v.Outcome != "cancelled" || v.Source != "recent" || v.Worker != rw.ID() {
		t.Errorf("cancelled job: %+v %v", v, ok)
	}
}

// TestLookupJobDurable: a durable master finds a resolved job in its store, with the
// worker that ran it.
func TestLookupJobDurable(t *testing.T) {
	leakcheck.Check(t)
	f := newDurableFleet(t)
	rw := f.startWorker(mixedHandlers(nil))
	if _, err := f.master.Call(context.Background(), "ok", "x"); err != nil {
		t.Fatal(err)
	}
	tk, err := f.master.Submit(context.Background(), dispatch.Job{ID: "done", Type: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, ok := f.master.LookupJob("done")
	if !ok || v.Source != "store" || v.Phase != dispatch.PhaseResolved || v.Outcome != "ok" || v.Worker != rw.ID() || v.Attempts != 1 || v.SubmittedAt.IsZero() {
		t.Errorf("stored job: %+v %v", v, ok)
	}
	if s := f.master.Snapshot(); s.Store == nil || s.Store.Jobs < 2 || s.Store.Commits == 0 {
		t.Errorf("store stats %+v", s.Store)
	}
}

// TestSnapshotLargestBlobs: the largest SnapshotBlobs blobs, largest first, with the
// downloads workers made.
func TestSnapshotLargestBlobs(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	var hashes []string
	for i := range dispatch.SnapshotBlobs + 3 {
		h, err := f.master.PutBlob([]byte(strings.Repeat("b", 100*(i+1))))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	biggest := hashes[len(hashes)-1]
	f.startWorker(map[string]worker.Handler{"fetch": func(ctx context.Context, j *worker.Job) (any, error) {
		_, err := j.Blob(ctx, string(j.Payload))
		return nil, err
	}})
	if _, err := f.master.Call(context.Background(), "fetch", biggest); err != nil {
		t.Fatal(err)
	}
	b := f.master.Snapshot().Blobs
	if b.Count != dispatch.SnapshotBlobs+3 || len(b.Largest) != dispatch.SnapshotBlobs {
		t.Fatalf("count %d, largest %d", b.Count, len(b.Largest))
	}
	for i, bl := range b.Largest {
		if want := int64(100 * (dispatch.SnapshotBlobs + 3 - i)); bl.Size != want {
			t.Errorf("largest[%d] is %d bytes, want %d", i, bl.Size, want)
		}
	}
	if b.Largest[0].Hash != biggest || b.Largest[0].Downloads != 1 || b.Largest[1].Downloads != 0 {
		t.Errorf("largest %+v", b.Largest[:2])
	}
}
