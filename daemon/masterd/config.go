package masterd

import (
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
)

// Defaults of the master's flags: both on loopback, so that nothing is reachable
// from other hosts until the operator says so (the status server has no
// authentication: docs/operations.md).
const (
	DefaultListen = "127.0.0.1:6789"
	DefaultHTTP   = "127.0.0.1:6790"
)

// Config is a master daemon's command line: every flag of cmd/master. Register adds
// the flags to a flag set; Validate checks the values once they are parsed.
type Config struct {
	Listen      string // banio address
	HTTP        string // status server address; "" disables it
	Pprof       bool   // serve net/http/pprof under /debug/pprof/ on the status server
	QueueLimit  int
	MaxAttempts int
	JobTimeout  time.Duration // default per-job timeout; 0: none
	BlobBytes   int64         // blob store budget
	QueueBytes  int64         // queued payload bytes per job type
	QueueTotal  int64         // queued payload bytes over all types
	WorkerTypes int           // job types one worker may announce
	DataDir     string        // where the job store lives
	InMemory    bool          // keep no store: a restart loses every job
	OrphanGrace time.Duration // how long a restarted master waits for workers to claim their jobs
	Retention   time.Duration // how long a resolved job's outcome is kept for its caller
	Conn        daemon.Conn
	Log         daemon.Logging
	Trace       daemon.Tracing
	Cluster     ClusterFlags // -cluster and its flags (cluster.go)
}

// Register adds the master's flags to fs, with their defaults. lookupEnv is
// consulted only for the default of -data-dir (DefaultDataDir).
func (c *Config) Register(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) {
	fs.StringVar(&c.Listen, "listen", DefaultListen, "banio `address` workers and callers connect to (port 0 picks a free one)")
	fs.StringVar(&c.HTTP, "http", DefaultHTTP, "status page `address` (/, /status, /healthz, /metrics); empty disables it")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go profiles (net/http/pprof) under /debug/pprof/ on the -http listener; off by default, since a profile shows what the process holds")
	fs.IntVar(&c.QueueLimit, "queue-limit", dispatch.DefaultQueueLimit, "jobs that may wait for a worker, per job type")
	fs.IntVar(&c.MaxAttempts, "max-attempts", dispatch.DefaultMaxAttempts, "dispatches of a job before a lost worker or retryable error fails it")
	fs.DurationVar(&c.JobTimeout, "job-timeout", 0, "timeout of jobs submitted without one (0: none)")
	fs.Int64Var(&c.QueueBytes, "queue-bytes-per-type", dispatch.DefaultQueueBytesPerType, "`bytes` of jobs that may wait for a worker, per job type (payload, id, type and 1 KiB each)")
	fs.Int64Var(&c.QueueTotal, "queue-bytes", dispatch.DefaultQueueBytesTotal, "`bytes` of jobs that may wait for a worker over all job types")
	fs.IntVar(&c.WorkerTypes, "max-worker-types", dispatch.DefaultMaxWorkerTypes, "job types one worker may announce; a registration naming more is refused")
	fs.StringVar(&c.DataDir, "data-dir", DefaultDataDir(lookupEnv), "`directory` of the job store (master.db): every job is kept there until its outcome is collected, so a restarted master loses nothing")
	fs.BoolVar(&c.InMemory, "in-memory", false, "keep jobs in memory only (no -data-dir): faster to start, but a restart loses every queued and running job")
	fs.DurationVar(&c.OrphanGrace, "orphan-grace", dispatch.DefaultOrphanGrace, "after a restart, how long jobs that were running wait for their workers to reconnect and claim them before they run again")
	fs.DurationVar(&c.Retention, "result-retention", dispatch.DefaultResultRetention, "how long a job's outcome is kept after it ends, for a caller that reconnects or resubmits its id")
	fs.Int64Var(&c.BlobBytes, "blob-store-bytes", dispatch.DefaultBlobStoreBytes, "total `bytes` of blobs the master holds; past it uploads are refused (DeleteBlob frees)")
	c.Conn.RegisterServer(fs)
	c.Log.Register(fs)
	c.Trace.Register(fs)
	c.Cluster.register(fs)
}

// Validate checks the parsed values; its errors name the flag at fault.
func (c *Config) Validate() error {
	if err := c.Conn.Validate(); err != nil {
		return err
	}
	if err := c.Cluster.validate(c); err != nil {
		return err
	}
	switch {
	case c.Listen == "":
		return fmt.Errorf("-listen must not be empty")
	case c.Pprof && c.HTTP == "":
		return fmt.Errorf("-pprof serves on the status listener, which -http= disables: give -http an address, or drop -pprof")
	case c.QueueLimit < 1:
		return fmt.Errorf("-queue-limit must be at least 1, not %d", c.QueueLimit)
	case c.MaxAttempts < 1:
		return fmt.Errorf("-max-attempts must be at least 1, not %d", c.MaxAttempts)
	case c.QueueBytes < 1 || c.QueueTotal < 1:
		return fmt.Errorf("-queue-bytes-per-type and -queue-bytes must be at least 1")
	case c.WorkerTypes < 1:
		return fmt.Errorf("-max-worker-types must be at least 1, not %d", c.WorkerTypes)
	case c.BlobBytes < 1:
		return fmt.Errorf("-blob-store-bytes must be at least 1, not %d", c.BlobBytes)
	case c.JobTimeout < 0:
		return fmt.Errorf("-job-timeout must not be negative, not %s", c.JobTimeout)
	case !c.InMemory && c.DataDir == "":
		return fmt.Errorf("-data-dir is empty: give the job store a directory, or run with -in-memory to keep no store")
	case c.OrphanGrace < 0 || c.Retention < 0:
		return fmt.Errorf("-orphan-grace and -result-retention must not be negative")
	}
	return nil
}

// DefaultDataDir is where the job store lives unless -data-dir (or BANFLEET_DATA_DIR)
// says otherwise: the XDG state directory, $XDG_STATE_HOME/banfleet/master, which is
// $HOME/.local/state/banfleet/master when XDG_STATE_HOME is unset; with neither, a
// directory banfleet-master-data in the working directory. lookupEnv nil reads
// nothing.
func DefaultDataDir(lookupEnv func(string) (string, bool)) string {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	if d, ok := lookupEnv("XDG_STATE_HOME"); ok && filepath.IsAbs(d) {
		return filepath.Join(d, "banfleet", "master")
	}
	if home, ok := lookupEnv("HOME"); ok && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "banfleet", "master")
	}
	return "banfleet-master-data"
}
