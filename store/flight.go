package store

import (
	"fmt"
	"time"
)

// Commits in flight. A commit is mostly its fdatasync, and records that arrived while
// one ran used to wait for it to end before their own batch could start: a Submit
// waited for the rest of the sync under way, then for its own. Now the committer
// writes a batch's frame, starts its fdatasync on a goroutine of its own and goes on
// to gather and write the next batch at once, so that up to commitDepth syncs run at
// the same time; two concurrent fdatasyncs of one file take about as long as one on
// this machine's ext4 (docs/benchmarks.md). The acker goroutine takes the commits in
// order, waits for each one's sync, and only then answers its callers: a batch is
// acknowledged once its own sync and every earlier one have returned, so callers hear
// in commit order, never before their records are durable, exactly as before.
//
// What it changes on disk: frame i+1 may be written before frame i's fdatasync
// returned, so a crash can tear the last commitDepth frames instead of only the last.
// Opening accepts a bad frame followed by at most commitDepth-1 valid frames at the
// very end of the log as such a tear (wal_replay.go); no caller was told any of them
// was durable. Everything that reads the log's position (a checkpoint's hand-over,
// Close) first waits for the syncs in flight (settle).

// commitDepth is how many commits may have their fdatasync running at once. Two is
// what overlaps a batch's gathering and writing with the sync before it; a third
// measured no better, since the device does not flush faster.
const commitDepth = 2

// flight is a commit whose frame is written and whose fdatasync may still run.
type flight struct {
	batch   []*request
	index   uint64 // its frame's index; 0: it wrote no frame
	applied int    // records in the frame
	start   time.Time
	synced  chan struct{} // closed when the sync returned; nil: nothing to wait for
	err     error         // the sync's, once synced is closed
}

// launch hands f to the acker, starting its sync first if it wrote a frame. It blocks
// while commitDepth commits are in flight: the acker is waiting for the oldest, and
// the one before f has not been taken yet.
func (b *Bolt) launch(f *flight) {
	if f.index != 0 && !b.opts.noSync {
		f.synced = make(chan struct{})
		seg := b.seg
		go func() {
			f.err = seg.sync()
			close(f.synced)
		}()
	}
	b.inflight.Add(1)
	b.flights <- f
}

// settle waits until every commit in flight has been answered. Only the committer
// calls it (and Add), so the wait cannot race with a new flight.
func (b *Bolt) settle() { b.inflight.Wait() }

// acker answers the commits in order, once each is durable. It ends when the
// committer closes b.flights, and then closes b.notify for the notifier.
func (b *Bolt) acker() {
	defer close(b.notify)
	for f := range b.flights {
		if f.synced != nil {
			<-f.synced
		}
		b.land(f)
		b.inflight.Done()
	}
}

// land records a commit's sync and wakes its callers.
func (b *Bolt) land(f *flight) {
	if f.index != 0 {
		b.mu.Lock()
		failed := b.failed
		b.mu.Unlock()
		err := f.err
		switch {
		case err != nil:
			err = fmt.Errorf("%w: commit to %s: %w (the store applies nothing more; reopen it to replay its WAL)", ErrFailed, b.path, err)
			b.fail(err)
		case failed != nil:
			// An earlier commit's sync failed after this one was written: its
			// records may be in the file, but the store stopped at the failure.
			err = failed
		default:
			if !b.opts.noSync {
				b.fsyncs.Add(1)
			}
			b.walIndex.Store(f.index)
			b.commitNanos.Add(int64(time.Since(f.start)))
			b.commits.Add(1)
			b.batchRecs.Add(uint64(f.applied))
			if int64(f.applied) > b.maxBatch.Load() {
				b.maxBatch.Store(int64(f.applied))
			}
		}
		if err != nil {
			for _, r := range f.batch {
				if r.err == nil {
					r.err, r.ids, r.state = err, nil, nil
				}
			}
		}
	}
	var thens []*request
	for _, r := range f.batch {
		if r.then != nil {
			thens = append(thens, r)
		} else {
			close(r.done)
		}
	}
	if len(thens) > 0 {
		b.notify <- thens
	}
}
