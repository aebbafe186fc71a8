package protocol

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
)

// What banfleet's spans are named and carry, and how their context is written into an
// envelope's trace entries, alike on master, client and worker.

// ScopeName is the instrumentation scope of banfleet's spans, on master, client and
// worker alike. It names package dispatch, where it was first defined; it is kept so
// that span filters and dashboards on it go on matching.
const ScopeName = "github.com/banfleet/banfleet/dispatch"

// Span attribute keys.
const (
	AttrJobID    = attribute.Key("banfleet.job.id")
	AttrJobType  = attribute.Key("banfleet.job.type")
	AttrAttempt  = attribute.Key("banfleet.job.attempt")
	AttrWorkerID = attribute.Key("banfleet.worker.id")
)

// DefaultPropagator is the global propagator, or W3C TraceContext + Baggage when the
// global one propagates nothing (OpenTelemetry's default), so that traces connect
// across hops without configuration.
func DefaultPropagator() propagation.TextMapPropagator {
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}
