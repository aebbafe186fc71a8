package jobspan

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/protocol"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// clock is a settable time for probeEvery.
type clock struct{ t time.Duration }

func (c *clock) now() time.Duration { return c.t }

// switchTracer stands for the global tracer: it delegates to whatever tracer is
// installed at the moment, as otel's global one does once an SDK is set. (The real
// global cannot be reset, so a test using it would not survive -count=2.)
type switchTracer struct {
	embedded.Tracer
	cur atomic.Pointer[trace.Tracer]
}

func (s *switchTracer) set(t trace.Tracer) { s.cur.Store(&t) }

func (s *switchTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return (*s.cur.Load()).Start(ctx, name, opts...)
}

// TestInertThenRecording: with no SDK behind the tracer, spans are skipped; once one is
// installed, spans record again after the next probe.
func TestInertThenRecording(t *testing.T) {
	clk := &clock{t: 1000 * time.Second}
	st := &switchTracer{}
	st.set(noop.NewTracerProvider().Tracer("test"))
	tr := newTracer(st, trace.SpanKindProducer)
	tr.now = clk.now

	ctx := context.Background()
	if _, span := tr.Start(ctx, "dispatch", "id-1", "echo"); span.IsRecording() {
		t.Fatal("a span recorded with no SDK installed")
	}
	got, span := tr.Start(ctx, "dispatch", "id-2", "echo")
	if got != ctx || span.SpanContext().IsValid() {
		t.Fatalf("inert tracer: got a new context or a valid span (%v)", span.SpanContext())
	}

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	st.set(tp.Tracer("test"))

	if _, span := tr.Start(ctx, "dispatch", "id-3", "echo"); span.IsRecording() {
		t.Fatal("probed before probeEvery passed")
	}
	clk.t += probeEvery
	_, span = tr.Start(ctx, "dispatch", "id-4", "echo")
	if !span.IsRecording() {
		t.Fatal("no span after an SDK was installed and probeEvery passed")
	}
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 || ended[0].Name() != "dispatch echo" || ended[0].SpanKind() != trace.SpanKindProducer {
		t.Fatalf("ended spans: %v", ended)
	}
	attrs := map[string]string{}
	for _, kv := range ended[0].Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	if attrs[string(protocol.AttrJobID)] != "id-4" || attrs[string(protocol.AttrJobType)] != "echo" {
		t.Fatalf("attributes: %v", attrs)
	}
}

// TestParentContextPropagates: a skipped span leaves the parent's span context in
// place, which is what the skipped non-recording span would have carried.
func TestParentContextPropagates(t *testing.T) {
	tr := newTracer(noop.NewTracerProvider().Tracer("test"), trace.SpanKindClient)
	tr.Start(context.Background(), "submit", "id", "echo") // marks it inert
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), parent)
	got, _ := tr.Start(ctx, "submit", "id", "echo")
	if sc := trace.SpanContextFromContext(got); !sc.Equal(parent) {
		t.Fatalf("span context %v, want the parent's %v", sc, parent)
	}
}

// heldProvider stands for the global provider of the moment.
type heldProvider struct {
	cur atomic.Pointer[trace.TracerProvider]
}

func (h *heldProvider) set(tp trace.TracerProvider) { h.cur.Store(&tp) }
func (h *heldProvider) get() trace.TracerProvider   { return *h.cur.Load() }

// TestGlobalTracerProbesWhenTheGlobalChanges: a tracer of the global provider skips
// spans without reading the clock while the global provider is the one it found inert,
// and records from the first span after another is installed.
func TestGlobalTracerProbesWhenTheGlobalChanges(t *testing.T) {
	global := &heldProvider{}
	global.set(noop.NewTracerProvider())
	st := &switchTracer{}
	st.set(noop.NewTracerProvider().Tracer("test"))
	tr := newTracer(st, trace.SpanKindConsumer)
	tr.global = global.get
	clockRead := false
	tr.now = func() time.Duration { clockRead = true; return 0 }

	ctx := context.Background()
	for i := range 3 {
		if _, span := tr.Start(ctx, "execute", "id", "echo"); span.IsRecording() {
			t.Fatalf("span %d recorded with no SDK installed", i)
		}
	}
	if clockRead {
		t.Fatal("a tracer of the global provider read the clock")
	}

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	st.set(tp.Tracer("test")) // what otel's delegating tracer does once an SDK is set
	global.set(tp)
	_, span := tr.Start(ctx, "execute", "id", "echo")
	if !span.IsRecording() {
		t.Fatal("no span right after the global provider changed")
	}
	span.End()
	if n := len(rec.Ended()); n != 1 {
		t.Fatalf("%d spans ended, want 1", n)
	}
}

// uncomparableProvider is a provider whose type == cannot compare.
type uncomparableProvider struct {
	embedded.TracerProvider
	_ []int
}

func (uncomparableProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return noop.NewTracerProvider().Tracer("test")
}

// TestUncomparableGlobalProviderFallsBackToTheClock: a global provider of a type that
// cannot be compared is watched by the clock instead of panicking.
func TestUncomparableGlobalProviderFallsBackToTheClock(t *testing.T) {
	global := &heldProvider{}
	global.set(uncomparableProvider{})
	clk := &clock{t: time.Second}
	tr := newTracer(noop.NewTracerProvider().Tracer("test"), trace.SpanKindConsumer)
	tr.global = global.get
	tr.now = clk.now
	ctx := context.Background()
	tr.Start(ctx, "execute", "id", "echo") // marks it inert
	tr.Start(ctx, "execute", "id", "echo") // would panic comparing the providers
	if tr.inertUntil.Load() == 0 {
		t.Fatal("no probe time set for an uncomparable global provider")
	}
	if New(uncomparableProvider{}, trace.SpanKindConsumer).global != nil {
		t.Fatal("New watched an uncomparable provider as the global one")
	}
}
