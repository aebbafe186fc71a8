package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsSystem is request/reply through an embedded nats-server: the callers
// share one client connection and use RequestWithContext (nats.go's shared
// response subscription), and `workers` responder connections, each with
// one subscription in the same queue group, echo the requests. Every call
// crosses the broker twice, so this measures a real broker hop.
type natsSystem struct {
	workers    int
	srv        *server.Server
	client     *nats.Conn
	responders []*nats.Conn
}

func newNATS(workers int) *natsSystem { return &natsSystem{workers: workers} }

const (
	natsSubject = "bench.echo"
	natsQueue   = "echo"
)

// Start starts the embedded server on 127.0.0.1 (random port), connects the
// responders and the client, and makes sure the responders' subscriptions
// have reached the server.
func (n *natsSystem) Start(ctx context.Context) error {
	srv, err := server.NewServer(&server.Options{
		Host:   "127.0.0.1",
		Port:   -1,
		NoLog:  true,
		NoSigs: true,
	})
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	n.srv = srv
	srv.Start()
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		return fmt.Errorf("nats-server not ready for connections after %v", wait)
	}
	url := srv.ClientURL()
	for i := 0; i < n.workers; i++ {
		nc, err := nats.Connect(url, nats.Name(fmt.Sprintf("bench-responder-%d", i+1)), nats.NoReconnect())
		if err != nil {
			return fmt.Errorf("connect responder %d: %w", i+1, err)
		}
		n.responders = append(n.responders, nc)
		if _, err := nc.QueueSubscribe(natsSubject, natsQueue, natsEcho); err != nil {
			return fmt.Errorf("responder %d subscribe: %w", i+1, err)
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("responder %d flush: %w", i+1, err)
		}
	}
	nc, err := nats.Connect(url, nats.Name("bench-client"), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("connect client: %w", err)
	}
	n.client = nc
	return nil
}

// natsEcho replies with the request's data.
func natsEcho(m *nats.Msg) {
	// A failed respond shows up as the caller's error or timeout.
	_ = m.Respond(m.Data)
}

// NewCaller returns a Caller on the shared client connection.
func (n *natsSystem) NewCaller() (Caller, error) {
	if n.client == nil {
		return nil, errors.New("nats: not started")
	}
	return &natsCaller{nc: n.client}, nil
}

// Close closes every connection and shuts the server down.
func (n *natsSystem) Close() error {
	if n.client != nil {
		n.client.Close()
	}
	for _, nc := range n.responders {
		nc.Close()
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	return nil
}

// natsCaller is one caller on the shared client connection.
type natsCaller struct{ nc *nats.Conn }

// Call makes one request and returns the reply's data.
func (c *natsCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	m, err := c.nc.RequestWithContext(ctx, natsSubject, payload)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
