package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func newRecorder() (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	return rec, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
}

// spanNamed returns the one ended span called name.
func spanNamed(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1", len(found), name)
	}
	return found[0]
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestTracingAcrossMasterAndWorker(t *testing.T) {
	leakcheck.Check(t)
	rec, tp := newRecorder()
	f := newFleet(t, dispatch.WithTracerProvider(tp))
	f.startWorker(map[string]worker.Handler{
		"echo": echo,
		"fail": func(context.Context, *worker.Job) (any, error) { return nil, errors.New("broken") },
	}, worker.WithTracerProvider(tp), worker.WithID("w-trace"))

	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	if _, err := f.master.Call(ctx, "echo", "x"); err != nil {
		t.Fatal(err)
	}
	parent.End()
	disp := spanNamed(t, rec, "dispatch echo")
	exec := spanNamed(t, rec, "execute echo")
	if disp.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatal("dispatch span is not a child of the caller's span")
	}
	if exec.Parent().SpanID() != disp.SpanContext().SpanID() || exec.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Fatal("execute span is not a child of the dispatch span across the wire")
	}
	if disp.SpanKind() != trace.SpanKindProducer || exec.SpanKind() != trace.SpanKindConsumer {
		t.Fatalf("kinds %v / %v", disp.SpanKind(), exec.SpanKind())
	}
	if attr(exec, protocol.AttrWorkerID).AsString() != "w-trace" || attr(exec, protocol.AttrAttempt).AsInt64() != 1 ||
		attr(disp, protocol.AttrJobType).AsString() != "echo" || attr(disp, protocol.AttrJobID).AsString() == "" {
		t.Fatal("missing span attributes")
	}

	if _, err := f.master.Call(context.Background(), "fail", nil); err == nil {
		t.Fatal("want an error")
	}
	failed := spanNamed(t, rec, "dispatch fail")
	if failed.Status().Code != codes.Error || len(failed.Events()) == 0 {
		t.Fatalf("failed job's span: status %v, events %v", failed.Status(), failed.Events())
	}
	if s := spanNamed(t, rec, "execute fail"); s.Status().Code != codes.Error {
		t.Fatal("handler error not recorded on the execute span")
	}
}

func TestTracingThreeHopsOneTrace(t *testing.T) {
	leakcheck.Check(t)
	rec, tp := newRecorder()
	f := newFleet(t, dispatch.WithTracerProvider(tp))
	f.startWorker(map[string]worker.Handler{"echo": echo}, worker.WithTracerProvider(tp))
	c, err := dispatch.NewClient(f.addr, dispatch.WithBanIO(banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond)), dispatch.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Call(context.Background(), "echo", "x"); err != nil {
		t.Fatal(err)
	}
	submit := spanNamed(t, rec, "submit echo")
	disp := spanNamed(t, rec, "dispatch echo")
	exec := spanNamed(t, rec, "execute echo")
	if disp.Parent().SpanID() != submit.SpanContext().SpanID() || exec.Parent().SpanID() != disp.SpanContext().SpanID() {
		t.Fatal("spans do not chain submit → dispatch → execute")
	}
	if tid := submit.SpanContext().TraceID(); disp.SpanContext().TraceID() != tid || exec.SpanContext().TraceID() != tid {
		t.Fatal("the three hops are not one trace")
	}
}
