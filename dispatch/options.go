package dispatch

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of the Master's options.
const (
	DefaultMaxAttempts  = 3
	DefaultQueueLimit   = 100_000 // jobs per type
	DefaultRetryBackoff = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultProgressBuf  = 16

	// DefaultQueueBytesPerType bounds the bytes waiting for a worker in one job type's
	// queue (see QueuedJobOverhead for what a job counts): 256 MiB, four of banio's
	// largest frames, so that one type nobody serves cannot take the master's memory,
	// while a full queue of DefaultQueueLimit jobs with payloads of 1.5 KiB still fits.
	// Larger inputs belong in blobs (PutBlob), which jobs refer to by hash.
	DefaultQueueBytesPerType = 256 << 20
	// DefaultQueueBytesTotal bounds the bytes waiting in all queues together: 1 GiB,
	// which a master host can be expected to spare, however many types share it.
	DefaultQueueBytesTotal = 1 << 30
	// DefaultMaxWorkerTypes bounds the job types one worker may announce: 1,024, far
	// more than a worker binary registers handlers for, and few enough that indexing a
	// registration stays cheap. banio bounds a connection's subscriptions (one per
	// type) at 10,000 anyway.
	DefaultMaxWorkerTypes = 1024
)

// QueuedJobOverhead is what a queued job counts against the queue byte budgets on top
// of its payload, ID and type bytes: about what the master's record of a queued job
// costs (job, ticket, map entry, and its timeout timer and context watch: measured at
// 0.5 to 0.9 KiB), so that the budgets bound the memory of many small jobs as well as
// of a few large ones.
const QueuedJobOverhead = 1024

// Option configures a Master or a Client.
type Option func(*options)

type options struct {
	maxAttempts    int
	defaultTimeout time.Duration
	queueLimit     int
	queueBytesType int64
	queueBytesAll  int64
	maxWorkerTypes int
	retryBackoff   time.Duration
	maxBackoff     time.Duration
	logger         *slog.Logger
	tracing        tracing
	blobStoreBytes int64 // 0 → DefaultBlobStoreBytes (blob.go)
}

func defaultOptions() options {
	return options{
		maxAttempts:    DefaultMaxAttempts,
		queueLimit:     DefaultQueueLimit,
		queueBytesType: DefaultQueueBytesPerType,
		queueBytesAll:  DefaultQueueBytesTotal,
		maxWorkerTypes: DefaultMaxWorkerTypes,
		retryBackoff:   DefaultRetryBackoff,
		maxBackoff:     DefaultMaxBackoff,
		logger:         slog.New(slog.DiscardHandler),
	}
}

func buildOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	o.tracing.init()
	return o
}

// WithMaxAttempts sets how many times a job may be dispatched before a lost worker or
// a retryable failure becomes the caller's error (Job.MaxAttempts overrides it).
func WithMaxAttempts(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxAttempts = n
		}
	}
}

// WithDefaultTimeout sets the timeout of jobs that have none (Job.Timeout 0). The
// default is no timeout: the job runs until it ends or its context is cancelled.
func WithDefaultTimeout(d time.Duration) Option { return func(o *options) { o.defaultTimeout = d } }

// WithQueueLimit bounds the FIFO of jobs waiting for a worker, per job type.
func WithQueueLimit(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.queueLimit = n
		}
	}
}

// WithQueueBytesPerType bounds the bytes waiting for a worker in one job type's queue:
// each job's payload, ID and type plus QueuedJobOverhead (default
// DefaultQueueBytesPerType). A job that would pass it is refused with an error
// wrapping ErrQueueFull.
func WithQueueBytesPerType(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.queueBytesType = n
		}
	}
}

// WithQueueBytesTotal bounds the bytes waiting for a worker in all queues together,
// counted as for WithQueueBytesPerType (default DefaultQueueBytesTotal).
func WithQueueBytesTotal(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.queueBytesAll = n
		}
	}
}

// WithMaxWorkerTypes bounds the job types one worker may announce (default
// DefaultMaxWorkerTypes). A registration that names more is refused, and logged once
// per connection.
func WithMaxWorkerTypes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxWorkerTypes = n
		}
	}
}

// WithRetryBackoff sets the pause before re-dispatching a job: base doubles with each
// spent attempt up to max, with jitter.
func WithRetryBackoff(base, max time.Duration) Option {
	return func(o *options) { o.retryBackoff, o.maxBackoff = base, max }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithTracerProvider sets where spans go (default: the global TracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracing.provider = tp }
}

// WithPropagator sets how trace context travels in envelopes (default: the global
// propagator, or W3C TraceContext + Baggage when the global one is a no-op).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(o *options) { o.tracing.propagator = p }
}
