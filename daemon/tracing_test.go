package daemon

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

func parseTracing(t *testing.T, args ...string) (*Tracing, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var tr Tracing
	tr.Register(fs)
	return &tr, Parse(fs, args, nil)
}

func TestTracingStdout(t *testing.T) {
	tr, err := parseTracing(t, "-trace", "stdout")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tr.Out = &out
	tp, shutdown, err := tr.Setup(context.Background(), "banfleet-test")
	if err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != tp {
		t.Error("the provider must be installed globally")
	}
	if f := otel.GetTextMapPropagator().Fields(); !strings.Contains(strings.Join(f, ","), "traceparent") {
		t.Errorf("global propagator fields %v lack traceparent", f)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "probe span")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Name":"probe span"`, "banfleet-test", span.SpanContext().TraceID().String()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("exported spans lack %q:\n%s", want, &out)
		}
	}
}

func TestTracingNone(t *testing.T) {
	tr, err := parseTracing(t)
	if err != nil || tr.Mode != TraceNone {
		t.Fatalf("default mode %q, %v", tr.Mode, err)
	}
	tp, shutdown, err := tr.Setup(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "s")
	if span.IsRecording() {
		t.Error("mode none must not record spans")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTracingOTLP(t *testing.T) {
	// The exporter connects lazily: Setup succeeds without a collector, and shutdown
	// gives up when its context ends instead of hanging.
	tr, err := parseTracing(t, "-trace", "otlp", "-otlp-endpoint", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	_, shutdown, err := tr.Setup(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = shutdown(ctx)

	tr.Endpoint = ""
	if _, _, err := tr.Setup(context.Background(), "x"); err == nil {
		t.Error("otlp without an endpoint must be refused")
	}
	if _, err := parseTracing(t, "-trace", "jaeger"); err == nil {
		t.Error("an unknown mode must be refused")
	}
}

func TestLogging(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var l Logging
	l.Register(fs)
	if err := Parse(fs, []string{"-log-level", "warn", "-log-format", "json"}, nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := l.Logger(&out)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if s := out.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Errorf("log output:\n%s", s)
	}
	if err := Parse(fs, []string{"-log-format", "xml"}, nil); err == nil {
		t.Error("an unknown format must be refused")
	}
}
