package masterd

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// statusServer is the -http server of a running daemon: nil-safe, so a daemon run
// with -http= has none and its methods do nothing.
type statusServer struct {
	srv  *http.Server
	errs chan error // Serve's result
}

// serveStatus serves d's routes for f on hln, or returns nil when hln is nil.
func (d *Daemon) serveStatus(hln net.Listener, f *Fleet) *statusServer {
	if hln == nil {
		return nil
	}
	s := &statusServer{srv: &http.Server{Handler: d.httpHandler(f), ReadHeaderTimeout: 5 * time.Second}, errs: make(chan error, 1)}
	go func() { s.errs <- s.srv.Serve(hln) }()
	return s
}

// failed delivers the error that stopped the server; never, for no server.
func (s *statusServer) failed() <-chan error {
	if s == nil {
		return nil
	}
	return s.errs
}

// shutdown stops the server, letting requests in progress finish within
// ShutdownTimeout.
func (s *statusServer) shutdown(log *slog.Logger) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		log.Warn("status server shutdown", "err", err)
	}
}
