package worker

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// TestProcessStartReadsTheClockOnlyWhenRecorded: with no SDK behind the meter a job's
// start is the zero time (its duration is not measured); with one it is the time.
func TestProcessStartReadsTheClockOnlyWhenRecorded(t *testing.T) {
	if start := newWorkerMetrics(noop.NewMeterProvider()).processStart(); !start.IsZero() {
		t.Fatalf("no SDK: start %v, want the zero time", start)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	if start := newWorkerMetrics(mp).processStart(); start.IsZero() {
		t.Fatal("with an SDK: the zero time, want the job's start")
	}
}
