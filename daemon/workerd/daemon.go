package workerd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/worker"
	"go.opentelemetry.io/otel"
)

// ShutdownTimeout bounds each step of the shutdown at exit (HTTP, metrics and span
// flush).
const ShutdownTimeout = 5 * time.Second

// DefaultService is the OpenTelemetry service.name of a worker daemon's spans and
// metrics unless Daemon.Service says otherwise.
const DefaultService = "banfleet-worker"

// Daemon is a worker program: the job types it serves, plus everything cmd/worker
// does around them (flags, BANFLEET_* variables, TLS, token, AES, tracing, metrics,
// labels, concurrency, drain on SIGINT/SIGTERM). Make one with New, register
// handlers with Handle, and call Main. A Daemon is configured before Main or Run
// and not changed after; Run may be called more than once (tests do), each time
// with a fresh flag set.
type Daemon struct {
	// Name is the program's name in its usage line and error messages ("worker").
	Name string
	// Service is the OpenTelemetry service.name of its spans and metrics;
	// "" is DefaultService.
	Service string

	handlers []handler
	flagFns  []func(*flag.FlagSet)
	opts     []worker.Option
}

type handler struct {
	jobType string
	h       worker.Handler
}

// New returns a worker daemon called name that serves no job type yet.
func New(name string) *Daemon { return &Daemon{Name: name} }

// Handle makes the daemon serve jobType with h (worker.Worker.Handle). Registering
// a type again replaces its handler.
func (d *Daemon) Handle(jobType string, h worker.Handler) {
	i := slices.IndexFunc(d.handlers, func(x handler) bool { return x.jobType == jobType })
	if i >= 0 {
		d.handlers[i].h = h
		return
	}
	d.handlers = append(d.handlers, handler{jobType, h})
}

// Types lists the job types registered with Handle, in registration order.
func (d *Daemon) Types() []string {
	types := make([]string, len(d.handlers))
	for i, x := range d.handlers {
		types[i] = x.jobType
	}
	return types
}

// Flags adds the program's own flags: register is called with each Run's flag set,
// after the daemon's flags, so a flag -my-flag is also read from BANFLEET_MY_FLAG and
// listed in -h. A name the daemon already uses panics, as flag.FlagSet does.
func (d *Daemon) Flags(register func(fs *flag.FlagSet)) { d.flagFns = append(d.flagFns, register) }

// Options adds worker options applied after those the flags make, so they win
// (worker.WithConnectBackoff, say, or a WithLabels that replaces -labels).
func (d *Daemon) Options(opts ...worker.Option) { d.opts = append(d.opts, opts...) }

// Main runs the daemon with the process's arguments and environment until SIGINT or
// SIGTERM (a second signal ends the process at once), and exits with Run's code.
func (d *Daemon) Main() { daemon.Main(d.Run) }

// Run is the whole program: it parses args (falling back to BANFLEET_* variables
// through lookupEnv; nil reads none), serves until ctx ends, drains, and returns the
// exit code: 0 after a clean shutdown or -h, 2 for a bad command line, 1 when serving
// failed (the master refused the token, say). Usage and logs go to stderr; the
// metrics address (-http) to stdout.
func (d *Daemon) Run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := d.Parse(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", d.Name, err)
		return 2
	}
	log := cfg.Log.Logger(stderr)
	if err := d.Serve(ctx, cfg, stdout, log); err != nil {
		log.Error("worker stopped", "err", err)
		return 1
	}
	return 0
}

// Parse reads args into a Config (and the program's own flags), falling back to
// BANFLEET_* variables through lookupEnv, and validates it. Usage and flag errors go
// to stderr; -h returns flag.ErrHelp.
func (d *Daemon) Parse(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(d.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.Register(fs)
	for _, f := range d.flagFns {
		f(fs)
	}
	daemon.SetUsage(fs, d.Name+" [flags]")
	if err := daemon.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Serve runs the worker until ctx ends, then drains. It needs no retry loop of its
// own: the worker runtime retries the first connection until the master answers,
// and banio reconnects forever after a loss. Run ends with an error only when no
// retry can help (the master refused the token, say), and so does Serve.
//
// With -http it serves /metrics and /healthz and prints "banfleet worker metrics on
// http://ADDR/metrics" to stdout: with port 0 that line is how a script learns the
// port.
func (d *Daemon) Serve(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) error {
	if len(d.handlers) == 0 {
		return errors.New("the worker serves no job type: register handlers with Daemon.Handle before Main")
	}
	service := d.Service
	if service == "" {
		service = DefaultService
	}
	bopts, err := cfg.Conn.ClientOptions()
	if err != nil {
		return err
	}
	tp, flush, err := cfg.Trace.Setup(ctx, service)
	if err != nil {
		return err
	}
	defer daemon.FlushSpans(flush, ShutdownTimeout, log)
	metrics, err := daemon.SetupMetrics(ctx, &cfg.Trace, service)
	if err != nil {
		return err
	}
	defer daemon.FlushMetrics(metrics, ShutdownTimeout, log)
	if cfg.HTTP != "" {
		stopHTTP, err := serveHTTP(cfg.HTTP, metrics.Handler, stdout, log)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}
	opts := []worker.Option{
		worker.WithID(cfg.ID), // "" keeps the runtime's new UUID
		worker.WithName(cfg.Name),
		worker.WithConcurrency(cfg.Concurrency),
		worker.WithLabels(map[string]string(cfg.Labels)),
		worker.WithDrainGrace(cfg.DrainGrace),
		worker.WithBlobCache(cfg.BlobCache),
		worker.WithBanIO(append(bopts, banio.WithLogger(log))...),
		worker.WithLogger(log),
		worker.WithTracerProvider(tp),
		worker.WithMeterProvider(metrics.Provider),
		worker.WithPropagator(otel.GetTextMapPropagator()),
	}
	w := worker.New(cfg.Master, append(opts, d.opts...)...)
	for _, x := range d.handlers {
		w.Handle(x.jobType, x.h)
	}
	log.Info("worker starting", "master", cfg.Master, "id", w.ID(), "name", cfg.Name, "concurrency", cfg.Concurrency,
		"types", d.Types(), "labels", cfg.Labels.String(), "tls", cfg.Conn.TLSEnabled(false), "trace", cfg.Trace.Mode)
	if err := w.Run(ctx); err != nil {
		return daemon.AuthHint(err)
	}
	log.Info("worker stopped", "id", w.ID())
	return nil
}

// serveHTTP serves /metrics and /healthz on addr until the returned function shuts it
// down.
func serveHTTP(addr string, metrics http.Handler, stdout io.Writer, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server (-http %s): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics server listening", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "banfleet worker metrics on http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("metrics server shutdown", "err", err)
		}
		<-done
	}, nil
}
