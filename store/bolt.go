package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The bolt file holds the state, not a log of records: like etcd's backend behind its
// WAL, each checkpoint (checkpoint.go) writes the rows that the commits since the last
// one changed (a job's row under its Seq, a blob's under its hash) and deletes the rows
// of collected jobs and dropped blobs, in one transaction. So the file holds what is
// live, never history, and the log beside it (wal.go) holds only the commits since the
// last checkpoint; opening reads the rows once and replays those few frames. A raft
// cluster later keeps its log where raft keeps it.
//
// Buckets:
//
//	meta   "format" → FormatVersion; "seq" → the last Seq given out; "jobs", "blobs" →
//	       how many rows the other buckets hold (a lost page shows as a mismatch);
//	       "wal" → the index of the last log frame the rows include
//	jobs   Seq as 8 bytes big-endian → job row
//	blobs  hash → blob row
//
// Every row value ends with the CRC-32C of its key and its bytes (4 bytes,
// little-endian): bbolt checks its meta pages but not its data, and a damaged row must
// be an error, not a job that silently changed.
//
// Jobs are keyed by Seq, not by id: new jobs go to the right edge of the B+tree and
// jobs submitted together share leaf pages, so a commit of a thousand jobs' records
// dirties a few pages rather than one random page per job.
//
// Bounded file under churn: bbolt never shrinks its file but reuses every page freed
// by a checkpoint once no reader still sees it (the checkpointer is the only writer
// and readers are short), so the file stays near its peak live size plus the pages
// one checkpoint rewrites, and the log stays near one segment (WithWALSize) or one
// interval's commits; TestBoltChurnBounded holds the two together to that. Compact copies a file whose
// peak has passed into a new one of its live size.

// newerRemedy is what to do about a file in a format this build does not read.
const newerRemedy = "open it with the banfleet that wrote it, or move it aside to start with an empty store"

// FormatVersion is the version of the file's layout, stored in its meta bucket.
// Format 2 added the "wal" key: the file is a checkpoint, and the log beside it holds
// the commits after it. A build that reads only format 1 would ignore that log and
// open a state missing acknowledged jobs, so it must refuse the file instead; this
// build reads format 1 files (they have no log) and writes format 2 from their first
// checkpoint on.
const FormatVersion = 2

var (
	bucketMeta  = []byte("meta")
	bucketJobs  = []byte("jobs")
	bucketBlobs = []byte("blobs")
	keyFormat   = []byte("format")
	keySeq      = []byte("seq")
	keyJobs     = []byte("jobs")
	keyBlobs    = []byte("blobs")
	keyWAL      = []byte("wal")
)

// jobsFillPercent packs the jobs bucket's pages: keys only ever grow, so a page split
// at bbolt's default of a half would leave every page half empty for good.
const jobsFillPercent = 0.9

