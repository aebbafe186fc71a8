package masterd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// ShutdownTimeout bounds each step of the shutdown (HTTP, metrics and span flush).
const ShutdownTimeout = 5 * time.Second

// DefaultService is the OpenTelemetry service.name of a master daemon's spans and
// metrics unless Daemon.Service says otherwise.
const DefaultService = "banfleet-master"

// Daemon is a master program: cmd/master's flags, BANFLEET_* variables, TLS, token,
// AES, durable job store, tracing, metrics and orderly shutdown, plus the program's
// own HTTP routes and dispatch options. Make one with New, add routes with
// HandleHTTP, and call Main. A Daemon is configured before Main or Run and not
// changed after; Run may be called more than once (tests do), each time with a
// fresh flag set.
type Daemon struct {
	// Name is the program's name in its usage line and error messages ("master").
	Name string
	// Service is the OpenTelemetry service.name of its spans and metrics;
	// "" is DefaultService.
	Service string

	routes  []route
	flagFns []func(*flag.FlagSet)
	opts    []dispatch.Option
}

type route struct {
	pattern    string
	newHandler func(*Fleet) http.Handler
}

// Fleet is the running master, handed to the HTTP routes when the -http server
// starts.
type Fleet struct {
	// Master is the running master; nil for a member of a cluster (-cluster), whose
	// master exists only while it leads: ask Node.Master() then.
	Master *dispatch.Master
	// Node is the cluster member with -cluster, nil otherwise. The daemon serves its
	// membership endpoints (POST /cluster/add, /cluster/remove) itself.
	Node    *cluster.Node
	Addr    string       // the banio address the master listens on (the port resolved)
	Config  *Config      // the parsed command line
	Metrics http.Handler // the Prometheus exposition of the process's metrics (/metrics)
	Log     *slog.Logger
}

// New returns a master daemon called name, serving /healthz and /metrics on -http.
func New(name string) *Daemon { return &Daemon{Name: name} }

// HandleHTTP adds a route to the -http server (patterns as http.ServeMux's,
// "GET /jobs/{id}" say). newHandler is called once per Run, after the master started and
// before the server accepts a request. The daemon itself serves "GET /healthz"
// (200 "ok") and "GET /metrics" unless a route registers exactly those patterns.
// The -http server has no authentication: see docs/operations.md before binding it
// beyond loopback.
func (d *Daemon) HandleHTTP(pattern string, newHandler func(*Fleet) http.Handler) {
	d.routes = append(d.routes, route{pattern, newHandler})
}

// Flags adds the program's own flags: register is called with each Run's flag set,
// after the daemon's flags, so a flag -my-flag is also read from BANFLEET_MY_FLAG and
// listed in -h. A name the daemon already uses panics, as flag.FlagSet does.
func (d *Daemon) Flags(register func(fs *flag.FlagSet)) { d.flagFns = append(d.flagFns, register) }

// Options adds dispatch options applied after those the flags make, so they win.
func (d *Daemon) Options(opts ...dispatch.Option) { d.opts = append(d.opts, opts...) }

// Main runs the daemon with the process's arguments and environment until SIGINT or
// SIGTERM (a second signal ends the process at once), and exits with Run's code.
func (d *Daemon) Main() { daemon.Main(d.Run) }

// Run is the whole program: it parses args (falling back to BANFLEET_* variables
// through lookupEnv; nil reads none), serves until ctx ends, shuts down, and returns
// the exit code: 0 after a clean shutdown or -h, 2 for a bad command line, 1 when
// serving failed (a port in use, a damaged store). Usage and logs go to stderr; the
// addresses to stdout (Serve).
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
		log.Error("master stopped", "err", err)
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
	c.Register(fs, lookupEnv)
	for _, f := range d.flagFns {
		f(fs)
	}
	daemon.SetUsage(fs, d.Name+" [flags]")
	if err := daemon.Parse(fs, args, lookupEnv); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Serve runs the master until ctx ends, then shuts down in order: the status
