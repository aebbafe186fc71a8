package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/leakcheck"
)

// poolCounted starts a worker for addr whose jobs of types "t" and "u" go to h, counting the
// jobs that start on a pool goroutine rather than on the read loop.
func poolCounted(t *testing.T, addr string, h Handler, opts ...Option) (*runningWorker, *atomic.Int64) {
	t.Helper()
	opts = append([]Option{WithBanIO(banio.WithReconnectBackoff(fastBackoff))}, opts...)
	w := New(addr, opts...)
	w.Handle("t", h)
	w.Handle("u", h)
	pooled := new(atomic.Int64)
	w.pool.exec = func(tk *task) {
		pooled.Add(1)
		w.execute(tk)
	}
	return runWorker(t, w), pooled
}

// Short jobs run on the read loop; one that blocks lets the next jobs be read and
// answered meanwhile, and marks its type slow, whose jobs then run on the pool until
// one of them is quick again.
func TestJobsRunOnTheReadLoopUntilOneBlocks(t *testing.T) {
	leakcheck.Check(t)
	m := startTestMaster(t, "127.0.0.1:0")
	started, release := make(chan struct{}), make(chan struct{})
	rw, pooled := poolCounted(t, m.addr, func(ctx context.Context, j *Job) (any, error) {
		if string(j.Payload) == "block" {
			close(started)
			<-release
		}
		return j.Payload, nil
	})
	_, c := m.registered()
	kind := rw.handlers["t"]

	m.dispatch(c, "t", "blocks", 1, []byte("block"))
	<-started
	// Another type: a job of this one could be moved too, on a slow machine, and a quick
	// one of the same type run on the pool would clear the mark this test looks for.
	m.dispatch(c, "u", "meanwhile", 1, []byte("quick"))
	m.replied("meanwhile", 1) // read and answered while "blocks" blocks
	close(release)
	m.replied("blocks", 1)
	until(t, "the type marked slow", kind.slow.Load)
	if n := pooled.Load(); n != 0 {
		t.Fatalf("%d jobs ran on the pool before the type was slow, want 0", n)
	}

	// A slow type's jobs run on the pool; the first quick one there clears the mark
	// (a few tries: a job descheduled for longer than quickJob does not count).
	for i := 0; kind.slow.Load(); i++ {
		if i == 50 {
			t.Fatal("50 quick jobs on the pool did not clear the slow mark")
		}
		id := fmt.Sprintf("pooled-%d", i)
		m.dispatch(c, "t", id, 1, []byte("quick"))
		m.replied(id, 1)
		if n := pooled.Load(); n != int64(i+1) {
			t.Fatalf("job %d of a slow type: %d jobs on the pool, want %d", i, n, i+1)
		}
	}
	before := pooled.Load()
	m.dispatch(c, "t", "inline-again", 1, []byte("quick"))
	m.replied("inline-again", 1)
	if n := pooled.Load(); n != before {
		t.Fatalf("a job of a type quick again ran on the pool (%d pool jobs, want %d)", n, before)
	}
}

// WithInlineJobs(false) sends every job to the pool.
func TestWithoutInlineJobsEveryJobRunsOnThePool(t *testing.T) {
	leakcheck.Check(t)
	m := startTestMaster(t, "127.0.0.1:0")
	_, pooled := poolCounted(t, m.addr, func(ctx context.Context, j *Job) (any, error) {
		return j.Payload, nil
	}, WithInlineJobs(false))
	_, c := m.registered()
	for i := range 3 {
		id := fmt.Sprintf("job-%d", i)
		m.dispatch(c, "t", id, 1, []byte("x"))
		m.replied(id, 1)
	}
	if n := pooled.Load(); n != 3 {
		t.Fatalf("%d of 3 jobs ran on the pool with inline jobs off", n)
	}
}
