package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Trace export modes.
const (
	TraceNone   = "none"   // no spans are recorded
	TraceStdout = "stdout" // spans are written as JSON lines to standard output
	TraceOTLP   = "otlp"   // spans are sent to an OTLP/gRPC collector
)

// DefaultOTLPEndpoint is where -trace otlp sends spans unless -otlp-endpoint says
// otherwise: a collector on the same host.
const DefaultOTLPEndpoint = "127.0.0.1:4317"

// Tracing holds the trace export flags.
type Tracing struct {
	Mode     string // TraceNone, TraceStdout or TraceOTLP
	Endpoint string // OTLP/gRPC collector host:port
	OTLPTLS  bool   // connect to the collector with TLS instead of plaintext

	// Out receives spans in stdout mode; nil means os.Stdout.
	Out io.Writer
}

// Register adds -trace, -otlp-endpoint and -otlp-tls to fs.
func (t *Tracing) Register(fs *flag.FlagSet) {
	choiceVar(fs, &t.Mode, "trace", "span export `mode`: none, stdout (JSON to standard output) or otlp (OTLP/gRPC to -otlp-endpoint)",
		TraceNone, TraceStdout, TraceOTLP)
	fs.StringVar(&t.Endpoint, "otlp-endpoint", DefaultOTLPEndpoint, "OTLP/gRPC collector `host:port` for -trace otlp")
	fs.BoolVar(&t.OTLPTLS, "otlp-tls", false, "connect to the OTLP collector with TLS, verified against the system roots or the CA file in OTEL_EXPORTER_OTLP_CERTIFICATE (default plaintext)")
}

// Setup installs the W3C trace-context and baggage propagator globally and, unless
// the mode is none, a batching TracerProvider that exports to the chosen sink and
// is also installed globally, so that banfleet's spans on every host of a job land
// in one trace. service names this program in the spans' resource
// ("banfleet-master", say). The returned shutdown flushes buffered spans; call it
// on exit. In mode none the provider records nothing and shutdown does nothing.
func (t *Tracing) Setup(ctx context.Context, service string) (trace.TracerProvider, func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	var exp sdktrace.SpanExporter
	var err error
	switch t.Mode {
	case "", TraceNone:
		tp := noop.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return tp, func(context.Context) error { return nil }, nil
	case TraceStdout:
		out := t.Out
		if out == nil {
			out = os.Stdout
		}
		exp, err = stdouttrace.New(stdouttrace.WithWriter(out))
	case TraceOTLP:
		exp, err = t.otlpExporter(ctx)
	default:
		return nil, nil, fmt.Errorf("unknown trace mode %q (want none, stdout or otlp)", t.Mode)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("trace exporter: %w", err)
	}
	res, err := serviceResource(service)
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp, tp.Shutdown, nil
}

// otlpExporter connects to an OTLP/gRPC collector: plaintext unless -otlp-tls, in
// which case the exporter verifies the collector against the system roots or the CA
// named by OpenTelemetry's own OTEL_EXPORTER_OTLP_CERTIFICATE variable.
func (t *Tracing) otlpExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if t.Endpoint == "" {
		return nil, errors.New("-trace otlp needs -otlp-endpoint")
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(t.Endpoint)}
	if !t.OTLPTLS {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	return otlptracegrpc.New(ctx, opts...)
}

// serviceResource describes this program in exported spans and metrics.
func serviceResource(service string) (*resource.Resource, error) {
	host, _ := os.Hostname()
	return resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", service),
		attribute.String("host.name", host),
	))
}
