package worker

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// DefaultDrainGrace is how long a draining worker lets running jobs finish before it
// hands them back to the master.
const DefaultDrainGrace = 30 * time.Second

// DefaultHeldReplyBytes bounds the replies a worker holds while the master is away
// (see WithHeldReplyBytes).
const DefaultHeldReplyBytes = 64 << 20

// DefaultReplyLinger is how long a sent reply is kept in case the connection drops
// before the master had it (see WithReplyLinger).
const DefaultReplyLinger = 5 * time.Second

// DefaultReplyLingerBytes bounds the bytes of the replies kept for the linger window
// (see WithReplyLingerBytes): 16 MiB, more than a loopback or LAN connection's socket
// buffers hold at both ends, which is what a reply written before a drop can be lost in.
const DefaultReplyLingerBytes = 16 << 20

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

// WithInlineJobs says whether short jobs may run on the connection's read loop, which
// saves them a goroutine hand-off each (see inline.go; a job that runs long moves the
// reading elsewhere within 200 µs). Default: true. Turn it off for handlers that must
// never share a goroutine with the connection, such as ones that lock their OS thread.
func WithInlineJobs(on bool) Option { return func(w *Worker) { w.inline = on } }

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

// WithHeldReplyBytes bounds the bytes of the replies (headers and results) the worker
// holds while its connection to the master is down, to send them when it registers
// again; the count is bounded by protocol.MaxHeldAttempts. The same bounds apply to
// the replies kept for WithReplyLinger, within their own smaller byte bound
// (WithReplyLingerBytes). A reply past either bound is dropped, with one
// warning per outage: the master runs that job again once its grace for the lost
// attempt is over. 0 holds no replies; a negative n is ignored. Default:
// DefaultHeldReplyBytes.
func WithHeldReplyBytes(n int) Option {
	return func(w *Worker) {
		if n >= 0 {
			w.heldBytes = n
		}
	}
}

// WithReplyLinger sets how long a sent reply is remembered. A reply written just
// before the connection drops may never reach the master (it was still in a socket
// buffer, or a master killed before it stored the outcome); when the connection is
// lost, the replies sent within this window are held and offered again on the next
// registration, where a master that already has them ignores them. They are kept
// within WithReplyLingerBytes: replies of up to 4 KiB as copies (the memory they take
// is their bytes plus their ids and types, in chunks of 64 KiB), larger ones by
// reference. 0 disables it; a negative d is ignored. Default: DefaultReplyLinger.
func WithReplyLinger(d time.Duration) Option {
	return func(w *Worker) {
		if d >= 0 {
			w.linger = d
		}
	}
}

// WithReplyLingerBytes bounds the bytes of the replies remembered for WithReplyLinger;
// past it the oldest are forgotten first. The window exists for replies still in a
// socket buffer when the connection drops, so it needs to hold what the buffers can,
// not every reply of the last seconds: at 64 KiB per reply and a few thousand replies
// a second, keeping 5 s of them held hundreds of MiB alive and halved the throughput
// of a busy worker (docs/benchmarks.md). 0 remembers nothing; a negative n is ignored.
// Default: DefaultReplyLingerBytes.
func WithReplyLingerBytes(n int) Option {
	return func(w *Worker) {
		if n >= 0 {
			w.lingerBytes = n
		}
	}
}

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

// WithMeterProvider sets where the worker's metrics go (default: the global
// MeterProvider, which records nothing until a program installs one).
// docs/operations.md lists them.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(w *Worker) { w.meterProvider = mp }
}

// WithPropagator sets how trace context is read from envelopes (default:
// protocol.DefaultPropagator, as on the master).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(w *Worker) { w.propagator = p }
}

func defaultCapacity() int { return runtime.GOMAXPROCS(0) }
