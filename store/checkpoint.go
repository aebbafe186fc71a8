package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Checkpoints. The log (wal.go) makes commits durable; the bolt file is brought up to
// date behind it, every WithCheckpointInterval or as soon as the newest segment passes
// WithWALSize, by one checkpointer goroutine, so that opening replays only what came
// after the last checkpoint, and the log stays bounded: a checkpoint that finds the
// segment past WithWALSize moves the log to a new one and deletes the old. Segments
// are not changed at every checkpoint: a new file's first appends grow it (a journal
// commit per fdatasync until its zeros are written ahead, wal_file.go), and creating
// one costs a directory sync; a segment lives for WithWALSize bytes of commits instead
// of one interval's.
//
// The committer never waits for a checkpoint. After each commit it notes, for every
// row the batch changed, the row's entry as the mirror now holds it (dirty: a job's
// entry under its Seq, a blob's under its hash, nil for a row to delete). Entries are
// never modified once in the mirror's maps (see jobEntry and blobEntry), so these
// pointers stay valid however the mirror moves on, and nothing is copied. The
// hand-over is a message: the checkpointer asks the committer, between two batches,
// for what changed (creating first, when the segment is full, the next segment, and
// syncing its directory, for the committer to switch to); the committer answers with
// its dirty rows, the index of its last frame, the mirror's counters and, when it
// switched, the segment it stops writing, and starts afresh. The checkpointer then
// writes those rows in one bbolt transaction, with the index in the meta bucket, and
// deletes the old segment only once that transaction is durable. The committer's part
// is a few pointer swaps.
//
// A crash between the transaction and the deletion leaves a segment whose frames the
// file already covers; opening skips them. A failed checkpoint fails the store
// (ErrFailed), as a failed commit does: the log still holds every acknowledged record
// and the next open replays it.

// ckWork is what the committer hands to the checkpointer: the rows changed since the
// last hand-over and what the bolt file's meta bucket is to say once they are written.
type ckWork struct {
	jobs   map[uint64]*jobEntry  // Seq → entry; nil: delete the row
	blobs  map[string]*blobEntry // hash → entry; nil: delete the row
	index  uint64                // the last frame they cover
	seq    uint64                // the mirror's last Seq
	nJobs  int                   // rows the jobs bucket holds once written
	nBlobs int                   // rows the blobs bucket holds once written
	old    *walSegment           // the segment the committer stopped writing (closed), or nil
}

// ckRequest asks the committer to hand over, switching to segment next if it is not
// nil.
type ckRequest struct {
	next  *walSegment
	reply chan *ckWork
}

func newDirty() (map[uint64]*jobEntry, map[string]*blobEntry) {
	return make(map[uint64]*jobEntry), make(map[string]*blobEntry)
}

// note records, after a commit, the mirror's entries for the rows ch names. Only the
// committer calls it (the mirror's only writer), so the maps are read without a lock.
//
// A job submitted since the last hand-over (its Seq above handedSeq) has no row in the
// file: once it is gone from the mirror (collected), it leaves the dirty rows rather
// than becoming a row to delete. Most jobs live a few milliseconds, far less than a
// checkpoint interval, so most never cost a checkpoint anything: neither a row
// written nor a B+tree lookup to delete one that is not there. (A small saving: in a
// profile of bench's dispatch-durable-w4 the checkpointer took ~7 % of the master's
// CPU before and after, most of it bbolt's commit, its page writes and syscalls;
// writing the rows went from 3.5 to 2.7 %.)
func (b *Bolt) note(ch *changes) {
	m := b.mirror
	for seq, id := range ch.jobs {
		e := m.jobs[id]
		if e != nil && e.seq != seq {
			e = nil // id was collected and resubmitted: the old row goes
		}
		if e == nil && seq > b.handedSeq {
			delete(b.dirtyJobs, seq)
			continue
		}
		b.dirtyJobs[seq] = e
	}
	for hash := range ch.blobs {
		b.dirtyBlobs[hash] = m.blobs[hash]
	}
}

// handOver gives the checkpointer what changed since the last hand-over and, if
// rotate, makes next the segment to append to (nil: none, the store is closing). It
// runs on the committer (or, before it starts and once it has stopped, on OpenBolt
// and Close), between batches. The old segment is closed: each of its frames was
// synced before its callers were woken.
// settledHandOver is the committer's answer to a checkpoint's request: the hand-over
// once every commit in flight is durable (a checkpoint covers only synced frames, and
// a segment is closed only when no sync runs on it), or nil when the store failed,
// whose state past the failure must not reach the file.
func (b *Bolt) settledHandOver(next *walSegment) *ckWork {
	b.settle()
	b.mu.Lock()
	failed := b.failed
	b.mu.Unlock()
	if failed != nil {
		return nil
	}
	return b.handOver(next, next != nil)
}

func (b *Bolt) handOver(next *walSegment, rotate bool) *ckWork {
	m := b.mirror
	w := &ckWork{
		jobs: b.dirtyJobs, blobs: b.dirtyBlobs, index: b.nextIndex - 1,
		seq: m.seq, nJobs: len(m.jobs), nBlobs: len(m.blobs),
	}
	b.dirtyJobs, b.dirtyBlobs = newDirty()
	b.handedSeq = m.seq
	if !rotate {
		return w
	}
	w.old = b.seg
	if b.seg != nil {
		b.seg.f.Close()
	}
	b.seg = next
	if next != nil {
		b.segSize.Store(next.size)
	}
	return w
}

