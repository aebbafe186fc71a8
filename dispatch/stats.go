package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/banfleet/banfleet/protocol"
)

// WorkerInfo is what a worker announces and what the master knows of it
// (Master.Workers). It is protocol.WorkerInfo, the JSON of a worker's registration.
type WorkerInfo = protocol.WorkerInfo

// Stats is a snapshot of the master's counters. Every resolved job is counted once, in
// exactly one of Done, Failed, TimedOut, Cancelled and Lost, so that their sum is the
// jobs resolved since the Master was made (a restarted durable master starts at 0).
type Stats struct {
	Workers      int            `json:"workers"`
	Capacity     int            `json:"capacity"`       // sum of the workers' capacities
	InFlight     int            `json:"inflight"`       // jobs running on workers
	Queued       int            `json:"queued"`         // jobs waiting for a worker
	QueuedByType map[string]int `json:"queued_by_type"` // the same, per job type
	Orphaned     int            `json:"orphaned"`       // running when a durable master started, not yet claimed by their workers
	Done         uint64         `json:"done"`           // resolved with a result
	// Failed counts the jobs that failed, and only those: the handler returned an
	// error (a retryable one once MaxAttempts was spent), the job was bad (its
	// envelope or result did not fit a frame, ...) or the store refused it. Until
	// timeouts, cancellations and lost workers were counted apart it counted every
	// error.
	Failed     uint64  `json:"failed"`
	TimedOut   uint64  `json:"timed_out"`  // its timeout or its caller's deadline passed (context.DeadlineExceeded)
	Cancelled  uint64  `json:"cancelled"`  // its caller cancelled it (context.Canceled), or Master.Close ended it (ErrClosed)
	Lost       uint64  `json:"lost"`       // its attempts ran out with its worker lost (ErrWorkerLost)
	Retried    uint64  `json:"retried"`    // re-dispatches (lost worker, retryable error, hand-back)
	Throughput float64 `json:"throughput"` // jobs done per second, last 10 s
}

// Workers returns what the master knows of its workers, in registration order.
func (m *Master) Workers() []WorkerInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]WorkerInfo, 0, len(m.workers))
	for _, w := range m.workers {
		info := w.info
		info.InFlight, info.Draining = w.inflight, w.draining
		info.Types = slices.Clone(info.Types)
		out = append(out, info)
	}
	return out
}

// Stats returns the master's counters.
func (m *Master) Stats() Stats {
	m.mu.Lock()
	s := Stats{Workers: len(m.workers), QueuedByType: make(map[string]int)}
	for _, w := range m.workers {
		s.Capacity += w.info.Capacity
		s.InFlight += w.inflight
	}
	for _, set := range m.orphans {
		s.Orphaned += len(set)
	}
	for typ, jt := range m.types {
		if n := jt.queue.n; n > 0 {
			s.QueuedByType[typ] = n
			s.Queued += n
		}
	}
	m.mu.Unlock()
	r := &m.resolved
	s.Done, s.Failed, s.TimedOut = r[outcomeOK].Load(), r[outcomeError].Load(), r[outcomeTimeout].Load()
	s.Cancelled, s.Lost = r[outcomeCancelled].Load(), r[outcomeLost].Load()
	s.Retried = m.retried.Load()
	s.Throughput = m.meter.rate(instantNow())
	return s
}

// outcomeClass is how a resolved job is counted, in Stats and in the metrics
// (banfleet.jobs.completed's status, and an attempt's in banfleet.job.run.duration).
type outcomeClass uint8

const (
	outcomeOK        outcomeClass = iota // a result
	outcomeError                         // the handler's error, a bad job
	outcomeTimeout                       // context.DeadlineExceeded
	outcomeCancelled                     // context.Canceled, ErrClosed
	outcomeLost                          // ErrWorkerLost
	numOutcomes
)

// outcomeNames are the classes' status label values.
var outcomeNames = [numOutcomes]string{"ok", "error", "timeout", "cancelled", "lost"}

// classify says how the outcome err counts, by the sentinel its chain holds.
func classify(err error) outcomeClass {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, context.DeadlineExceeded):
		return outcomeTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, ErrClosed):
		return outcomeCancelled
	case errors.Is(err, ErrWorkerLost):
		return outcomeLost
	}
	return outcomeError
}

// rateMeter counts events per second over a sliding window.
type rateMeter struct {
	mu      sync.Mutex
	buckets [rateWindow]struct {
		sec   int64
		count uint64
	}
}

const rateWindow = 10 // seconds

// tick counts one event at now.
func (r *rateMeter) tick(now instant) {
	sec := int64(now) / int64(time.Second)
	r.mu.Lock()
	b := &r.buckets[sec%rateWindow]
	if b.sec != sec {
		b.sec, b.count = sec, 0
	}
	b.count++
	r.mu.Unlock()
}

// rate is the average per second over the last full window seconds.
func (r *rateMeter) rate(now instant) float64 {
	sec := int64(now) / int64(time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	var n uint64
	for _, b := range r.buckets {
		if b.sec < sec && b.sec >= sec-rateWindow {
			n += b.count
		}
	}
	return float64(n) / rateWindow
}
