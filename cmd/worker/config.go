package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/worker"
)

// defaultMaster is where the worker connects unless told otherwise.
const defaultMaster = "127.0.0.1:6789"

// config is the worker's command line.
type config struct {
	Master      string
	Concurrency int
	Name        string
	ID          string
	Labels      labels
	DrainGrace  time.Duration
	BlobCache   int64  // bytes
	HTTP        string // metrics listener (/metrics, /healthz); "" disables it
	Conn        daemon.Conn
	Log         daemon.Logging
	Trace       daemon.Tracing
}

// parseConfig reads args, falling back to BANFLEET_* variables through lookupEnv.
// Usage and errors go to stderr.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (config, error) {
	var c config
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Master, "master", defaultMaster, "master `host:port`")
	fs.IntVar(&c.Concurrency, "concurrency", runtime.GOMAXPROCS(0), "jobs run at once (the default is GOMAXPROCS)")
	fs.StringVar(&c.Name, "name", host, "`name` the master shows (the default is the host name)")
	fs.StringVar(&c.ID, "id", "", "worker `id` (empty: a new UUID at each start)")
	c.Labels = labels{}
	fs.Var(&c.Labels, "labels", "labels the master shows, as `k=v,k=v`")
	fs.DurationVar(&c.DrainGrace, "drain-grace", worker.DefaultDrainGrace, "on SIGTERM/SIGINT, how long running jobs may finish before they are handed back")
	fs.StringVar(&c.HTTP, "http", "", "`address` to serve /metrics (Prometheus) and /healthz on, such as 127.0.0.1:6791 (port 0 picks a free one); empty disables it")
	fs.Int64Var(&c.BlobCache, "blob-cache", worker.DefaultBlobCacheBytes, "`bytes` of blobs (job input data) kept in memory")
	c.Conn.RegisterClient(fs)
	c.Log.Register(fs)
	c.Trace.Register(fs)
	daemon.SetUsage(fs, "worker [flags]")
	if err := daemon.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	if err := c.Conn.Validate(); err != nil {
		return c, err
	}
	switch {
	case c.Master == "":
		return c, fmt.Errorf("-master must not be empty")
	case c.Concurrency < 1:
		return c, fmt.Errorf("-concurrency must be at least 1, not %d", c.Concurrency)
	case c.DrainGrace < 0:
		return c, fmt.Errorf("-drain-grace must not be negative, not %s", c.DrainGrace)
	case c.BlobCache < 1:
		return c, fmt.Errorf("-blob-cache must be positive, not %d", c.BlobCache)
	}
	return c, nil
}

// labels is the -labels flag: "k=v,k=v". Setting it replaces earlier values.
type labels map[string]string

func (l labels) String() string {
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

func (l labels) Set(s string) error {
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
