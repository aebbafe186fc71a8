package store

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// Group commit. Apply does not write: it queues its records and waits. One committer
// goroutine (run) takes what is pending, applies each call's records to the mirror
// state (refusing, alone, a call whose records are invalid), appends the records it
// applied as one frame to the write-ahead log (wal.go: one append and one fdatasync
// for the whole batch), and hands the batch to the acker, which waits for its
// fdatasync while the committer goes on to the next batch and then wakes every caller
// in it with its result, in commit order (flight.go). The bolt file is not written here: the checkpointer brings it up to
// date in the background (checkpoint.go), so a commit waits for one sequential append,
// not for bbolt's two fsyncs and B+tree work.
//
// A batch closes when it holds WithMaxBatch records, when its oldest record has
// waited WithMaxDelay, or, first in practice, when records stop arriving: the
// committer yields the processor and looks again, and a yield that brought nothing
// closes the batch (gather). Records that arrive while a commit syncs go into the next
// one, written during that sync (two commits in flight at most). A fixed linger was measured first: with 64 callers all 64 were queued long
// before the millisecond ran out, and waiting it out cost 60 % of the throughput
// (34k against 86k submits/s); closing on a fruitless yield keeps the batches as full
// and a lone caller's commit immediate.
//
// Why not bbolt's own DB.Batch (for the checkpoints, or as the commit itself, the
// design before the log)? Its functions may run more than once: when one fails, the
// batch is rolled back and every function re-run in a transaction of its own (an fsync
// each), so they must be idempotent, and our functions move the mirror state forward,
// which must happen exactly once and in commit order. Here an invalid call is refused
// by the state machine before anything is written and costs the others nothing, and
// the frame holds only the records applied. A checkpoint also writes each changed row
// once however many of its commits changed it (a job submitted, started, resolved and
// collected between two checkpoints is one row delete, or nothing), which per-call
// functions cannot do.

// request is one call waiting for the committer.
type request struct {
	recs   []Record
	expire bool      // Expire: the committer makes recs from the state
	now    time.Time // Expire's now
	load   bool      // Load: the committer copies the state once the batch is committed

	at   time.Time   // when it was queued
	then func(error) // ApplyThen's callback, called instead of waking a waiter
	// lazy: nobody waits for these records (ApplyLater): they may wait up to
	// maxLazy for a commit somebody does wait for (lazy.go).
	lazy  bool
	err   error
	ids   []string // Expire's result
	state *State   // Load's result
	done  chan struct{}
}

// size is how many records the request counts for in a batch.
func (r *request) size() int { return max(len(r.recs), 1) }

// Apply queues recs for the next commit and returns once that commit is durable
// (see Store.Apply). ctx is only checked on entry: the queue never blocks, and records
// accepted are committed whatever happens to ctx.
func (b *Bolt) Apply(ctx context.Context, recs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return b.usable()
	}
	req := &request{recs: prepare(recs, b.opts.blobThreshold)}
	if err := b.enqueue(req); err != nil {
		return err
	}
	<-req.done
	return req.err
}

// ApplyThen queues recs for the next commit and returns; then learns the outcome
// from the committer (see Store.ApplyThen).
func (b *Bolt) ApplyThen(then func(error), recs ...Record) error {
	if len(recs) == 0 {
		if err := b.usable(); err != nil {
			return err
		}
		if then != nil {
			go then(nil)
		}
		return nil
	}
	if then == nil {
		then = func(error) {}
	}
	return b.enqueue(&request{recs: prepare(recs, b.opts.blobThreshold), then: then})
}

// Load returns a copy of the state as of the last commit.
func (b *Bolt) Load() (*State, error) {
	req := &request{load: true}
	if err := b.enqueue(req); err != nil {
		return nil, err
	}
	<-req.done
	return req.state, req.err
}

