package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/examples/backtest/btjob"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestSweepIsOneTrace: with tracing on, a sweep is one trace: a "sweep" span at its
// root, and every job's dispatch and execute spans in it, each dispatch span with the
// event that ends its queue wait.
func TestSweepIsOneTrace(t *testing.T) {
	leakcheck.Check(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	f, err := startEmbedded(context.Background(), 2, map[string]worker.Handler{btjob.Type: btjob.NewHandler()}, nil, quietLog, tp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	grid := smallGrid()
	if _, err := runSweep(ctx, f.master, f.master.PutBlob, engine.Synthetic(300, 5), grid, sweepOptions{Tracing: tp}); err != nil {
		t.Fatal(err)
	}
	jobs := len(grid.Params())
	var sweep sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "sweep" {
			sweep = s
		}
	}
	if sweep == nil || sweep.Parent().IsValid() {
		t.Fatalf("no root sweep span among %d spans", len(rec.Ended()))
	}
	dispatched, executed := 0, 0
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != sweep.SpanContext().TraceID() {
			t.Fatalf("span %q is in trace %s, not the sweep's %s", s.Name(), s.SpanContext().TraceID(), sweep.SpanContext().TraceID())
		}
		switch {
		case strings.HasPrefix(s.Name(), "dispatch "):
			dispatched++
			waited := false
			for _, e := range s.Events() {
				waited = waited || e.Name == "dispatched"
			}
			if !waited {
				t.Fatalf("dispatch span without the event that ends its queue wait: %+v", s.Events())
			}
		case strings.HasPrefix(s.Name(), "execute "):
			executed++
		}
	}
	if dispatched != jobs || executed != jobs {
		t.Fatalf("%d dispatch and %d execute spans, want %d of each", dispatched, executed, jobs)
	}
}
