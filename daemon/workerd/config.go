package workerd

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/worker"
)

// DefaultMaster is where a worker connects unless -master (BANFLEET_MASTER) says
// otherwise: a master on the same host, at cmd/master's default -listen.
const DefaultMaster = "127.0.0.1:6789"

// Config is a worker daemon's command line: every flag of cmd/worker. Register adds
// the flags to a flag set; Validate checks the values once they are parsed.
type Config struct {
	Master      string        // -master: the master's host:port, passed to worker.New unchanged
	Concurrency int           // -concurrency: jobs run at once
	Name        string        // -name: the name the master shows
	ID          string        // -id: worker id; "" is a new UUID at each start
	Labels      Labels        // -labels: k=v pairs the master shows
	DrainGrace  time.Duration // -drain-grace: how long running jobs may finish at shutdown
	BlobCache   int64         // -blob-cache: bytes of blobs kept in memory
	HTTP        string        // -http: metrics listener (/metrics, /healthz); "" disables it
	Conn        daemon.Conn
	Log         daemon.Logging
	Trace       daemon.Tracing
}

// Register adds the worker's flags to fs, with their defaults.
func (c *Config) Register(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.Master, "master", DefaultMaster, "master `host:port`, or every member of a cluster of masters as a comma-separated list (the worker follows the leader)")
	fs.IntVar(&c.Concurrency, "concurrency", runtime.GOMAXPROCS(0), "jobs run at once (the default is GOMAXPROCS)")
	fs.StringVar(&c.Name, "name", host, "`name` the master shows (the default is the host name)")
	fs.StringVar(&c.ID, "id", "", "worker `id` (empty: a new UUID at each start)")
	c.Labels = Labels{}
	fs.Var(&c.Labels, "labels", "labels the master shows, as `k=v,k=v`")
	fs.DurationVar(&c.DrainGrace, "drain-grace", worker.DefaultDrainGrace, "on SIGTERM/SIGINT, how long running jobs may finish before they are handed back")
	fs.StringVar(&c.HTTP, "http", "", "`address` to serve /metrics (Prometheus) and /healthz on, such as 127.0.0.1:6791 (port 0 picks a free one); empty disables it")
	fs.Int64Var(&c.BlobCache, "blob-cache", worker.DefaultBlobCacheBytes, "`bytes` of blobs (job input data) kept in memory")
	c.Conn.RegisterClient(fs)
	c.Log.Register(fs)
	c.Trace.Register(fs)
}

// Validate checks the parsed values; its errors name the flag at fault.
func (c *Config) Validate() error {
	if err := c.Conn.Validate(); err != nil {
		return err
	}
	switch {
	case c.Master == "":
		return fmt.Errorf("-master must not be empty")
	case c.Concurrency < 1:
		return fmt.Errorf("-concurrency must be at least 1, not %d", c.Concurrency)
	case c.DrainGrace < 0:
		return fmt.Errorf("-drain-grace must not be negative, not %s", c.DrainGrace)
	case c.BlobCache < 1:
		return fmt.Errorf("-blob-cache must be positive, not %d", c.BlobCache)
	}
	return nil
}

// Labels is the -labels flag: "k=v,k=v". Setting it replaces earlier values.
type Labels map[string]string

// String lists the labels as k=v pairs sorted by key.
func (l Labels) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// Set replaces the labels with those in s ("k=v,k=v"; blanks around keys and values
// are trimmed, empty parts skipped).
func (l Labels) Set(s string) error {
	clear(l)
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("label %q is not key=value", part)
		}
		l[k] = strings.TrimSpace(v)
	}
	return nil
}
