// Package jobspan opens the spans of a job's hops (submit, dispatch, execute) without
// paying for them when nothing records them.
//
// With no OpenTelemetry SDK installed, the global tracer's spans record nothing and
// carry nothing but their parent's context, yet each costs several allocations: at
// tens of thousands of jobs a second that was a fifth of all allocations. A Tracer
// notices when its spans are of that kind and then skips them. One made from the
// global provider tries again as soon as the global provider is another one
// (otel.SetTracerProvider), which it can tell without reading the clock; one made from
// any other provider tries again every probeEvery.
package jobspan

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/internal/monoclock"
	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// probeEvery is how often an inert tracer of a provider other than the global one is
// tried again.
const probeEvery = 100 * time.Millisecond

// Tracer starts spans of one kind.
type Tracer struct {
	tracer trace.Tracer
	kind   trace.SpanStartOption
	// global reads the global provider (otel.GetTracerProvider; tests set their own),
	// when the tracer was made from it; nil otherwise.
	global func() trace.TracerProvider
	// inertUnder, for a tracer of the global provider: the global provider when its
	// spans were found inert; they are skipped while it still is.
	inertUnder atomic.Pointer[providerSeen]
	inertUntil atomic.Int64         // other tracers: clock reading (ns) until which spans are skipped
	now        func() time.Duration // the clock: monoclock.Now; tests set their own
}

// providerSeen boxes a provider for an atomic pointer.
type providerSeen struct{ tp trace.TracerProvider }

// New returns a tracer of tp (protocol.ScopeName) for spans of kind.
func New(tp trace.TracerProvider, kind trace.SpanKind) *Tracer {
	t := newTracer(tp.Tracer(protocol.ScopeName), kind)
	if canCompare(tp) && tp == otel.GetTracerProvider() {
		t.global = otel.GetTracerProvider
	}
	return t
}

// newTracer wraps tracer, of a provider other than the global one, for spans of kind.
func newTracer(tracer trace.Tracer, kind trace.SpanKind) *Tracer {
	return &Tracer{tracer: tracer, kind: trace.WithSpanKind(kind), now: monoclock.Now}
}

// Start opens the span "<verb> <jobType>" for a job, with its ID and type as
// attributes. When the tracer is inert it returns ctx itself, whose span context (if
// any) propagates exactly as the skipped span's would have, and a span that does
// nothing. The attributes are set after the start, so a sampler does not see them.
func (t *Tracer) Start(ctx context.Context, verb, jobID, jobType string) (context.Context, trace.Span) {
	if t.inert() {
		return ctx, noop.Span{}
	}
	ctx, span := t.tracer.Start(ctx, verb+" "+jobType, t.kind)
	if span.IsRecording() {
		span.SetAttributes(protocol.AttrJobID.String(jobID), protocol.AttrJobType.String(jobType))
		return ctx, span
	}
	// Not recording and no trace at all: no SDK behind the tracer (an SDK gives even
	// a sampled-out span a valid context).
	if !span.SpanContext().IsValid() {
		t.markInert()
	}
	return ctx, span
}

// inert reports whether spans are being skipped now.
func (t *Tracer) inert() bool {
	if t.global != nil {
		if seen := t.inertUnder.Load(); seen != nil {
			return t.global() == seen.tp // seen.tp is comparable: this cannot panic
		}
	}
	until := t.inertUntil.Load()
	return until != 0 && int64(t.now()) < until
}

// markInert skips spans until the next probe is due.
func (t *Tracer) markInert() {
	if t.global != nil {
		tp := t.global()
		if canCompare(tp) {
			t.inertUnder.Store(&providerSeen{tp})
			return
		}
		// A global provider whose type cannot be compared is watched by the clock.
		t.inertUnder.Store(nil)
	}
	t.inertUntil.Store(int64(t.now() + probeEvery))
}

// canCompare reports whether tp can be compared with ==, which panics for a value of
// a type that cannot (a struct holding a slice, say) compared with another of its type.
func canCompare(tp trace.TracerProvider) bool {
	return tp != nil && reflect.TypeOf(tp).Comparable()
}