// Expire forgets the outcomes whose retention has passed by now, in one commit.
func (b *Bolt) Expire(ctx context.Context, now time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := &request{expire: true, now: now}
	if err := b.enqueue(req); err != nil {
		return nil, err
	}
	<-req.done
	return req.ids, req.err
}

// usable reports why the store takes no records, if it does not.
func (b *Bolt) usable() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closing:
		return ErrClosed
	case b.failed != nil:
		return b.failed
	}
	return nil
}

func (b *Bolt) enqueue(r *request) error {
	if r.then == nil {
		r.done = make(chan struct{}) // a waiter of Apply, Load or Expire
	}
	r.at = time.Now()
	b.mu.Lock()
	switch {
	case b.closing:
		b.mu.Unlock()
		return ErrClosed
	case b.failed != nil:
		b.mu.Unlock()
		return b.failed
	}
	first := len(b.pending) == 0 || (!r.lazy && b.pendingEager == 0)
	b.pending = append(b.pending, r)
	b.pendingRecs += r.size()
	if !r.lazy {
		b.pendingEager++
	}
	b.mu.Unlock()
	// The committer needs waking only when the queue was empty, or held only lazy
	// records it may be holding back (lazy.go); otherwise it is committing or
	// gathering, and will find r.
	if first {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// notifyDepth is how many commits' callbacks may wait for the notifier before the
// committer waits for it: callbacks are quick (they must not block), so it only falls
// behind for a moment.
const notifyDepth = 64

// notifier runs the ApplyThen callbacks of each commit, in commit order, off the
// committer: a callback takes its caller's locks (the master's), and the next commit's
// write and fdatasync need not wait for those.
func (b *Bolt) notifier() {
	defer close(b.notified)
	for thens := range b.notify {
		for _, r := range thens {
			r.then(r.err)
		}
	}
}

// run is the committer: the only goroutine that writes the log or the mirror. Between
// batches it answers the checkpointer's requests for a hand-over (checkpoint.go).
func (b *Bolt) run() {
	defer close(b.stopped)
	defer close(b.flights) // after the last launch: the acker ends once it is answered
	ch := newChanges()
	for {
		select {
		case req := <-b.ckReq:
			req.reply <- b.settledHandOver(req.next)
		default:
		}
		b.mu.Lock()
		n, recs, closing, eager := len(b.pending), b.pendingRecs, b.closing, b.pendingEager
		var oldest time.Time
		if n > 0 {
			oldest = b.pending[0].at
		}
		b.mu.Unlock()
		if n > 0 && eager == 0 && !closing && recs < b.opts.maxBatch {
			if wait := b.opts.maxLazy - time.Since(oldest); wait > 0 {
				b.holdLazy(wait) // until a waited-for record comes, or maxLazy
				continue
			}
		}
		if n == 0 {
			if closing {
				return
			}
			select {
			case <-b.kick:
			case req := <-b.ckReq:
				req.reply <- b.settledHandOver(req.next)
			}
			continue
		}
		if !closing && recs < b.opts.maxBatch && b.opts.maxDelay > 0 && time.Since(oldest) < b.opts.maxDelay {
			if b.gather(recs, oldest) {
				continue
			}
		}
		b.commit(b.take(), ch)
	}
}

// gather lets the batch grow while records keep arriving: it yields the processor so
// that callers already runnable (those the last commit woke) queue their records, and
// goes on while each yield brings more, until the batch holds maxBatch records or its
// oldest has waited maxDelay. A yield that brings nothing closes the batch: no caller
// is on its way, so waiting longer would only add latency. It reports whether the
// store started closing meanwhile (look again).
func (b *Bolt) gather(recs int, oldest time.Time) (closing bool) {
	for {
		runtime.Gosched()
		b.mu.Lock()
		now, closing := b.pendingRecs, b.closing
		b.mu.Unlock()
		if closing {
			return true
		}
		if now == recs || now >= b.opts.maxBatch || time.Since(oldest) >= b.opts.maxDelay {
			return false
		}
		recs = now
	}
}

// take removes the next batch from the queue: whole requests, up to maxBatch records
// (at least one request, however large).
func (b *Bolt) take() []*request {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, recs := 0, 0
	for n < len(b.pending) && (n == 0 || recs+b.pending[n].size() <= b.opts.maxBatch) {
		recs += b.pending[n].size()
		if !b.pending[n].lazy {
			b.pendingEager--
		}
		n++
	}
	batch := b.pending[:n:n]
	if n == len(b.pending) {
		b.pending = nil
	} else {
		b.pending = b.pending[n:]
	}
	b.pendingRecs -= recs
	return batch
}

// commit applies a batch to the mirror, appends what it applied to the log as one
// frame and hands the batch to the acker (flight.go), which wakes its callers once
// the frame's fdatasync has returned.
func (b *Bolt) commit(batch []*request, ch *changes) {
	f := &flight{batch: batch, start: time.Now()}
	defer func() { b.launch(f) }()
	if b.testHookCommit != nil {
		b.testHookCommit(len(batch))
	}
	b.mu.Lock()
	failed := b.failed
	b.mu.Unlock()
	if failed != nil {
		for _, r := range batch {
			r.err = failed
		}
		return
	}
	clear(ch.jobs)
	clear(ch.blobs)
	recs := b.frameRecs[:0]
	b.stateMu.Lock()
	m := b.mirror
	m.track = ch
	for _, r := range batch {
		if r.expire {
			r.ids, r.recs = expiry(m, r.now, b.opts.retention)
		}
		if len(r.recs) == 0 {
			continue
		}
		if err := m.Apply(r.recs...); err != nil {
			r.err, r.ids = err, nil
			b.rejected.Add(1)
			continue
		}
		recs = append(recs, r.recs...)
	}
	m.track = nil
	b.stateMu.Unlock()
	applied := len(recs)

	if applied > 0 {
		index, err := b.appendFrame(recs)
		clear(recs) // the records' bytes are not to be kept alive by the buffer
		if cap(recs) <= maxScratch/64 {
			b.frameRecs = recs[:0]
		}
		if err != nil {
			err = fmt.Errorf("%w: commit to %s: %w (the store applies nothing more; reopen it to replay its WAL)", ErrFailed, b.path, err)
			b.fail(err)
			for _, r := range batch {
				if r.err == nil {
					r.err, r.ids = err, nil
				}
			}
			return
		}
		b.note(ch)
		f.index, f.applied = index, applied
	}
	b.records.Add(uint64(applied))
	for _, r := range batch {
		if r.load {
			// The mirror now holds exactly what the log does; only this goroutine
			// writes it, so it is read here without the lock.
			r.state = m.Clone()
		}
	}
}

// appendFrame writes recs as the next frame of the log (its fdatasync is the
// acker's, flight.go) and returns its index. It asks for a checkpoint, which moves
// the log to a new segment, once the segment has grown past WithWALSize.
func (b *Bolt) appendFrame(recs []Record) (uint64, error) {
	buf, err := appendFrame(b.frameBuf[:0], b.nextIndex, recs)
	if cap(buf) <= maxScratch {
		b.frameBuf = buf[:0]
	}
	if err != nil {
		return 0, err
	}
	grown, err := b.seg.write(buf)
	b.walBytes.Add(grown)
	b.segSize.Store(b.seg.size)
	if err != nil {
		return 0, err
	}
	index := b.nextIndex
	b.nextIndex++
	if b.seg.size >= b.opts.walSize {
		select {
		case b.ckKick <- struct{}{}:
		default:
		}
	}
	return index, nil
}

// fail makes err the store's failure: nothing is applied after it.
func (b *Bolt) fail(err error) {
	b.opts.logger.Error("store: failed", "path", b.path, "err", err)
	b.mu.Lock()
	if b.failed == nil {
		b.failed = err
	}
	b.mu.Unlock()
}
