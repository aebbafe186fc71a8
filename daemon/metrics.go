package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Metrics is a daemon's metrics pipeline (SetupMetrics): an OpenTelemetry
// MeterProvider whose readings Handler serves in the Prometheus exposition format, and
// which also pushes them over OTLP/gRPC when tracing exports over OTLP.
type Metrics struct {
	// Provider is also installed as the global MeterProvider.
	Provider *sdkmetric.MeterProvider
	// Handler serves /metrics: the provider's instruments, plus the Go runtime's and
	// the process's (go_*, process_*).
	Handler http.Handler
	// OTLP reports whether the readings are pushed over OTLP too.
	OTLP bool
}

// SetupMetrics makes the metrics pipeline of the program named service
// ("banfleet-master", say) and installs its provider globally. With tracing in OTLP
// mode (-trace otlp) the metrics also go to the same collector (-otlp-endpoint,
// -otlp-tls), every 60 s unless OTEL_METRIC_EXPORT_INTERVAL (milliseconds) says
// otherwise. Call Shutdown on exit: it pushes what is left.
func SetupMetrics(ctx context.Context, t *Tracing, service string) (*Metrics, error) {
	res, err := serviceResource(service)
	if err != nil {
		return nil, fmt.Errorf("metrics resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// One instrumentation scope (protocol.ScopeName) makes the otel_scope_* labels on
	// every series noise; the resource still appears once, as target_info.
	prom, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	m := &Metrics{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	if t != nil && t.Mode == TraceOTLP {
		exp, err := t.otlpMetricExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTLP metric exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		m.OTLP = true
	}
	m.Provider = sdkmetric.NewMeterProvider(opts...)
	otel.SetMeterProvider(m.Provider)
	return m, nil
}

// Shutdown pushes the last readings (OTLP) and stops the provider.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.Provider.Shutdown(ctx) }

// otlpMetricExporter connects to the collector the spans go to, the same way.
func (t *Tracing) otlpMetricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	if t.Endpoint == "" {
		return nil, errors.New("-trace otlp needs -otlp-endpoint")
	}
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(t.Endpoint)}
	if !t.OTLPTLS {
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	}
	return otlpmetricgrpc.New(ctx, opts...)
}
