package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// grpcSystem is gRPC unary calls over one ClientConn (one HTTP/2
// connection), insecure credentials, default window sizes, and a
// pass-through bytes codec instead of protobuf, through a hand-written
// ServiceDesc (no protoc).
type grpcSystem struct {
	server   *grpc.Server
	served   sync.WaitGroup
	serveErr error
	conn     *grpc.ClientConn
}

func newGRPC() *grpcSystem { return &grpcSystem{} }

// grpcEchoMethod is the full method name of the echo call.
const grpcEchoMethod = "/banfleet.bench.Echo/Echo"

// Start starts a gRPC server on 127.0.0.1:0 and connects one ClientConn.
func (g *grpcSystem) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", loopback)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", loopback, err)
	}
	g.server = grpc.NewServer(grpc.ForceServerCodecV2(bytesCodec{}))
	g.server.RegisterService(&echoServiceDesc, echoImpl{})
	g.served.Add(1)
	go func() {
		defer g.served.Done()
		if err := g.server.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			g.serveErr = err
		}
	}()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(bytesCodec{})),
	)
	if err != nil {
		return fmt.Errorf("grpc client: %w", err)
	}
	g.conn = conn
	conn.Connect()
	return nil
}

// NewCaller returns a Caller on the shared ClientConn.
func (g *grpcSystem) NewCaller() (Caller, error) {
	if g.conn == nil {
		return nil, errors.New("grpc: not started")
	}
	return &grpcCaller{conn: g.conn}, nil
}

// Close closes the ClientConn and stops the server.
func (g *grpcSystem) Close() error {
	var errs []error
	if g.conn != nil {
		if err := g.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close grpc client: %w", err))
		}
	}
	if g.server != nil {
		g.server.Stop()
		g.served.Wait()
		if g.serveErr != nil {
			errs = append(errs, fmt.Errorf("grpc serve: %w", g.serveErr))
		}
	}
	return errors.Join(errs...)
}

// grpcCaller is one caller on the shared ClientConn; it reuses its request
// wrapper and reply buffer.
type grpcCaller struct {
	conn  *grpc.ClientConn
	req   rawMsg
	reply rawMsg
}

// Call makes one unary echo call.
func (c *grpcCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	c.req.b = payload
	err := c.conn.Invoke(ctx, grpcEchoMethod, &c.req, &c.reply)
	c.req.b = nil
	if err != nil {
		return nil, err
	}
	return c.reply.b, nil
}

// rawMsg is the message type of the bytes codec: the payload itself.
type rawMsg struct{ b []byte }

// bytesCodecName is the name (content-subtype) the bytes codec is
// registered under: requests go out as application/grpc+bench-bytes.
const bytesCodecName = "bench-bytes"

// bytesCodec is a gRPC CodecV2 that passes *rawMsg bytes through
// unchanged.
type bytesCodec struct{}

func init() { encoding.RegisterCodecV2(bytesCodec{}) }

// Marshal hands the message's bytes to gRPC without copying.
func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("bytes codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

// Unmarshal copies data into the message, reusing its capacity: gRPC frees
// data when Unmarshal returns.
func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("bytes codec: cannot unmarshal into %T", v)
	}
	n := data.Len()
	if cap(m.b) < n {
		m.b = make([]byte, n)
	}
	m.b = m.b[:n]
	data.CopyTo(m.b)
	return nil
}

// Name returns the codec's registered name.
func (bytesCodec) Name() string { return bytesCodecName }

// echoServer is the service interface the ServiceDesc's HandlerType names.
type echoServer interface {
	Echo(ctx context.Context, in *rawMsg) (*rawMsg, error)
}

// echoImpl echoes the request.
type echoImpl struct{}

// Echo returns the request as the reply.
func (echoImpl) Echo(_ context.Context, in *rawMsg) (*rawMsg, error) { return in, nil }

// echoServiceDesc is what protoc would have generated for
// `service Echo { rpc Echo(bytes) returns (bytes); }`.
var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: "banfleet.bench.Echo",
	HandlerType: (*echoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler:    echoHandler,
	}},
	Metadata: "bench/sys_grpc.go",
}

// echoHandler decodes the request and calls the service, through the
// interceptor if one is installed.
func echoHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(rawMsg)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(echoServer).Echo(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: grpcEchoMethod}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return srv.(echoServer).Echo(ctx, req.(*rawMsg))
	})
}
