package dispatch

import (
	"context"

	"github.com/banfleet/banfleet/internal/jobspan"
	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing stays at the edges: spans are opened here and in package worker, never in
// banio. The trace context crosses each hop inside the envelope.

type tracing struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
	dispatch   *jobspan.Tracer // the master's "dispatch <type>" spans
	submit     *jobspan.Tracer // a remote client's "submit <type>" spans
}

func (t *tracing) init() {
	if t.provider == nil {
		t.provider = otel.GetTracerProvider()
	}
	if t.propagator == nil {
		t.propagator = protocol.DefaultPropagator()
	}
	t.dispatch = jobspan.New(t.provider, trace.SpanKindProducer)
	t.submit = jobspan.New(t.provider, trace.SpanKindClient)
}

// inject returns ctx's trace context as envelope entries (nil when there is none).
func (t *tracing) inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	carrier := propagation.MapCarrier{}
	t.propagator.Inject(ctx, carrier)
	return carrier
}

// extract returns ctx carrying the remote span context from envelope entries.
func (t *tracing) extract(ctx context.Context, m map[string]string) context.Context {
	if len(m) == 0 {
		return ctx
	}
	return t.propagator.Extract(ctx, propagation.MapCarrier(m))
}

// endSpan records err (if any) and ends span.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
