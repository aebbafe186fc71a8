package worker

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// DefaultDrainGrace is how long a draining worker lets running jobs finish before it
// hands them back to the master.
const DefaultDrainGrace = 30 * time.Second

// Option configures a Worker.
type Option func(*Worker)

// WithConcurrency sets how many jobs the worker runs at once (its capacity, as the
// master sees it). Default: GOMAXPROCS.
func WithConcurrency(n int) Option {
	return func(w *Worker) {
		if n > 0 {
			w.capacity = n
		}
	}
}

// WithName sets a human-readable name shown by the master (default: the host name).
func WithName(name string) Option { return func(w *Worker) { w.name = name } }

// WithID sets the worker's id (default: a new UUID per Worker).
func WithID(id string) Option {
	return func(w *Worker) {
		if id != "" {
			w.id = id
		}
	}
}

// WithLabels attaches labels the master reports (region, GPU, …).
func WithLabels(labels map[string]string) Option { return func(w *Worker) { w.labels = labels } }

// WithDrainGrace sets how long running jobs may finish after Run's context ends.
func WithDrainGrace(d time.Duration) Option { return func(w *Worker) { w.grace = d } }

// WithBanIO passes options to the worker's banio connection (token, AES key, TLS,
// heartbeat, reconnect backoff…).
func WithBanIO(opts ...banio.Option) Option {
	return func(w *Worker) { w.banioOpts = append(w.banioOpts, opts...) }
}

// WithConnectBackoff sets the policy for the first connection to the master (default:
// retry forever with jittered exponential backoff up to 10 s, until Run's context ends).
func WithConnectBackoff(newBackoff func() backoff.BackOff) Option {
	return func(w *Worker) { w.newBackoff = newBackoff }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(w *Worker) {
		if l != nil {
			w.log = l
		}
	}
}

// WithTracerProvider sets where "execute" spans go (default: the global provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(w *Worker) { w.tracerProvider = tp }
}

// WithPropagator sets how trace context is read from envelopes (default:
// protocol.DefaultPropagator, as on the master).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(w *Worker) { w.propagator = p }
}

func defaultCapacity() int { return runtime.GOMAXPROCS(0) }
