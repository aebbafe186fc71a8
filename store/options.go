package store

import (
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	// DefaultRetention is how long a resolved job's outcome is held before Expire
	// forgets it (WithRetention): long enough for a remote caller whose connection
	// dropped, or whose master restarted, to reconnect and collect it; short enough
	// that a busy master's resolved jobs do not pile up (10 minutes at 10,000 jobs/s
	// is 6 million outcomes, a few hundred MiB of 64-byte results).
	DefaultRetention = 10 * time.Minute
	// DefaultMaxBatch is how many records the bolt store's committer puts in one
	// transaction at most (WithMaxBatch). Past a few hundred records a larger batch
	// saves little (the fsync is already shared) while its transaction keeps growing;
	// 1024 records of 64-byte jobs are about 200 KiB of rows.
	DefaultMaxBatch = 1024
	// DefaultMaxDelay is the longest the committer lets the oldest pending record
	// wait for others to join its batch (WithMaxDelay). It gathers only while records
	// keep arriving (committer.go), so this bounds what a steady trickle of callers
	// can add to a commit's latency: about one fsync of a slow disk.
	DefaultMaxDelay = time.Millisecond
	// DefaultMaxLazy is the longest records queued with ApplyLater wait for a commit
	// somebody waits for before they are committed on their own (WithMaxLazy).
	DefaultMaxLazy = 2 * time.Millisecond
	// DefaultLockTimeout is how long OpenBolt waits for the file's lock (another
	// process has it open) before failing with ErrLocked (WithLockTimeout): a master
	// restarted while its predecessor is still exiting gets a second; a second master
	// started by mistake on the same data directory fails fast.
	DefaultLockTimeout = time.Second
	// DefaultCheckpointInterval is how often the bolt store's checkpointer writes
	// what was committed to the log into the bolt file (WithCheckpointInterval).
	// Rows changed many times between two checkpoints are written once, so a longer
	// interval writes less; what the log must replay after a crash, and its size,
	// grow with it. A tenth of a second of a busy master's commits replays in a few
	// milliseconds.
	DefaultCheckpointInterval = 100 * time.Millisecond
	// DefaultWALSize is the log segment size past which a checkpoint starts without
	// waiting for the interval and moves the log to a new segment (WithWALSize): the
	// log holds about two segments at most. A segment lives for this many bytes of
	// commits rather than for one checkpoint interval, because creating a file costs
	// a directory sync and its first appends grow it (wal.go); and no longer, because
	// opening after a crash reads the whole log: on a loaded machine a full segment of
	// 16 MiB opened in 0.14 s when checkpoints had kept up (1.1 s when all of its
	// 266,000 records had to be replayed; 64 MiB took 1.0 and 3.1 s).
	DefaultWALSize = 16 << 20
)

// Option configures a store. Options a store has no use for are ignored (NewMem has
// no file, so no batch, delay, lock or sync).
type Option func(*options)

type options struct {
	blobThreshold      int
	retention          time.Duration
	maxBatch           int
	maxDelay           time.Duration
	maxLazy            time.Duration
	lockTimeout        time.Duration
	checkpointInterval time.Duration
	walSize            int64
	noSync             bool
	logger             *slog.Logger
}

func buildOptions(opts []Option) options {
	o := options{
		blobThreshold:      DefaultBlobThreshold,
		retention:          DefaultRetention,
		maxBatch:           DefaultMaxBatch,
		maxDelay:           DefaultMaxDelay,
		maxLazy:            DefaultMaxLazy,
		lockTimeout:        DefaultLockTimeout,
		checkpointInterval: DefaultCheckpointInterval,
		walSize:            DefaultWALSize,
		logger:             slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithBlobThreshold sets the payload and result size, in bytes, from which Apply holds
// it once as a blob and the job refers to it (default DefaultBlobThreshold). n <= 0
// keeps the default.
func WithBlobThreshold(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.blobThreshold = n
		}
	}
}

// WithRetention sets how long Expire keeps a resolved job's outcome (default
// DefaultRetention). d <= 0 keeps the default.
func WithRetention(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.retention = d
		}
	}
}

// WithMaxBatch sets how many records one commit of the bolt store holds at most
// (default DefaultMaxBatch). A single Apply call with more records is still committed
// whole, in a batch of its own. n <= 0 keeps the default.
func WithMaxBatch(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBatch = n
		}
	}
}

// WithMaxLazy sets how long records queued with ApplyLater may wait for a commit
// somebody waits for (default DefaultMaxLazy); 0 commits them like any others.
func WithMaxLazy(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.maxLazy = d
		}
	}
}

// WithMaxDelay sets the longest the bolt store's committer gathers records into a
// batch after the oldest of them arrived (default DefaultMaxDelay); it stops sooner
// when no more are arriving. 0 commits at once whatever is pending: batches then form
// only from what arrives during the previous commit. d < 0 keeps the default.
func WithMaxDelay(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.maxDelay = d
		}
	}
}

// WithLockTimeout sets how long OpenBolt waits for a file another process holds
// (default DefaultLockTimeout). d <= 0 keeps the default: waiting forever is never
// what a master wants.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lockTimeout = d
		}
	}
}

// WithCheckpointInterval sets how often the bolt store writes its log's commits into
// the bolt file (default DefaultCheckpointInterval). d <= 0 keeps the default.
func WithCheckpointInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.checkpointInterval = d
		}
	}
}

// WithWALSize sets the log segment size, in bytes, from which the bolt store
// checkpoints at once rather than at the next interval and starts a new segment
// (default DefaultWALSize). n <= 0 keeps the default.
func WithWALSize(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.walSize = n
		}
	}
}

// WithNoSync commits without fsync (of the log, its directory, or the bolt file's
// checkpoints): Apply returns once its records are written to the operating system,
// not to the disk. A machine crash may then lose or tear the
// last commits. For tests and benchmarks only.
func WithNoSync(b bool) Option {
	return func(o *options) { o.noSync = b }
}

// WithLogger sets where the store logs what an operator should know (a damaged meta
// page it recovered from, a failed commit). Default: nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}
