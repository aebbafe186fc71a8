package main

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/metric/noop"
)

// scrape reads url's Prometheus text exposition with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s does not parse as the Prometheus text format: %v", url, err)
	}
	return families
}

// sample sums the values of family name's samples whose labels include want
// ("k=v"); for a histogram, the count of observations.
func sample(t *testing.T, families map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	mf := families[name]
	if mf == nil {
		t.Fatalf("no metric family %s", name)
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want []string) bool {
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestMetricsEndpoint: after a known workload through a master with one worker (10
// jobs ok, 2 failing, 1 cancelled, 1 timed out, 1 left running and 1 queued),
// /metrics on the status listener holds those numbers.
func TestMetricsEndpoint(t *testing.T) {
	leakcheck.Check(t)
	addr, url, _, _ := startRun(t, true, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-in-memory", "-log-level", "error")

	// The worker runs in this process, where the master installed its provider
	// globally: its own metrics must not land in the master's.
	w := worker.New(addr, worker.WithConcurrency(3), worker.WithMeterProvider(noop.NewMeterProvider()))
	started := make(chan struct{}, 4)
	w.Handle("ok", func(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
	w.Handle("fail", func(context.Context, *worker.Job) (any, error) { return nil, errors.New("no") })
	w.Handle("wait", func(ctx context.Context, _ *worker.Job) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	defer func() { wcancel(); <-wdone }()

	client, err := dispatch.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	waitUntil(t, "the worker registered", func() bool {
		return sample(t, scrape(t, url+"metrics"), "banfleet_workers_connected") == 1
	})
	for range 10 {
		if _, err := client.Call(ctx, "ok", "x"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := client.Call(ctx, "fail", nil); err == nil {
			t.Fatal("the failing job did not fail")
		}
	}
	tk, err := client.Submit(ctx, dispatch.Job{Type: "wait", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out job: %v", err)
	}
	<-started
	cctx, cancel := context.WithCancel(ctx)
	if tk, err = client.Submit(cctx, dispatch.Job{Type: "wait"}); err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	if _, err := tk.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job: %v", err)
	}
	rctx, stopRunning := context.WithCancel(ctx)
	defer stopRunning()
	if _, err := client.Submit(rctx, dispatch.Job{Type: "wait"}); err != nil {
		t.Fatal(err)
	}
	<-started
	qctx, stopQueued := context.WithCancel(ctx)
	defer stopQueued()
	if _, err := client.Submit(qctx, dispatch.Job{Type: "unserved"}); err != nil {
		t.Fatal(err)
	}
	// The cancellation reaches the master after the caller's Wait returned: wait for
	// the master to count it.
	var got map[string]*dto.MetricFamily
	waitUntil(t, "the master to count the cancelled job", func() bool {
		got = scrape(t, url+"metrics")
		return sample(t, got, "banfleet_jobs_completed_total", "status=cancelled") == 1 &&
			sample(t, got, "banfleet_queue_depth", "type=unserved") == 1
	})

	for _, c := range []struct {
		name string
		want float64
		attr []string
	}{
		{"banfleet_jobs_submitted_total", 10, []string{"type=ok"}},
		{"banfleet_jobs_submitted_total", 2, []string{"type=fail"}},
		{"banfleet_jobs_submitted_total", 3, []string{"type=wait"}},
		{"banfleet_jobs_submitted_total", 1, []string{"type=unserved"}},
		{"banfleet_jobs_completed_total", 10, []string{"type=ok", "status=ok"}},
		{"banfleet_jobs_completed_total", 2, []string{"type=fail", "status=error"}},
		{"banfleet_jobs_completed_total", 1, []string{"type=wait", "status=timeout"}},
		{"banfleet_jobs_completed_total", 1, []string{"type=wait", "status=cancelled"}},
		{"banfleet_jobs_completed_total", 14, nil},
		{"banfleet_job_e2e_duration_seconds", 14, nil},
		{"banfleet_job_run_duration_seconds", 10, []string{"type=ok", "status=ok"}},
		{"banfleet_job_run_duration_seconds", 2, []string{"type=fail", "status=error"}},
		{"banfleet_job_wait_duration_seconds", 15, nil}, // every job that reached the worker
		{"banfleet_queue_depth", 1, []string{"type=unserved"}},
		{"banfleet_queue_depth", 0, []string{"type=ok"}},
		{"banfleet_workers_connected", 1, nil},
		{"banfleet_worker_slots", 1, []string{"state=busy"}},
		{"banfleet_worker_slots", 2, []string{"state=free"}},
	} {
		if v := sample(t, got, c.name, c.attr...); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attr, v, c.want)
		}
	}
	if _, ok := got["banfleet_jobs_retried_total"]; ok {
		t.Error("banfleet_jobs_retried_total has samples, but nothing was retried")
	}
	if age := sample(t, got, "banfleet_queue_oldest_age_seconds", "type=unserved"); age <= 0 || age > 30 {
		t.Errorf("oldest age of the unserved queue = %v s", age)
	}
	if _, ok := got["messaging_process_duration_seconds"]; ok {
		t.Error("the master's /metrics holds the worker's metric")
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	h := got["banfleet_job_e2e_duration_seconds"].GetMetric()[0].GetHistogram()
	if b := h.GetBucket(); len(b) != 36 || b[0].GetUpperBound() != 1e-6 || b[34].GetUpperBound() < 4*3600 || !math.IsInf(b[35].GetUpperBound(), 1) {
		t.Errorf("e2e buckets: %d of them, from %v to %v; want 1 µs doubling past 4 h, then +Inf",
			len(b), b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
