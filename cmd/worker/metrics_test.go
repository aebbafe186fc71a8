package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/metric/noop"
)

// lineBuffer is an io.Writer safe for concurrent use.
type lineBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func getBody(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestWorkerMetricsEndpoint: with -http the worker serves /healthz and /metrics, and
// after a known workload (3 echo jobs, 1 sleep job with a bad payload, 1 sleep job left
// running) /metrics, read with the Prometheus text parser, holds those numbers.
func TestWorkerMetricsEndpoint(t *testing.T) {
	leakcheck.Check(t)
	// The master runs in this process, where the worker installs its provider
	// globally: the master's metrics must not land in the worker's.
	f := fleettest.New(t, nil, fleettest.WithMasterOptions(dispatch.WithMeterProvider(noop.NewMeterProvider())))
	m := f.Master()

	cfg, err := newDaemon().Parse([]string{"-master", f.Addr(), "-concurrency", "2", "-http", "127.0.0.1:0"}, env(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	stdout := &lineBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newDaemon().Serve(ctx, cfg, stdout, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := m.WaitWorkers(wctx, 1); err != nil {
		t.Fatalf("the worker did not register: %v; stdout:\n%s", err, stdout)
	}
	// The address is printed before the worker connects, so it is there by now; a
	// bounded look again covers a slow print (stdout has no event to wait on).
	var url string
	deadline := time.Now().Add(10 * time.Second)
	for url == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no metrics address printed; stdout:\n%s", stdout)
		}
		for l := range strings.Lines(stdout.String()) {
			if u, ok := strings.CutPrefix(l, "banfleet worker metrics on "); ok {
				url = strings.TrimSpace(u)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("metrics address %q", url)
	}
	if resp, body := getBody(t, strings.TrimSuffix(url, "metrics")+"healthz"); resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz: %s %q", resp.Status, body)
	}

	jctx := context.Background()
	for range 3 {
		if _, err := m.Call(jctx, "echo", "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Call(jctx, "sleep", "not a duration"); err == nil {
		t.Fatal("a sleep job with a bad payload did not fail")
	}
	rctx, stopRunning := context.WithCancel(jctx)
	defer stopRunning()
	tk, err := m.Submit(rctx, dispatch.Job{Type: "sleep", Payload: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := <-tk.Progress(); !ok {
		t.Fatal("the sleep job ended before reporting its start")
	}

	resp, body := getBody(t, url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	got, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v\n%s", err, body)
	}
	process := map[string]uint64{}
	for _, mt := range got["messaging_process_duration_seconds"].GetMetric() {
		l := labelMap(mt)
		if l["messaging_system"] != "banfleet" || l["messaging_operation_name"] != "process" {
			t.Errorf("a process duration without the messaging attributes: %v", l)
		}
		process[l["messaging_destination_name"]+"/"+l["error_type"]] += mt.GetHistogram().GetSampleCount()
	}
	if process["echo/"] != 3 || process["sleep/error"] != 1 || len(process) != 2 {
		t.Errorf("process durations %v, want echo/ 3 and sleep/error 1", process)
	}
	gauge := func(name string) float64 {
		ms := got[name].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("%s: %v", name, ms)
		}
		return ms[0].GetGauge().GetValue()
	}
	if n := gauge("banfleet_worker_running"); n != 1 {
		t.Errorf("banfleet_worker_running = %v, want 1", n)
	}
	if n := gauge("banfleet_worker_capacity"); n != 2 {
		t.Errorf("banfleet_worker_capacity = %v, want 2", n)
	}
	if _, ok := got["banfleet_jobs_submitted_total"]; ok {
		t.Error("the worker's /metrics holds the master's metrics")
	}
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
