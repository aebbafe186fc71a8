package worker

import (
	"context"
	"time"

	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The worker's metrics (DESIGN.md §5; docs/operations.md lists them):
// messaging.process.duration after OpenTelemetry's messaging conventions, one
// observation per job its handler ran, and banfleet.worker.running, read from the
// capacity semaphore at collection time. The job type is a label: the worker runs only
// the types it has handlers for, so it is bounded by them, and their attribute sets are
// built once when Run starts.

// processBuckets are the bounds of messaging.process.duration, in seconds: 1 µs
// doubling to 4.8 h, as the master's duration histograms.
var processBuckets = func() []float64 {
	b := make([]float64, 35)
	for i := range b {
		b[i] = 1e-6 * float64(uint64(1)<<i)
	}
	return b
}()

// Statuses of a processed job: error.type of messaging.process.duration (none for ok).
const (
	statusOK = iota
	statusError
	statusTimeout
	statusCancelled
	statusHandedBack
	numStatuses
)

var errorTypes = [numStatuses]string{"", "error", "timeout", "cancelled", "handed_back"}

type workerMetrics struct {
	process  metric.Float64Histogram
	running  metric.Int64ObservableGauge
	capacity metric.Int64ObservableGauge
	meter    metric.Meter
	types    map[string]*[numStatuses][]metric.RecordOption // by job type; read-only once Run starts
}

func newWorkerMetrics(mp metric.MeterProvider) *workerMetrics {
	meter := mp.Meter(protocol.ScopeName)
	wm := &workerMetrics{meter: meter}
	wm.process, _ = meter.Float64Histogram("messaging.process.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of the worker's handler for one job (OpenTelemetry messaging conventions; messaging.destination.name is the job type)."),
		metric.WithExplicitBucketBoundaries(processBuckets...))
	wm.running, _ = meter.Int64ObservableGauge("banfleet.worker.running", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs whose handler the worker is running."))
	wm.capacity, _ = meter.Int64ObservableGauge("banfleet.worker.capacity", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs the worker runs at once (WithConcurrency)."))
	return wm
}

// start builds the attribute sets of the handled types and registers the gauges'
// callback; the returned function unregisters it.
func (wm *workerMetrics) start(w *Worker) func() {
	wm.types = make(map[string]*[numStatuses][]metric.RecordOption, len(w.handlers))
	for typ := range w.handlers {
		base := []attribute.KeyValue{
			attribute.String("messaging.system", "banfleet"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", typ),
		}
		var opts [numStatuses][]metric.RecordOption
		for s := range numStatuses {
			kv := base
			if s != statusOK {
				kv = append(kv[:len(kv):len(kv)], attribute.String("error.type", errorTypes[s]))
			}
			opts[s] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
		}
		wm.types[typ] = &opts
	}
	reg, err := wm.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(wm.running, int64(len(w.slots)))
		o.ObserveInt64(wm.capacity, int64(cap(w.slots)))
		return nil
	}, wm.running, wm.capacity)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}

// processStart is when a handler starts, as processed wants it: the zero time when
// nothing would record its duration (no SDK behind the meter), which saves reading
// the clock twice per job.
func (wm *workerMetrics) processStart() time.Time {
	if !wm.process.Enabled(context.Background()) {
		return time.Time{}
	}
	return time.Now()
}

// processed records one job whose handler started at start (processStart) and
// answered with rep.
func (wm *workerMetrics) processed(typ string, rep *protocol.Reply, start time.Time) {
	if start.IsZero() {
		return
	}
	d := time.Since(start)
	opts := wm.types[typ]
	if opts == nil {
		return
	}
	s := statusError
	switch rep.Kind {
	case protocol.KindOK:
		s = statusOK
	case protocol.KindDeadline:
		s = statusTimeout
	case protocol.KindCanceled:
		s = statusCancelled
	case protocol.KindHandedBack:
		s = statusHandedBack
	}
	wm.process.Record(context.Background(), d.Seconds(), opts[s]...)
}
