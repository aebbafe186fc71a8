package worker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/internal/monoclock"
)

// Jobs run on the read loop. A job arrives on the connection's read loop (onJob), and
// a short one runs right there, without a goroutine hand-off: banio's RunMovable runs
// it, and should it run longer than banio's move delay (200 µs), the reading moves to
// a goroutine of its own and the job finishes where it is. For a worker answering
// short jobs the hand-off to a pool goroutine cost about a seventh of a remote call's
// CPU (dispatch's BenchmarkClient at 64 B, master and client included: 12.4 µs a call
// with it, 10.9 µs with the job run in place).
//
// A job type whose job had to be moved is marked slow, and its jobs go to the pool
// goroutines (runpool.go) instead, which costs nothing a long job would notice; a job
// of a slow type that then finishes within quickJob clears the mark. A job runs on the
// read loop only when a capacity slot is free at once (the read loop must not wait for
// one), and never once the worker drains. WithInlineJobs(false) sends every job to the
// pool.
//
// What a job on the read loop delays: the frames behind it on the same connection
// (cancels, pings, the next jobs), by at most the move delay. A job that is about to
// wait for something the read loop brings (a blob's download: Job.Blob) moves the
// reading first (banio.ClientIO.MoveReading).

// quickJob: a job of a slow type that finishes within this clears the type's mark.
const quickJob = 50 * time.Microsecond

// jobKind is a registered job type: its handler, and how its jobs have been running.
type jobKind struct {
	h Handler
	// slow: a job of this type outlasted the move delay on the read loop; its jobs run
	// on the pool until one finishes within quickJob.
	slow atomic.Bool
}

// runTimed calls the handler. A job of a slow type run on the pool (timed) is timed,
// to find out whether the type got quick again.
func (k *jobKind) runTimed(ctx context.Context, job *Job, timed bool) (any, error) {
	if !timed || !k.slow.Load() {
		return k.h(ctx, job)
	}
	start := monoclock.Now()
	defer func() {
		if monoclock.Now()-start < quickJob {
			k.slow.Store(false)
		}
	}()
	return k.h(ctx, job)
}

// takeSlot takes a capacity slot if one is free now.
func (w *Worker) takeSlot() bool {
	select {
	case w.slots <- struct{}{}:
		return true
	default:
		return false
	}
}
