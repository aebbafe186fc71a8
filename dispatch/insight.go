package dispatch

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// The bookkeeping behind Master.Snapshot and Master.LookupJob (introspect.go): what a
// status page shows that the counters alone cannot.
//
//   - a throughput history: the master's resolution counters (Master.resolved), read
//     once per HistoryInterval by a timer, never counted again on the job path;
//   - per worker, the attempts that ended on it by status (workerTally, one atomic add
//     per attempt), its completion rate and when it was last heard from, both sampled
//     by the same timer;
//   - the last RecentPerClass jobs resolved as failed, lost, timed out and cancelled,
//     one ring per class, so that cancelling a sweep of thousands does not push the
//     real failures out of sight. Only jobs that did not succeed are recorded there,
//     so a job that succeeds costs nothing here;
//   - per blob, its downloads.
//
// The hot path calls in with one-line hooks (noteAttempt, noteRetried, noteResolved,
// noteBlobServed) so that the dispatch files stay about dispatch.

// HistoryInterval is the length of one sample of the throughput history.
const HistoryInterval = time.Second

// HistoryLen is how many samples the history keeps: 10 minutes of HistoryInterval.
const HistoryLen = 600

// RecentPerClass is how many resolved jobs the master keeps for each not-ok outcome
// (failed, lost, timed out, cancelled) for Snapshot and LookupJob.
const RecentPerClass = 100

// maxErrorText bounds the error text of a recent job as Snapshot reports it: a
// handler's error message can be long, and a page of a hundred of them must stay
// readable.
const maxErrorText = 2 << 10

// maxBlobCounts bounds the blobs whose downloads are counted: one entry per distinct
// hash downloaded, pruned of deleted blobs when it fills.
const maxBlobCounts = 1 << 14

// insight is the master's status bookkeeping.
type insight struct {
	// mu protects the following fields. It is never held with Master.mu.
	mu      sync.Mutex
	timer   *time.Timer // the sampler; nil until started
	stopped bool
	lastAt  time.Time             // the last sample
	last    [numOutcomes]uint64   // Master.resolved at lastAt
	samples [HistoryLen]histPoint // a ring, oldest at head
	head, n int
	recent  [numOutcomes]recentRing // by class; outcomeOK's is unused
	served  map[string]uint64       // blob hash → downloads answered
}

// histPoint is one sample: the jobs resolved in the interval that ended at end.
type histPoint struct {
	end   time.Time
	dur   time.Duration
	ok    uint64 // resolved with a result
	notOK uint64 // failed, lost, timed out or cancelled
}

// recentRing holds the last RecentPerClass jobs of one class, oldest at head once it
// is full. Its buffer is made on first use: most masters never fill most rings.
type recentRing struct {
	buf  []recentJob
	next int
}

func (r *recentRing) add(rj recentJob) {
	if len(r.buf) < RecentPerClass {
		r.buf = append(r.buf, rj)
		return
	}
	r.buf[r.next] = rj
	r.next = (r.next + 1) % RecentPerClass
}

// newestFirst appends the ring's jobs to out, the most recent first.
func (r *recentRing) newestFirst(out []recentJob) []recentJob {
	for i := len(r.buf) - 1; i >= 0; i-- {
		out = append(out, r.buf[(r.next+i)%len(r.buf)])
	}
	return out
}

// recentJob is a resolved job as the rings keep it. The error is kept as it is and
// turned into text only when a snapshot asks.
type recentJob struct {
	id, typ          string
	class            outcomeClass
	err              error
	attempts, spent  int
	maxAttempts      int
	worker           string
	submitted, ended time.Time
	started          time.Time
	waited           time.Duration
}

// workerTally is a worker's share of the bookkeeping, a field of its workerState.
type workerTally struct {
	// ended counts the attempts that ended on the worker, by status: an outcomeClass,
	// or attemptHandedBack.
	ended [numOutcomes + 1]atomic.Uint64

	// guarded by Master.mu; the sampler writes them
	sampledAt time.Time // the last sample that saw the worker
	sampledOK uint64    // ended[outcomeOK] then
	rate      float64   // attempts ended ok per second, over the last sample interval
	reads     uint64    // its connection's MessagesRead at the last sample
	heard     time.Time // the sample that first saw reads change; its connection's creation before
}

// startInsight arms the sampler. Called once the master is complete (serve).
func (m *Master) startInsight() {
	ins := &m.insight
	ins.mu.Lock()
	defer ins.mu.Unlock()
	if ins.timer != nil || ins.stopped {
		return
	}
	ins.lastAt = time.Now()
	ins.timer = time.AfterFunc(HistoryInterval, m.sampleInsight)
}

