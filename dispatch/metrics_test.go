package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// metricsReader collects what a MeterProvider recorded.
type metricsReader struct {
	t      *testing.T
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMetricsReader(t *testing.T) *metricsReader {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &metricsReader{t: t, reader: r, mp: mp}
}

// collect returns the metrics by name.
func (r *metricsReader) collect() map[string]metricdata.Aggregation {
	r.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		r.t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// attrsMatch reports whether set holds every key=value of want ("k=v" strings).
func attrsMatch(set attribute.Set, want []string) bool {
	for _, kv := range want {
		found := false
		for _, a := range set.ToSlice() {
			if string(a.Key)+"="+a.Value.String() == kv {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value sums the int sum or gauge points of data whose attributes match want.
func value(t *testing.T, data metricdata.Aggregation, want ...string) int64 {
	t.Helper()
	var n int64
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if attrsMatch(p.Attributes, want) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if attrsMatch(p.Attributes, want) {
				n += p.Value
			}
		}
	default:
		t.Fatalf("%T is no int sum or gauge", data)
	}
	return n
}

// histCount is the number of observations of the histogram points matching want.
func histCount(t *testing.T, data metricdata.Aggregation, want ...string) uint64 {
	t.Helper()
	h, ok := data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%T is no float histogram", data)
	}
	var n uint64
	for _, p := range h.DataPoints {
		if attrsMatch(p.Attributes, want) {
			n += p.Count
		}
	}
	return n
}

// TestMasterMetrics: after a known workload the master's instruments hold its counts,
// its durations and its gauges.
func TestMasterMetrics(t *testing.T) {
	leakcheck.Check(t)
	mr := newMetricsReader(t)
	f := newFleet(t, dispatch.WithMeterProvider(mr.mp))
	started := make(chan struct{}, 4)
	f.startWorker(mixedHandlers(started), worker.WithConcurrency(3))
	ctx := context.Background()
	for range 10 {
		if _, err := f.master.Call(ctx, "ok", "x"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := f.master.Call(ctx, "fail", nil); err == nil {
			t.Fatal("the failing job did not fail")
		}
	}
	tk, err := f.master.Submit(ctx, dispatch.Job{Type: "wait", Timeout: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out job: %v", err)
	}
	recv(t, started, "the timed-out job's start")
	cctx, cancel := context.WithCancel(ctx)
	if tk, err = f.master.Submit(cctx, dispatch.Job{Type: "wait"}); err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job to cancel running")
	cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job: %v", err)
	}
	// Left running (one of the worker's 3 slots) and queued (no worker for it).
	rctx, stopRunning := context.WithCancel(ctx)
	defer stopRunning()
	if _, err := f.master.Submit(rctx, dispatch.Job{Type: "wait"}); err != nil {
		t.Fatal(err)
	}
	recv(t, started, "the job left running")
	if _, err := f.master.Submit(ctx, dispatch.Job{Type: "unserved"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.master.PutBlob([]byte("twelve bytes")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // an age the queue gauge must show

	got := mr.collect()
	for _, c := range []struct {
		name string
		want int64
		attr []string
	}{
		{"banfleet.jobs.submitted", 10, []string{"type=ok"}},
		{"banfleet.jobs.submitted", 2, []string{"type=fail"}},
		{"banfleet.jobs.submitted", 3, []string{"type=wait"}},
		{"banfleet.jobs.submitted", 1, []string{"type=unserved"}},
		{"banfleet.jobs.completed", 10, []string{"type=ok", "status=ok"}},
		{"banfleet.jobs.completed", 2, []string{"type=fail", "status=error"}},
		{"banfleet.jobs.completed", 1, []string{"type=wait", "status=timeout"}},
		{"banfleet.jobs.completed", 1, []string{"type=wait", "status=cancelled"}},
		{"banfleet.jobs.completed", 14, nil},
		{"banfleet.queue.depth", 1, []string{"type=unserved"}},
		{"banfleet.queue.depth", 0, []string{"type=ok"}},
		{"banfleet.workers.connected", 1, nil},
		{"banfleet.worker.slots", 1, []string{"state=busy"}},
		{"banfleet.worker.slots", 2, []string{"state=free"}},
		{"banfleet.blobs.size", 12, nil},
		{"banfleet.blobs.count", 1, nil},
	} {
		data, ok := got[c.name]
		if !ok {
			t.Errorf("no %s", c.name)
			continue
		}
		if v := value(t, data, c.attr...); v != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attr, v, c.want)
		}
	}
	if _, ok := got["banfleet.jobs.retried"]; ok {
		t.Errorf("banfleet.jobs.retried has points, but nothing was retried")
	}
	for _, c := range []struct {
		name string
		want uint64
		attr []string
	}{
		{"banfleet.job.e2e.duration", 10, []string{"type=ok"}},
		{"banfleet.job.e2e.duration", 2, []string{"type=wait"}},
		{"banfleet.job.wait.duration", 3, []string{"type=wait"}}, // the running one was dispatched too
		{"banfleet.job.run.duration", 10, []string{"type=ok", "status=ok"}},
		{"banfleet.job.run.duration", 2, []string{"type=fail", "status=error"}},
		{"banfleet.job.run.duration", 1, []string{"type=wait", "status=timeout"}},
		{"banfleet.job.run.duration", 1, []string{"type=wait", "status=cancelled"}},
	} {
		if n := histCount(t, got[c.name], c.attr...); n != c.want {
			t.Errorf("%s%v: %d observations, want %d", c.name, c.attr, n, c.want)
		}
	}
	e2e := got["banfleet.job.e2e.duration"].(metricdata.Histogram[float64])
	for _, p := range e2e.DataPoints {
		if len(p.Bounds) != 35 || p.Bounds[0] != 1e-6 || p.Bounds[34] < 4*3600 {
			t.Fatalf("duration buckets %v: want 35 doublings from 1 µs past 4 h", p.Bounds)
		}
		// The worker times the job out at its deadline, sent as a wall-clock time, while
		// e2e is measured on the master's monotonic clock: allow 1 ms between the two.
		if attrsMatch(p.Attributes, []string{"type=wait"}) && (p.Sum < 0.029 || p.Sum > 10) {
			t.Errorf("e2e of the wait jobs sums to %v s, want at least the 30 ms timeout", p.Sum)
		}
	}
	age := got["banfleet.queue.oldest_age"].(metricdata.Gauge[float64])
	for _, p := range age.DataPoints {
		unserved := attrsMatch(p.Attributes, []string{"type=unserved"})
		if unserved && (p.Value < 0.02 || p.Value > 10) || !unserved && p.Value != 0 {
			t.Errorf("queue age %v = %v s", p.Attributes.ToSlice(), p.Value)
		}
	}
}

// TestMetricTypeLabelsBounded: a caller submitting ever new job types gets
// MaxMetricTypes labels, then "other", so the metrics stay bounded.
func TestMetricTypeLabelsBounded(t *testing.T) {
	leakcheck.Check(t)
	mr := newMetricsReader(t)
	f := newFleet(t, dispatch.WithMeterProvider(mr.mp))
	const extra = 5
	for i := range dispatch.MaxMetricTypes + extra {
		if _, err := f.master.Submit(context.Background(), dispatch.Job{Type: fmt.Sprintf("t%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := mr.collect()
	labels := map[string]bool{}
	for _, p := range got["banfleet.jobs.submitted"].(metricdata.Sum[int64]).DataPoints {
		v, _ := p.Attributes.Value("type")
		labels[v.AsString()] = true
	}
	if len(labels) != dispatch.MaxMetricTypes+1 || !labels[dispatch.OtherMetricType] {
		t.Fatalf("%d type labels (other: %v), want %d and other", len(labels), labels[dispatch.OtherMetricType], dispatch.MaxMetricTypes)
	}
	if n := value(t, got["banfleet.jobs.submitted"], "type=other"); n != extra {
		t.Errorf("submitted{type=other} = %d, want %d", n, extra)
	}
	if n := value(t, got["banfleet.queue.depth"], "type=other"); n != extra {
		t.Errorf("queue.depth{type=other} = %d, want %d (summed over the types it stands for)", n, extra)
	}
}

// TestMetricsRetriedAndLost: a worker lost with a job running counts a retry with
// reason worker_lost, an attempt with status lost, and no completion until the job
// ends elsewhere.
func TestMetricsRetriedAndLost(t *testing.T) {
	leakcheck.Check(t)
	mr := newMetricsReader(t)
	f := newFleet(t, dispatch.WithMeterProvider(mr.mp))
	doomed := newExecCounter(true)
	dw := f.startWorker(map[string]worker.Handler{"job": doomed.handle}, worker.WithID("doomed"))
	tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "job"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, doomed.started, "the job on the doomed worker")
	dw.Partition(true)
	defer close(doomed.gate)
	f.startWorker(map[string]worker.Handler{"job": echo})
	if _, err := tk.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := mr.collect()
	if n := value(t, got["banfleet.jobs.retried"], "type=job", "reason=worker_lost"); n != 1 {
		t.Errorf("retried{reason=worker_lost} = %d, want 1", n)
	}
	if n := value(t, got["banfleet.jobs.retried"]); n != 1 {
		t.Errorf("retried = %d, want 1", n)
	}
	if n := histCount(t, got["banfleet.job.run.duration"], "type=job", "status=lost"); n != 1 {
		t.Errorf("run.duration{status=lost}: %d, want 1", n)
	}
	if n := value(t, got["banfleet.jobs.completed"], "type=job", "status=ok"); n != 1 {
		t.Errorf("completed{status=ok} = %d, want 1", n)
	}
}

// TestMetricsOfTheStore: a durable master reports its store's commits from
// store.Stats.
func TestMetricsOfTheStore(t *testing.T) {
	leakcheck.Check(t)
	mr := newMetricsReader(t)
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "master.db"), store.WithNoSync(true))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := dispatch.OpenMaster(banio.NewBanServer("", "test-master"), st, dispatch.WithMeterProvider(mr.mp))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.PutBlob([]byte("a blob the store keeps")); err != nil {
		t.Fatal(err)
	}
	got := mr.collect()
	s := st.Stats()
	if s.Records == 0 || s.Commits == 0 {
		t.Fatalf("store Stats %+v: the blob was not committed", s)
	}
	if n := value(t, got["banfleet.store.records"]); n != int64(s.Records) {
		t.Errorf("store.records = %d, want %d", n, s.Records)
	}
	if n := value(t, got["banfleet.store.commits"]); n != int64(s.Commits) {
		t.Errorf("store.commits = %d, want %d", n, s.Commits)
	}
	if n := value(t, got["banfleet.store.file.size"]); n <= 0 {
		t.Errorf("store.file.size = %d", n)
	}
	if _, ok := got["banfleet.store.commit.time"]; !ok {
		t.Error("no banfleet.store.commit.time")
	}
}