// checkpointer runs checkpoints until Close stops it, or one fails.
func (b *Bolt) checkpointer() {
	defer close(b.ckDone)
	t := time.NewTicker(b.opts.checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-b.ckStop:
			return
		case <-t.C:
		case <-b.ckKick:
		}
		if err := b.checkpoint(); err != nil {
			b.fail(err)
			return
		}
	}
}

// checkpoint brings the bolt file up to date with the log, if anything was committed
// since the last one, and moves the log to a new segment if its segment is full.
func (b *Bolt) checkpoint() error { return b.checkpointRotating(false) }

// checkpointRotating is checkpoint; with rotate, it moves the log to a new segment
// however full the one it has is (tests).
func (b *Bolt) checkpointRotating(rotate bool) error {
	b.ckMu.Lock()
	defer b.ckMu.Unlock()
	if b.walIndex.Load() == b.ckIndex {
		return nil
	}
	var next *walSegment
	if rotate || b.segSize.Load() >= b.opts.walSize {
		var err error
		if next, err = b.newSegment(); err != nil {
			return fmt.Errorf("%w: checkpoint of %s: %w (the store applies nothing more; reopen it to replay its WAL)", ErrFailed, b.path, err)
		}
	}
	req := ckRequest{next: next, reply: make(chan *ckWork, 1)}
	select {
	case b.ckReq <- req:
	case <-b.stopped:
		// The committer has stopped: Close makes the last checkpoint.
		if next != nil {
			next.f.Close()
			os.Remove(next.path)
			b.walBytes.Add(-next.size)
		}
		return nil
	}
	w := <-req.reply
	if w == nil {
		if next != nil {
			next.f.Close()
			os.Remove(next.path)
			b.walBytes.Add(-next.size)
		}
		return nil // the store failed: its log is left for the next open to replay
	}
	return b.writeCheckpoint(w)
}

// newSegment creates the next segment. Callers hold ckMu (or run before the
// goroutines start).
func (b *Bolt) newSegment() (*walSegment, error) {
	b.segNum++
	s, syncs, err := createSegment(b.path, b.segNum, zeroChunk(b.opts.walSize), b.opts.noSync)
	if err != nil {
		return nil, err
	}
	b.fsyncs.Add(uint64(syncs))
	b.walBytes.Add(s.size)
	return s, nil
}

// writeCheckpoint writes w's rows and index in one transaction, then deletes the
// segment w covers. Callers hold ckMu (or are alone: opening, closing).
func (b *Bolt) writeCheckpoint(w *ckWork) error {
	if w.index > b.ckIndex {
		err := guard(b.path, func() error { return b.db.Update(func(tx *bolt.Tx) error { return b.writeRows(tx, w) }) })
		if err != nil {
			return fmt.Errorf("%w: checkpoint to %s: %w (the store applies nothing more; reopen it to replay its WAL)", ErrFailed, b.path, err)
		}
		b.checkpoints.Add(1)
		if !b.opts.noSync {
			b.fsyncs.Add(2) // bbolt's: data pages, then the meta page
		}
		b.ckIndex = w.index
	}
	if w.old != nil {
		if err := os.Remove(w.old.path); err != nil {
			return fmt.Errorf("%w: remove WAL segment %s after its checkpoint: %w", ErrFailed, w.old.path, err)
		}
		b.walBytes.Add(-w.old.zeroed)
	}
	return nil
}

// maxScratch bounds the buffers kept between commits and checkpoints.
const maxScratch = 1 << 20

// writeRows writes w's rows as their entries hold them, and the meta bucket: the
// counters, the format and the last frame covered.
func (b *Bolt) writeRows(tx *bolt.Tx, w *ckWork) error {
	jobs, blobs, meta := tx.Bucket(bucketJobs), tx.Bucket(bucketBlobs), tx.Bucket(bucketMeta)
	jobs.FillPercent = jobsFillPercent
	// bbolt keeps the keys and values given to Put until the commit: they are slices
	// of buf, which only ever grows in this transaction (a slice handed out before it
	// regrew still points at the old array, which stays alive).
	buf := b.scratch[:0]
	defer func() {
		if cap(buf) <= maxScratch {
			b.scratch = buf[:0]
		}
	}()
	seqs := make([]uint64, 0, len(w.jobs))
	for seq := range w.jobs {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs) // in key order: each put lands near the last one
	for _, seq := range seqs {
		k0 := len(buf)
		buf = binary.BigEndian.AppendUint64(buf, seq)
		key := buf[k0:]
		e := w.jobs[seq]
		if e == nil {
			if err := jobs.Delete(key); err != nil {
				return err
			}
			continue
		}
		v0 := len(buf)
		buf = appendJobRow(buf, e)
		buf = seal(buf, key, v0)
		if err := jobs.Put(key, buf[v0:]); err != nil {
			return err
		}
	}
	for hash, e := range w.blobs {
		key := []byte(hash)
		if e == nil {
			if err := blobs.Delete(key); err != nil {
				return err
			}
			continue
		}
		v0 := len(buf)
		buf = appendBlobRow(buf, e)
		buf = seal(buf, key, v0)
		if err := blobs.Put(key, buf[v0:]); err != nil {
			return err
		}
	}
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{keyFormat, FormatVersion}, {keySeq, w.seq}, {keyJobs, uint64(w.nJobs)}, {keyBlobs, uint64(w.nBlobs)}, {keyWAL, w.index}} {
		if err := meta.Put(kv.k, binary.AppendUvarint(nil, kv.v)); err != nil {
			return err
		}
	}
	return nil
}

// seal appends to buf the CRC of key and the row buf[v0:].
func seal(buf, key []byte, v0 int) []byte {
	return binary.LittleEndian.AppendUint32(buf, rowSum(key, buf[v0:]))
}
