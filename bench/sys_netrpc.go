package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
)

// netRPC is the standard library's net/rpc (gob codec) with one shared
// *rpc.Client over one TCP connection. net/rpc multiplexes calls by
// sequence number, serializes writes under a mutex and runs every server
// call in its own goroutine.
type netRPC struct {
	srv    *tcpServer
	client *rpc.Client
}

func newNetRPC() *netRPC { return &netRPC{} }

// EchoService is the net/rpc receiver registered as "Echo"; net/rpc
// requires an exported type with exported methods.
type EchoService struct{}

// Echo replies with the request's bytes.
func (EchoService) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

// netRPCMethod is the service method every call invokes.
const netRPCMethod = "Echo.Echo"

// Start registers the echo service, starts the server and dials the shared
// client.
func (s *netRPC) Start(ctx context.Context) error {
	server := rpc.NewServer()
	if err := server.RegisterName("Echo", EchoService{}); err != nil {
		return fmt.Errorf("register net/rpc service: %w", err)
	}
	// ServeConn closes the connection when it returns, as handlers must.
	srv, err := startTCPServer(func(c net.Conn) { server.ServeConn(c) })
	if err != nil {
		return err
	}
	s.srv = srv
	conn, err := dialLoopback(ctx, srv.Addr())
	if err != nil {
		return err
	}
	s.client = rpc.NewClient(conn)
	return nil
}

// NewCaller returns a Caller on the shared client.
func (s *netRPC) NewCaller() (Caller, error) {
	if s.client == nil {
		return nil, errors.New("netrpc: not started")
	}
	return &netRPCCaller{client: s.client, reply: new([]byte), done: make(chan *rpc.Call, 1)}, nil
}

// Close closes the client (and its connection) and the server.
func (s *netRPC) Close() error {
	var errs []error
	if s.client != nil {
		if err := s.client.Close(); err != nil && !errors.Is(err, rpc.ErrShutdown) {
			errs = append(errs, fmt.Errorf("close net/rpc client: %w", err))
		}
	}
	if s.srv != nil {
		errs = append(errs, s.srv.Close())
	}
	return errors.Join(errs...)
}

// netRPCCaller is one caller on the shared client; it reuses its reply
// slice (gob decodes into its capacity) and its done channel.
type netRPCCaller struct {
	client *rpc.Client
	reply  *[]byte
	done   chan *rpc.Call
}

// Call invokes Echo.Echo. net/rpc encodes the request before Go returns, so
// payload is not kept.
func (c *netRPCCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	*c.reply = (*c.reply)[:0]
	call := c.client.Go(netRPCMethod, payload, c.reply, c.done)
	select {
	case <-call.Done:
		if call.Error != nil {
			return nil, call.Error
		}
		return *c.reply, nil
	case <-ctx.Done():
		// The call stays pending inside net/rpc and will write to the old
		// reply and channel; give this caller fresh ones.
		c.reply, c.done = new([]byte), make(chan *rpc.Call, 1)
		return nil, ctx.Err()
	}
}
