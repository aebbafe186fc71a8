package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
)

func TestMetricsSetup(t *testing.T) {
	tr, err := parseTracing(t)
	if err != nil {
		t.Fatal(err)
	}
	m, err := SetupMetrics(context.Background(), tr, "banfleet-test")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	if otel.GetMeterProvider() != m.Provider {
		t.Error("the provider must be installed globally")
	}
	if m.OTLP {
		t.Error("metrics pushed over OTLP without -trace otlp")
	}
	c, err := m.Provider.Meter("test").Int64Counter("probe.count")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	rec := httptest.NewRecorder()
	m.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"probe_count_total 3", `service_name="banfleet-test"`, "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestMetricsOverOTLP(t *testing.T) {
	tr, err := parseTracing(t, "-trace", "otlp", "-otlp-endpoint", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := SetupMetrics(context.Background(), tr, "banfleet-test")
	if err != nil {
		t.Fatal(err)
	}
	if !m.OTLP {
		t.Error("-trace otlp must push metrics over OTLP too")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing listens there: do not wait for the last push
	_ = m.Shutdown(ctx)
}
