package dispatch

import (
	"slices"
	"sync"
	"time"

	"github.com/banfleet/banfleet/protocol"
)

// WorkerInfo is what a worker announces and what the master knows of it
// (Master.Workers). It is protocol.WorkerInfo, the JSON of a worker's registration.
type WorkerInfo = protocol.WorkerInfo

// Stats is a snapshot of the master's counters.
type Stats struct {
	Workers      int            `json:"workers"`
	Capacity     int            `json:"capacity"`       // sum of the workers' capacities
	InFlight     int            `json:"inflight"`       // jobs running on workers
	Queued       int            `json:"queued"`         // jobs waiting for a worker
	QueuedByType map[string]int `json:"queued_by_type"` // the same, per job type
	Orphaned     int            `json:"orphaned"`       // running when a durable master started, not yet claimed by their workers
	Done         uint64         `json:"done"`           // resolved with a result
	Failed       uint64         `json:"failed"`         // resolved with an error
	Retried      uint64         `json:"retried"`        // re-dispatches (lost worker, retryable error, hand-back)
	Throughput   float64        `json:"throughput"`     // jobs done per second, last 10 s
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
	s.Done, s.Failed, s.Retried = m.done.Load(), m.failed.Load(), m.retried.Load()
	s.Throughput = m.meter.rate(time.Now())
	return s
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

func (r *rateMeter) tick() {
	sec := time.Now().Unix()
	r.mu.Lock()
	b := &r.buckets[sec%rateWindow]
	if b.sec != sec {
		b.sec, b.count = sec, 0
	}
	b.count++
	r.mu.Unlock()
}

// rate is the average per second over the last full window seconds.
func (r *rateMeter) rate(now time.Time) float64 {
	sec := now.Unix()
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
