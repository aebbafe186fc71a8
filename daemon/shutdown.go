package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ShutdownContext returns a context that ends on the first SIGINT or SIGTERM. After
// that signal the default handling is restored, so a second one ends the process at
// once even if the graceful shutdown hangs. Call stop when done.
func ShutdownContext() (ctx context.Context, stop context.CancelFunc) {
	ctx, stop = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// FlushMetrics pushes a metrics pipeline's last readings (OTLP) and stops it, bounded
// by timeout, and logs a failure.
func FlushMetrics(m *Metrics, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		log.Warn("flushing metrics failed", "err", err)
	}
}

// FlushSpans runs a tracing flush (from Tracing.Setup) bounded by timeout, and logs
// a failure: at exit there is nobody left to return it to.
func FlushSpans(flush func(context.Context) error, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := flush(ctx); err != nil {
		log.Warn("flushing spans failed", "err", err)
	}
}

// RunFunc is a daemon's whole program (masterd's and workerd's Daemon.Run): it serves
// until ctx ends and returns the process's exit code.
type RunFunc func(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int

// Main runs run with the process's arguments and environment until SIGINT or SIGTERM
// (a second signal ends the process at once), and exits with its code.
func Main(run RunFunc) {
	ctx, stop := ShutdownContext()
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