// Bolt is the durable Store: a write-ahead log that one committer goroutine appends
// the records of many Apply calls to, one frame and one fdatasync per batch
// (committer.go, wal.go), in front of one bbolt file that a checkpointer goroutine
// keeps up to date with it in the background (checkpoint.go).
type Bolt struct {
	path string
	db   *bolt.DB
	opts options

	// mu protects the following fields: the queue between Apply and the committer.
	mu           sync.Mutex
	pending      []*request
	pendingRecs  int
	pendingEager int // requests in pending that are not lazy (lazy.go)
	closing      bool
	failed       error // the first commit or checkpoint error; nothing is applied after it

	kick    chan struct{} // wakes the committer; buffered 1
	stopped chan struct{} // closed when the committer has returned
	// notify carries each commit's ApplyThen callbacks to the notifier goroutine,
	// which runs them in commit order while the committer goes on to the next
	// commit; notified is closed when it has run the last.
	notify   chan []*request
	notified chan struct{}
	// flights carries each written commit to the acker, which answers its callers
	// once its fdatasync returned (flight.go); inflight counts those not answered.
	flights  chan *flight
	inflight sync.WaitGroup
	closed   chan struct{} // closed when Close has finished

	// stateMu guards mirror against readers (Lookup, Blob, Stats): the committer is
	// its only writer and holds the write lock only while applying records, not
	// while writing or syncing the log.
	stateMu sync.RWMutex
	mirror  *State // the state the log holds, plus the records being committed

	// The committer's own (and, before it starts and after it stops, OpenBolt's and
	// Close's): the segment it appends to, the next frame's index, the rows changed
	// since the last hand-over, and its buffers.
	seg        *walSegment
	nextIndex  uint64
	dirtyJobs  map[uint64]*jobEntry
	dirtyBlobs map[string]*blobEntry
	handedSeq  uint64 // the mirror's last Seq at the last hand-over: rows above it are not in the file
	frameBuf   []byte
	frameRecs  []Record
	walIndex   atomic.Uint64 // the last frame synced, for the checkpointer to read
	segSize    atomic.Int64  // b.seg.size, for the checkpointer to read

	// ckMu serializes checkpoints and guards what they use: the index the bolt file
	// covers, the last segment number given out, and the row buffer.
	ckMu    sync.Mutex
	ckIndex uint64
	segNum  uint64
	scratch []byte
	ckReq   chan ckRequest // to the committer; unbuffered
	ckKick  chan struct{}  // the WAL passed WithWALSize; buffered 1
	ckStop  chan struct{}  // closed by Close
	ckDone  chan struct{}  // closed when the checkpointer has returned

	records, rejected, commits, batchRecs, fsyncs, checkpoints atomic.Uint64
	maxBatch                                                   atomic.Int64
	commitNanos, walBytes                                      atomic.Int64

	// testHookCommit, when set (by tests only), is called by the committer with the
	// size of each batch before it is applied.
	testHookCommit func(requests int)
	// crashed, set by tests only, makes Close stop like a killed process: no last
	// checkpoint, the log left for the next open to replay.
	crashed bool
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens the store in the bbolt file at path, creating it if it does not
// exist (its directory must). It reads the whole state into memory and checks it:
// a file that is truncated, damaged, or not a banfleet store fails with ErrCorrupt, one
// written in an unknown format with ErrFormatVersion, one another process holds with
// ErrLocked; each error names the file and says what to do. Nothing is ever silently
// started empty over an existing file.
func OpenBolt(path string, opts ...Option) (*Bolt, error) {
	o := buildOptions(opts)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		segs, err := listSegments(path)
		if err != nil {
			return nil, err
		}
		if len(segs) > 0 {
			return nil, fmt.Errorf("%w: %s does not exist but its WAL %s does: the store file was moved or deleted; put it back, or move the WAL (%s.wal.*) aside too to start with an empty store (every job it holds is then lost)",
				ErrCorrupt, path, segs[0].path, path)
		}
		if err := createFile(path, o); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	damaged, err := checkFile(path)
	if err != nil {
		return nil, err
	}
	if damaged != nil {
		o.logger.Warn("store: one meta page of the file is damaged; opened at the commit before it (a commit torn by a crash looks like this)",
			"path", path, "damage", damaged)
	}
	var db *bolt.DB
	err = guard(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, boltOptions(o))
		return err
	})
	if err != nil {
		return nil, openError(path, err, o.lockTimeout)
	}
	b := &Bolt{
		path: path, db: db, opts: o,
		kick: make(chan struct{}, 1), stopped: make(chan struct{}), closed: make(chan struct{}),
		notify: make(chan []*request, notifyDepth), notified: make(chan struct{}),
		// The acker holds one flight and launch blocks on the next: commitDepth-2
		// more may wait between them.
		flights: make(chan *flight, commitDepth-2),
		ckReq:   make(chan ckRequest), ckKick: make(chan struct{}, 1), ckStop: make(chan struct{}), ckDone: make(chan struct{}),
	}
	if err := guard(path, b.load); err != nil {
		db.Close()
		return nil, err
	}
	if err := b.openWAL(); err != nil {
		if b.seg != nil {
			b.seg.f.Close()
		}
		db.Close()
		return nil, err
	}
	go b.run()
	go b.acker()
	go b.notifier()
	go b.checkpointer()
	return b, nil
}

