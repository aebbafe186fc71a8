package store

import (
	"fmt"
	"os"
	"slices"
)

// Opening the log. After the bolt file is loaded (its rows, and the index K of the
// last frame its checkpoint covers), openWAL reads every segment in order and applies
// the frames after K to the mirror: they were valid when the committer wrote them, and
// the state machine is deterministic, so they leave the state the crashed store had
// acknowledged. Then it checkpoints once, deletes the old segments and starts a new
// one, so a store always runs with a log holding only its own commits.
//
// What the segments may hold, and what each means:
//
//   - frames at or below K: the checkpoint covers them (a crash came between its
//     transaction and the deletion of the segment, or undid a deletion, which is
//     not synced); skipped, wherever they are;
//   - frames K+1, K+2, … in order: replayed; a gap or a step back is damage;
//   - a bad frame (cut short, or failing its CRC) with no valid frame after it but
//     the commitDepth-1 that may have been written while its fdatasync ran
//     (flight.go): writes torn by a crash, whose fdatasync never returned, so no
//     caller was told they were durable; truncated away and logged;
//   - a bad frame with a valid frame after it, or a frame whose CRC holds but whose
//     records do not decode or apply: damage, ErrCorrupt naming the segment.

// openWAL replays the log after the bolt file's checkpoint and starts a new segment.
// It runs in OpenBolt before the goroutines start.
func (b *Bolt) openWAL() error {
	b.dirtyJobs, b.dirtyBlobs = newDirty()
	segs, err := listSegments(b.path)
	if err != nil {
		return err
	}
	last, err := b.replay(segs)
	if err != nil {
		return err
	}
	b.nextIndex = last + 1
	b.walIndex.Store(last)
	for _, s := range segs {
		b.segNum = max(b.segNum, s.n)
	}
	if last > b.ckIndex {
		if err := b.writeCheckpoint(b.handOver(nil, true)); err != nil {
			return err
		}
	}
	for _, s := range segs {
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("store: remove WAL segment %s after its checkpoint: %w", s.path, err)
		}
	}
	b.walBytes.Store(0)
	if b.seg, err = b.newSegment(); err != nil {
		return err
	}
	b.segSize.Store(b.seg.size)
	return nil
}

// replay applies the frames after the checkpoint and returns the index of the last.
func (b *Bolt) replay(segs []segmentFile) (uint64, error) {
	last := b.ckIndex
	m := b.mirror
	ch := newChanges()
	m.track = ch
	defer func() { m.track = nil }()
	for i, s := range segs {
		data, err := os.ReadFile(s.path)
		if err != nil {
			return 0, fmt.Errorf("store: read WAL segment %s: %w", s.path, err)
		}
		frames, bad, err := parseSegment(data)
		if err != nil {
			return 0, corruptWAL(s.path, err)
		}
		for _, f := range frames {
			if f.index <= b.ckIndex {
				// Covered by the checkpoint: its segment outlived the checkpoint
				// (a crash before the deletion, or a deletion the crash undid).
				continue
			}
			if f.index != last+1 {
				return 0, corruptWAL(s.path, fmt.Errorf("the frame at offset %d has index %d where %d comes next (frames are missing or out of order)", f.off, f.index, last+1))
			}
			// The state keeps the records' byte slices: a copy of the frame, so that
			// they do not hold the whole segment in memory.
			recs, err := DecodeBatch(slices.Clone(f.payload))
			if err == nil {
				err = m.Apply(recs...)
			}
			if err != nil {
				return 0, corruptWAL(s.path, fmt.Errorf("frame %d at offset %d passes its checksum but does not apply to the checkpointed state: %w", f.index, f.off, err))
			}
			b.note(ch)
			clear(ch.jobs)
			clear(ch.blobs)
			last = f.index
		}
		if bad < 0 {
			continue
		}
		if f, ok := frameBeyondTear(data, bad, last); ok {
			return 0, corruptWAL(s.path, fmt.Errorf("the frame at offset %d is cut short or fails its checksum, and a valid frame (index %d, offset %d) follows it: this is damage, not a write torn by a crash", bad, f.index, f.off))
		}
		for _, later := range segs[i+1:] {
			ld, err := os.ReadFile(later.path)
			if err != nil {
				return 0, fmt.Errorf("store: read WAL segment %s: %w", later.path, err)
			}
			if fs, _, _ := parseSegment(ld); slices.ContainsFunc(fs, func(f frame) bool { return f.index > last }) {
				return 0, corruptWAL(s.path, fmt.Errorf("the frame at offset %d is cut short or fails its checksum, and segment %s holds frames after it: this is damage, not a write torn by a crash", bad, later.path))
			}
		}
		if err := b.truncateTorn(s.path, bad, len(data), last); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// frameBeyondTear returns a valid frame after the bad one at off that a crash cannot
// explain, if there is one. Frames written while the bad frame's fdatasync ran (index
// last+2 up to last+commitDepth, where last+1 is the bad frame's) can follow a torn
// one; anything else after it is damage.
func frameBeyondTear(data []byte, off int, last uint64) (frame, bool) {
	for {
		f, ok := laterFrame(data, off, last)
		if !ok {
			return frame{}, false
		}
		if f.index > last+commitDepth {
			return f, true
		}
		off = f.off
	}
}

// truncateTorn cuts a torn last frame off segment path.
func (b *Bolt) truncateTorn(path string, off, size int, last uint64) error {
	b.opts.logger.Warn("store: the WAL's last frame was torn by a crash (its commit never returned, so no caller was told it was durable); dropped it",
		"segment", path, "offset", off, "bytes", size-off, "last_index", last)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("store: truncate WAL segment %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(int64(off)); err != nil {
		return fmt.Errorf("store: truncate WAL segment %s: %w", path, err)
	}
	if !b.opts.noSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("store: truncate WAL segment %s: %w", path, err)
		}
	}
	return nil
}

// walRemedy is what an operator does about a damaged log segment.
const walRemedy = "restore the store file and its WAL from a backup, or move this segment and any after it aside to open the store as of its last checkpoint (the commits after it are then lost)"

// corruptWAL is an ErrCorrupt naming the log segment, what is wrong and what to do.
func corruptWAL(path string, cause error) error {
	return fmt.Errorf("%w: WAL segment %s: %w; %s", ErrCorrupt, path, cause, walRemedy)
}
