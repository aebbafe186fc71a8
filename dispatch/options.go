package dispatch

import (
	"log/slog"
	"time"

	"github.com/banfleet/banfleet/banio"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
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

	// DefaultResultRetention is how long the master keeps a resolved job's outcome
	// (WithResultRetention): 5 minutes, time for a Client that lost its connection or
	// its master to come back and collect it, or for a caller to resubmit the id.
	DefaultResultRetention = 5 * time.Minute
	// DefaultRetainedJobs bounds the outcomes retained at once: 100,000, the outcomes
	// of a few minutes of a busy fleet.
	DefaultRetainedJobs = 100_000
	// DefaultRetainedBytes bounds the bytes of the retained outcomes (results, error
	// texts, ids, and about 128 bytes each of bookkeeping): 256 MiB. Large results
	// belong in blobs anyway.
	DefaultRetainedBytes = 256 << 20
	// DefaultCallerGrace is how long the jobs of a remote caller whose connection
	// closed keep running before they are cancelled (WithCallerGrace): 30 seconds,
	// about what a Client takes to reconnect after a brief outage (banio's backoff
	// reaches 10 s pauses after half a minute).
	DefaultCallerGrace = 30 * time.Second

	// DefaultReconnectBudget is how long a Client's calls wait for a lost connection to
	// its master to come back before they fail with ErrMasterLost
	// (WithReconnectBudget): 1 minute.
	DefaultReconnectBudget = time.Minute
	// DefaultAttachTimeout bounds how long a reconnected Client waits for the master
	// to answer its re-attachment (fleet.attach) before it takes the master for one
	// that predates it and submits its jobs again: 5 seconds.
	DefaultAttachTimeout = 5 * time.Second
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
	meterProvider  metric.MeterProvider // nil → otel.GetMeterProvider()
	blobStoreBytes int64                // 0 → DefaultBlobStoreBytes (blob.go)
	retention      time.Duration
	retainJobs     int
	retainBytes    int64
	callerGrace    time.Duration
	orphanGrace    time.Duration
	afterCommit    bool // WithOutcomesAfterCommit (replicated.go)

	// Client only.
	banio           []banio.Option // WithBanIO
	reconnectBudget time.Duration
	attachTimeout   time.Duration
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
		retention:      DefaultResultRetention,
		retainJobs:     DefaultRetainedJobs,
		retainBytes:    DefaultRetainedBytes,
		callerGrace:    DefaultCallerGrace,
		orphanGrace:    DefaultOrphanGrace,

		reconnectBudget: DefaultReconnectBudget,
		attachTimeout:   DefaultAttachTimeout,
		logger:          slog.New(slog.DiscardHandler),
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
	if o.meterProvider == nil {
		o.meterProvider = otel.GetMeterProvider()
	}
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

// WithMeterProvider sets where the master's metrics go (default: the global
// MeterProvider, which records nothing until a program installs one with
// otel.SetMeterProvider). docs/operations.md lists the metrics. A Client has none.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider = mp }
}

// WithPropagator sets how trace context travels in envelopes (default: the global
// propagator, or W3C TraceContext + Baggage when the global one is a no-op).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(o *options) { o.tracing.propagator = p }
}

// WithResultRetention sets how long the master keeps the outcome (result or error) of
// a resolved job (default DefaultResultRetention). While an outcome is retained, a
// submission of the same id gets it without running the job again, and so does a
// Client re-attaching after a reconnect. Once it is forgotten (its period passed, or
// WithRetainedLimits made room) the id is new again: a submission runs the job anew.
// d ≤ 0 retains nothing: ids are then idempotent only while their job is unresolved.
func WithResultRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithRetainedLimits bounds the outcomes the master retains (WithResultRetention): at
// most jobs of them, of at most bytes together (results, error texts, ids, and about
// 128 bytes each of bookkeeping); defaults DefaultRetainedJobs and
// DefaultRetainedBytes. Past a bound the oldest outcome is forgotten first; an outcome
// larger than bytes is not retained. Values ≤ 0 keep the default; jobs is capped at
// 2³⁰ (the outcomes' index numbers them in 32 bits).
func WithRetainedLimits(jobs int, bytes int64) Option {
	return func(o *options) {
		if jobs > 0 {
			o.retainJobs = min(jobs, maxRetainedJobs)
		}
		if bytes > 0 {
			o.retainBytes = bytes
		}
	}
}

// WithCallerGrace sets how long the jobs of a remote caller (Client) whose connection
// closed go on running, waiting for it to re-attach (default DefaultCallerGrace). The
// jobs nobody re-attaches to within it are cancelled; their outcomes are retained as
// any other. d ≤ 0 cancels them as soon as the connection closes. A caller's explicit
// cancellation (its context, Client.Close) cancels at once regardless.
func WithCallerGrace(d time.Duration) Option { return func(o *options) { o.callerGrace = max(d, 0) } }

// WithReconnectBudget sets, for a Client, how long its calls wait for a lost
// connection to the master to come back (default DefaultReconnectBudget). Past it,
// every call still waiting fails with an error that wraps ErrMasterLost, and so does
// every new submission until the connection is back. A call's own context bounds its
// wait as well. d ≤ 0 keeps the default.
func WithReconnectBudget(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.reconnectBudget = d
		}
	}
}

// WithAttachTimeout sets, for a Client, how long it waits for the master's answer to a
// re-attachment after a reconnect (default DefaultAttachTimeout) before it resubmits
// the jobs instead, as it must with a master that does not know fleet.attach. d ≤ 0
// keeps the default.
func WithAttachTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.attachTimeout = d
		}
	}
}

// WithBanIO gives a Client options for its banio connection: the master's token
// (banio.WithToken), AES key, TLS, heartbeat, frame size, reconnect policy. Given more
// than once, the options add up, later ones winning. A Master takes its banio options
// with its ServerIO instead.
func WithBanIO(opts ...banio.Option) Option {
	return func(o *options) { o.banio = append(o.banio, opts...) }
}