func boltOptions(o options) *bolt.Options {
	return &bolt.Options{
		Timeout: o.lockTimeout,
		// The map freelist finds free runs in constant time; the array one slows
		// down as churn fragments the file.
		FreelistType: bolt.FreelistMapType,
		// The freelist is written with every commit (a page or two under churn) so
		// that opening reads it rather than walking every page of a file that may
		// be damaged.
		NoFreelistSync: false,
		NoSync:         o.noSync,
	}
}

// openError says what an error of bolt.Open means for an operator.
func openError(path string, err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s: still locked after %v: is another master running on this data dir?", ErrLocked, path, timeout)
	case errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return corruptFile(path, err)
	}
	return fmt.Errorf("store: open %s: %w", path, err)
}

// createFile makes a new, empty store at path. It is built beside it under another
// name and linked into place only once complete and synced, so that a file at path is
// always a whole store: an empty or half-written one there is damage, never a store
// whose creation was interrupted.
func createFile(path string, o options) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".new-*")
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	bo := boltOptions(o)
	bo.NoSync = false
	db, err := bolt.Open(name, 0o600, bo)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketJobs); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketBlobs); err != nil {
			return err
		}
		return meta.Put(keyFormat, binary.AppendUvarint(nil, FormatVersion))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	// Link, unlike rename, never replaces a file another process created meanwhile.
	if err := os.Link(name, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync directory %s: %w", dir, err)
	}
	return nil
}

// load reads the file's rows into the mirror, checking each. It runs under guard.
func (b *Bolt) load() error {
	return b.db.View(func(tx *bolt.Tx) error {
		meta, jobs, blobs := tx.Bucket(bucketMeta), tx.Bucket(bucketJobs), tx.Bucket(bucketBlobs)
		if meta == nil || jobs == nil || blobs == nil {
			return corruptFile(b.path, errors.New("not a banfleet store (its buckets are missing)"))
		}
		format, err := uvarintValue(meta.Get(keyFormat))
		if err != nil {
			return corruptFile(b.path, fmt.Errorf("format version: %w", err))
		}
		if format < 1 || format > FormatVersion {
			return fmt.Errorf("%w: %s is in format %d, this build reads format %d and older; %s", ErrFormatVersion, b.path, format, FormatVersion, newerRemedy)
		}
		seq, err1 := uvarintValue(meta.Get(keySeq))
		wantJobs, err2 := uvarintValue(meta.Get(keyJobs))
		wantBlobs, err3 := uvarintValue(meta.Get(keyBlobs))
		walIndex, err4 := uvarintValue(meta.Get(keyWAL)) // absent in format 1: no log
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return corruptFile(b.path, fmt.Errorf("meta bucket: %w", err))
		}
		l := newLoader()
		var nJobs, nBlobs uint64
		err = jobs.ForEach(func(k, v []byte) error {
			nJobs++
			row, err := checkRow(k, v)
			if err != nil {
				return err
			}
			if len(k) != 8 {
				return malformed("job key of %d bytes", len(k))
			}
			e, err := decodeJobRow(row, true)
			if err != nil {
				return fmt.Errorf("job row %x: %w", k, err)
			}
			if seq := binary.BigEndian.Uint64(k); e.seq != seq {
				return malformed("job row under seq %d says seq %d", seq, e.seq)
			}
			return l.job(e)
		})
		if err == nil {
			err = blobs.ForEach(func(k, v []byte) error {
				nBlobs++
				row, err := checkRow(k, v)
				if err != nil {
					return err
				}
				e, err := decodeBlobRow(row, true)
				if err != nil {
					return fmt.Errorf("blob row %.80q: %w", k, err)
				}
				return l.blob(string(k), e)
			})
		}
		if err == nil && (nJobs != wantJobs || nBlobs != wantBlobs) {
			err = malformed("%d job rows and %d blob rows, but the last commit wrote %d and %d (pages are lost)", nJobs, nBlobs, wantJobs, wantBlobs)
		}
		var st *State
		if err == nil {
			st, err = l.finish(seq)
		}
		if err != nil {
			if errors.Is(err, ErrFormatVersion) {
				return fmt.Errorf("%s: %w; %s", b.path, err, newerRemedy)
			}
			return corruptFile(b.path, err)
		}
		b.mirror = st
		b.ckIndex = walIndex
		b.handedSeq = seq
		return nil
	})
}