// stopInsight stops the sampler for good (Close).
func (m *Master) stopInsight() {
	ins := &m.insight
	ins.mu.Lock()
	defer ins.mu.Unlock()
	ins.stopped = true
	if ins.timer != nil {
		ins.timer.Stop()
	}
}

// sampleInsight is the sampler's tick: it samples the workers and the resolution
// counters, then re-arms itself. A timer rather than a goroutine with a ticker, so that
// a Master nobody closes leaves no goroutine behind.
func (m *Master) sampleInsight() {
	m.sampleAt(time.Now())
	ins := &m.insight
	ins.mu.Lock()
	if !ins.stopped {
		ins.timer.Reset(HistoryInterval)
	}
	ins.mu.Unlock()
}

// sampleAt takes one sample as of now.
func (m *Master) sampleAt(now time.Time) {
	m.mu.Lock()
	for _, w := range m.workers {
		w.tally.sampleLocked(w, now)
	}
	m.mu.Unlock()
	var counts [numOutcomes]uint64
	for c := range counts {
		counts[c] = m.resolved[c].Load()
	}
	ins := &m.insight
	ins.mu.Lock()
	defer ins.mu.Unlock()
	p := histPoint{end: now, dur: now.Sub(ins.lastAt), ok: counts[outcomeOK] - ins.last[outcomeOK]}
	for c := outcomeError; c < numOutcomes; c++ {
		p.notOK += counts[c] - ins.last[c]
	}
	ins.last, ins.lastAt = counts, now
	if p.dur <= 0 {
		return
	}
	if ins.n < HistoryLen {
		ins.samples[(ins.head+ins.n)%HistoryLen] = p
		ins.n++
	} else {
		ins.samples[ins.head] = p
		ins.head = (ins.head + 1) % HistoryLen
	}
}

// sampleLocked updates w's rate and last-heard time. m.mu must be held.
func (t *workerTally) sampleLocked(w *workerState, now time.Time) {
	ok := t.ended[outcomeOK].Load()
	if !t.sampledAt.IsZero() {
		if d := now.Sub(t.sampledAt).Seconds(); d > 0 {
			t.rate = float64(ok-t.sampledOK) / d
		}
	}
	t.sampledAt, t.sampledOK = now, ok
	if reads := w.conn.MessagesRead(); reads != t.reads || t.heard.IsZero() {
		if t.heard.IsZero() && reads == t.reads {
			t.heard = w.conn.Created()
		} else {
			t.heard = now
		}
		t.reads = reads
	}
}

// noteAttempt counts an attempt that ended on w with err (finish).
func (m *Master) noteAttempt(w *workerState, err error) {
	c := classify(err)
	if c == outcomeError && errors.Is(err, errJobSettled) {
		c = outcomeCancelled // the job was resolved under it: Close
	}
	w.tally.ended[c].Add(1)
}

// noteRetried counts an attempt that ended on w and sends its job round again
// (retryOrFail). An envelope that never left was no attempt of w's.
func (m *Master) noteRetried(w *workerState, why retryReason) {
	if why != retryNotSent {
		w.tally.ended[retryStatus[why]].Add(1)
	}
}

// noteResolved records a job that resolved as class with err (settle, outside
// Master.mu). A job that succeeded costs nothing; one that did not is kept in its
// class's ring.
func (m *Master) noteResolved(j *job, class outcomeClass, err error) {
	if class == outcomeOK {
		return
	}
	rj := recentJob{id: j.id, typ: j.typ, class: class, err: err, maxAttempts: j.maxAttempts,
		submitted: j.submittedAt.time(), ended: time.Now()}
	m.mu.Lock()
	rj.attempts, rj.spent, rj.started, rj.waited = j.attempt, j.spent, j.startedAt.time(), j.waited
	if j.worker != nil {
		rj.worker = j.worker.info.ID
	} else if j.orphanOf != "" {
		rj.worker = j.orphanOf
	}
	m.mu.Unlock()
	ins := &m.insight
	ins.mu.Lock()
	ins.recent[class].add(rj)
	ins.mu.Unlock()
}

// noteBlobServed counts a download of blob hash (onBlobGet): delta is 1 for a
// download about to be sent, -1 to take it back when the send failed.
func (m *Master) noteBlobServed(hash string, delta int) {
	ins := &m.insight
	ins.mu.Lock()
	defer ins.mu.Unlock()
	if ins.served == nil {
		ins.served = make(map[string]uint64)
	}
	if _, ok := ins.served[hash]; !ok && len(ins.served) >= maxBlobCounts {
		for h := range ins.served {
			if _, held := m.blob(h); !held {
				delete(ins.served, h)
			}
		}
		if len(ins.served) >= maxBlobCounts {
			return
		}
	}
	if delta < 0 {
		if ins.served[hash] > 0 {
			ins.served[hash]--
		}
		return
	}
	ins.served[hash]++
}
