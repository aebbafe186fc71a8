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
)

// Option configures a Master or a Client.
type Option func(*options)

type options struct {
	maxAttempts    int
	defaultTimeout time.Duration
	queueLimit     int
	retryBackoff   time.Duration
	maxBackoff     time.Duration
	logger         *slog.Logger
	tracing        tracing
	blobStoreBytes int64 // 0 → DefaultBlobStoreBytes (blob.go)
}

func defaultOptions() options {
	return options{
		maxAttempts:  DefaultMaxAttempts,
		queueLimit:   DefaultQueueLimit,
		retryBackoff: DefaultRetryBackoff,
		maxBackoff:   DefaultMaxBackoff,
		logger:       slog.New(slog.DiscardHandler),
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