func uvarintValue(v []byte) (uint64, error) {
	if v == nil {
		return 0, nil
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || k != len(v) {
		return 0, malformed("bad integer value %x", v)
	}
	return n, nil
}

// rowSum is the CRC-32C of a row's key and bytes, stored after the row.
func rowSum(key, row []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, row)
}

// checkRow checks a row's CRC and returns the row without it.
func checkRow(key, v []byte) ([]byte, error) {
	if len(v) < 5 {
		return nil, malformed("row %.80q of %d bytes", key, len(v))
	}
	row := v[:len(v)-4]
	if rowSum(key, row) != binary.LittleEndian.Uint32(v[len(v)-4:]) {
		return nil, malformed("row %x fails its checksum", key)
	}
	return row, nil
}

// Path returns the file's path.
func (b *Bolt) Path() string { return b.path }

// Lookup returns what the store holds about job id, including records still being
// committed.
func (b *Bolt) Lookup(id string) JobState {
	b.stateMu.RLock()
	defer b.stateMu.RUnlock()
	return b.mirror.Lookup(id)
}

// Blob returns blob hash's bytes.
func (b *Bolt) Blob(hash string) ([]byte, error) {
	b.stateMu.RLock()
	defer b.stateMu.RUnlock()
	return blobOf(b.mirror, hash)
}

// Stats reports what the store did and holds.
func (b *Bolt) Stats() Stats {
	s := Stats{
		Records: b.records.Load(), Rejected: b.rejected.Load(), Commits: b.commits.Load(),
		Fsyncs: b.fsyncs.Load(), Checkpoints: b.checkpoints.Load(), WALBytes: b.walBytes.Load(),
		MaxBatch: int(b.maxBatch.Load()), CommitTime: time.Duration(b.commitNanos.Load()),
	}
	if s.Commits > 0 {
		s.MeanBatch = float64(b.batchRecs.Load()) / float64(s.Commits)
	}
	if fi, err := os.Stat(b.path); err == nil {
		s.FileBytes = fi.Size()
	}
	s.FreePages = b.db.Stats().FreePageN
	b.stateMu.RLock()
	s.fromState(b.mirror)
	b.stateMu.RUnlock()
	return s
}

// Close commits what is queued, stops the committer and the checkpointer, brings the
// file up to date with a last checkpoint, removes the log and closes the file. Apply
// afterwards fails with ErrClosed. A store that failed is closed without a checkpoint:
// its log is left for the next open to replay.
func (b *Bolt) Close() error {
	b.mu.Lock()
	already := b.closing
	b.closing = true
	b.mu.Unlock()
	if already {
		<-b.closed
		return nil
	}
	defer close(b.closed)
	select {
	case b.kick <- struct{}{}:
	default:
	}
	<-b.stopped
	<-b.notified
	close(b.ckStop)
	<-b.ckDone
	b.mu.Lock()
	failed := b.failed
	b.mu.Unlock()
	var err error
	switch {
	case failed == nil && !b.crashed:
		err = b.writeCheckpoint(b.handOver(nil, true))
	case b.seg != nil:
		b.seg.f.Close()
	}
	if cerr := b.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("store: close %s: %w", b.path, cerr)
	}
	return err
}