// server, the Master, the banio server (every connection closes), the job store, and
// finally the metrics and span exporters (flushed). With a store, the unresolved jobs
// stay in it for the next start, and remote callers re-attach to them then; in memory
// they fail with dispatch.ErrClosed.
//
// Once every listener is up (the banio port and -http) it prints "banfleet master
// listening on ADDR" and, with a status server, "banfleet master status on
// http://ADDR/" to stdout: with port 0 these lines are how a script learns the ports,
// and a script that waits for them knows the master is ready. A busy port fails
// before either line.
func (d *Daemon) Serve(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) (err error) {
	service := d.Service
	if service == "" {
		service = DefaultService
	}
	bopts, err := cfg.Conn.ServerOptions()
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

	opts := append(masterOptions(cfg, tp, metrics, log), d.opts...)
	if cfg.Cluster.Enabled {
		return d.serveCluster(ctx, cfg, bopts, opts, metrics, stdout, log)
	}

	ln, hln, err := listen(cfg)
	if err != nil {
		return err
	}
	closeListeners := func() {
		_ = ln.Close()
		if hln != nil {
			_ = hln.Close()
		}
	}
	st, err := openStore(cfg, log)
	if err != nil {
		closeListeners()
		return err
	}
	if st != nil {
		defer func() {
			if cerr := st.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	srv := banio.NewBanServer(ln.Addr().String(), "banfleet-master", append(bopts, banio.WithLogger(log))...)
	master, err := newMaster(srv, st, opts...)
	if err != nil {
		closeListeners()
		return err
	}
	status := d.serveStatus(hln, &Fleet{Master: master, Addr: ln.Addr().String(), Config: &cfg, Metrics: metrics.Handler, Log: log})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("master listening", "addr", ln.Addr().String(), "tls", cfg.Conn.TLSEnabled(true),
		"token", cfg.Conn.Token != "", "aes", cfg.Conn.AESKey != "", "trace", cfg.Trace.Mode)
	fmt.Fprintf(stdout, "banfleet master listening on %s\n", ln.Addr())
	if hln != nil {
		log.Info("status server listening", "addr", hln.Addr().String())
		fmt.Fprintf(stdout, "banfleet master status on http://%s/\n", hln.Addr())
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case err = <-serveErr:
		serveErr <- err
		err = fmt.Errorf("banio server: %w", err)
	case err = <-status.failed():
		err = fmt.Errorf("status server: %w", err)
	}

	status.shutdown(log)
	_ = master.Close()
	_ = srv.Close()
	if serr := <-serveErr; serr != nil && !errors.Is(serr, banio.ErrServerClosed) && err == nil {
		err = fmt.Errorf("banio server: %w", serr)
	}
	fs := master.Stats()
	log.Info("master closed", "done", fs.Done, "failed", fs.Failed, "timed_out", fs.TimedOut, "cancelled", fs.Cancelled, "lost", fs.Lost)
	return err
}

// listen opens the banio listener and, unless -http is empty, the status server's,
// so that a busy port fails before the daemon reports it is ready.
func listen(cfg Config) (ln, hln net.Listener, err error) {
	ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("banio listener (-listen %s): %w", cfg.Listen, err)
	}
	if cfg.HTTP != "" {
		if hln, err = net.Listen("tcp", cfg.HTTP); err != nil {
			_ = ln.Close()
			return nil, nil, fmt.Errorf("status server (-http %s): %w", cfg.HTTP, err)
		}
	}
	return ln, hln, nil
}

// masterOptions are the dispatch options the flags make, for the single master and
// for every master a cluster member opens while it leads.
func masterOptions(cfg Config, tp trace.TracerProvider, metrics *daemon.Metrics, log *slog.Logger) []dispatch.Option {
	return []dispatch.Option{
		dispatch.WithOrphanGrace(cfg.OrphanGrace),
		dispatch.WithResultRetention(cfg.Retention),
		dispatch.WithQueueLimit(cfg.QueueLimit),
		dispatch.WithMaxAttempts(cfg.MaxAttempts),
		dispatch.WithDefaultTimeout(cfg.JobTimeout),
		dispatch.WithBlobStoreLimit(cfg.BlobBytes),
		dispatch.WithQueueBytesPerType(cfg.QueueBytes),
		dispatch.WithQueueBytesTotal(cfg.QueueTotal),
		dispatch.WithMaxWorkerTypes(cfg.WorkerTypes),
		dispatch.WithLogger(log),
		dispatch.WithTracerProvider(tp),
		dispatch.WithMeterProvider(metrics.Provider),
		dispatch.WithPropagator(otel.GetTextMapPropagator()),
	}
}

// httpHandler routes the -http server: the program's routes, then /healthz and
// /metrics unless a route took those exact patterns.
func (d *Daemon) httpHandler(f *Fleet) http.Handler {
	mux := http.NewServeMux()
	taken := map[string]bool{}
	for _, r := range d.routes {
		mux.Handle(r.pattern, r.newHandler(f))
		taken[r.pattern] = true
	}
	if !taken["GET /healthz"] {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok\n"))
		})
	}
	if !taken["GET /metrics"] {
		mux.Handle("GET /metrics", f.Metrics)
	}
	if f.Node != nil {
		routeCluster(mux, f.Node)
	}
	return mux
}

// openStore opens the job store in -data-dir, or returns nil with -in-memory.
func openStore(cfg Config, log *slog.Logger) (*store.Bolt, error) {
	if cfg.InMemory {
		log.Warn("jobs are kept in memory only (-in-memory): a restart loses every queued and running job")
		return nil, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w (choose another with -data-dir, or run with -in-memory)", err)
	}
	path := filepath.Join(cfg.DataDir, "master.db")
	st, err := store.OpenBolt(path, store.WithLogger(log), store.WithRetention(cfg.Retention))
	if err != nil {
		return nil, err
	}
	s := st.Stats()
	log.Info("job store open", "path", path, "jobs", s.Jobs, "queued", s.Queued, "running", s.Running, "resolved", s.Resolved, "blobs", s.Blobs, "bytes", s.FileBytes)
	return st, nil
}

// newMaster makes the Master: durable on st, or in memory when st is nil.
func newMaster(srv *banio.ServerIO, st *store.Bolt, opts ...dispatch.Option) (*dispatch.Master, error) {
	if st == nil {
		return dispatch.NewMaster(srv, opts...), nil
	}
	return dispatch.OpenMaster(srv, st, opts...)
}
