package worker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestWorkerMetrics: messaging.process.duration counts each job the handler ran, with
// the messaging attributes and error.type for failures, and banfleet.worker.running
// the handlers running at collection time.
func TestWorkerMetrics(t *testing.T) {
	leakcheck.Check(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) }) // after the fleet's

	started := make(chan struct{}, 1)
	f := fleettest.New(t, map[string]worker.Handler{
		"echo": func(ctx context.Context, j *worker.Job) (any, error) { return j.Payload, nil },
		"fail": func(context.Context, *worker.Job) (any, error) { return nil, errors.New("no") },
		"hold": func(ctx context.Context, j *worker.Job) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}, fleettest.WithWorkerOptions(worker.WithMeterProvider(mp), worker.WithConcurrency(3)))
	master := f.Master()
	for range 4 {
		if _, err := master.Call(context.Background(), "echo", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := master.Call(context.Background(), "fail", nil); err == nil {
		t.Fatal("the failing job did not fail")
	}
	hctx, stopHold := context.WithCancel(context.Background())
	defer stopHold()
	if _, err := master.Submit(hctx, dispatch.Job{Type: "hold"}); err != nil {
		t.Fatal(err)
	}
	<-started

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			got[m.Name] = m.Data
		}
	}
	hist, ok := got["messaging.process.duration"].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("messaging.process.duration: %T", got["messaging.process.duration"])
	}
	counts := map[string]uint64{}
	for _, p := range hist.DataPoints {
		sys, _ := p.Attributes.Value("messaging.system")
		op, _ := p.Attributes.Value("messaging.operation.name")
		if sys.AsString() != "banfleet" || op.AsString() != "process" {
			t.Errorf("point without the messaging attributes: %v", p.Attributes.ToSlice())
		}
		dest, _ := p.Attributes.Value("messaging.destination.name")
		errType, _ := p.Attributes.Value(attribute.Key("error.type"))
		counts[dest.AsString()+"/"+errType.AsString()] += p.Count
	}
	if counts["echo/"] != 4 || counts["fail/error"] != 1 || len(counts) != 2 {
		t.Errorf("process.duration counts %v, want echo/ 4 and fail/error 1", counts)
	}
	gauge := func(name string) int64 {
		g, ok := got[name].(metricdata.Gauge[int64])
		if !ok || len(g.DataPoints) != 1 {
			t.Fatalf("%s: %v", name, got[name])
		}
		return g.DataPoints[0].Value
	}
	if n := gauge("banfleet.worker.running"); n != 1 {
		t.Errorf("banfleet.worker.running = %d, want 1", n)
	}
	if n := gauge("banfleet.worker.capacity"); n != 3 {
		t.Errorf("banfleet.worker.capacity = %d, want 3", n)
	}
}
