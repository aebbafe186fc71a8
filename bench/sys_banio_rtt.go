package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/banfleet/banfleet/banio"
)

// banioRTT is banio-rtt (and banio-rtt-zlib): a banio.ServerIO whose
// connections echo, and ONE banio.ClientIO shared by all callers. A call is
// banio's own request/response by key, exactly as a banbot user writes it:
//
//	key := cli.SetWait("", 1)
//	cli.WriteMsg(&banio.IOMsg{Action: "echo:" + key, Data: payload})
//	reply, err := cli.WaitResult(ctx, key, 0)
//
// and on the server the handler registered with c.Listen("echo:", …) answers
// with c.SendWaitRes(key, msg.Data).
//
// The wait key travels as a suffix of the action, not inside Data. That is
// the cheapest correct design: the server takes the key as a substring of
// the action it has decoded anyway (no allocation) and echoes msg.Data as
// it came, without slicing off or copying a header, and the client sends
// the caller's payload as-is, without copying it behind a key into a new
// buffer; the price is one 41-byte string concatenation per call on the
// client. The handler is found by banio's longest-prefix match, which is a
// handful of HasPrefix checks. It is also how banbot programs address
// actions ("job:<type>" in dispatch works the same way).
type banioRTT struct {
	opts   []banio.Option
	inline bool // echo registered with ListenInline
	srv    *banServer
	cli    *banio.ClientIO
	run    chan error // RunForever's result
}

// banioEchoPrefix starts the action of an echo request; the wait key
// follows it.
const banioEchoPrefix = "echo:"

// newBanioRTT returns banio-rtt with opts applied to both sides.
func newBanioRTT(opts ...banio.Option) *banioRTT { return &banioRTT{opts: opts} }

// Start serves the echo handler on 127.0.0.1 and connects the shared client.
func (b *banioRTT) Start(ctx context.Context) error {
	srv := banio.NewBanServer(loopback, "bench-rtt", b.opts...)
	srv.InitConn = func(c *banio.BanConn) {
		echo := func(m *banio.IOMsgRaw) {
			// A failed send shows up as the caller's error.
			_ = c.SendWaitRes(m.Action[len(banioEchoPrefix):], m.Data)
		}
		if b.inline {
			c.ListenInline(banioEchoPrefix, echo)
		} else {
			c.Listen(banioEchoPrefix, echo)
		}
	}
	bs, err := serveBanio(srv)
	if err != nil {
		return err
	}
	b.srv = bs
	cli, err := banio.NewClientIO(bs.addr, b.opts...)
	if err != nil {
		return fmt.Errorf("banio client: %w", err)
	}
	b.cli = cli
	b.run = make(chan error, 1)
	go func() { b.run <- cli.RunForever() }()
	return nil
}

// NewCaller returns a Caller on the shared client.
func (b *banioRTT) NewCaller() (Caller, error) {
	if b.cli == nil {
		return nil, errors.New("banio-rtt: not started")
	}
	return &banioKeyCaller{cli: b.cli, prefix: banioEchoPrefix}, nil
}

// Close closes the client, waits for its read loop, and closes the server.
func (b *banioRTT) Close() error {
	var errs []error
	if b.cli != nil {
		errs = append(errs, b.cli.Close())
		if err := <-b.run; err != nil {
			errs = append(errs, fmt.Errorf("client RunForever: %w", err))
		}
	}
	if b.srv != nil {
		errs = append(errs, b.srv.close())
	}
	return errors.Join(errs...)
}

// banioKeyCaller is one caller on a shared ClientIO whose requests carry their
// wait key after prefix in the action (banio-rtt, banio-relay-w4).
type banioKeyCaller struct {
	cli    *banio.ClientIO
	prefix string
}

// Call is one SetWait → WriteMsg → WaitResult round trip.
func (c *banioKeyCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	key := c.cli.SetWait("", 1)
	if err := c.cli.WriteMsg(&banio.IOMsg{Action: c.prefix + key, Data: payload}); err != nil {
		c.cli.CloseWaitChan(key)
		return nil, err
	}
	return c.cli.WaitResult(ctx, key, 0)
}

// banServer is a banio.ServerIO serving on 127.0.0.1:0 from its own
// goroutine.
type banServer struct {
	srv   *banio.ServerIO
	addr  string
	serve chan error // Serve's result
}

// serveBanio listens on 127.0.0.1:0 and serves srv.
func serveBanio(srv *banio.ServerIO) (*banServer, error) {
	ln, err := net.Listen("tcp", loopback)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", loopback, err)
	}
	s := &banServer{srv: srv, addr: ln.Addr().String(), serve: make(chan error, 1)}
	go func() { s.serve <- srv.Serve(ln) }()
	return s, nil
}

// close closes the server and waits for Serve to return.
func (s *banServer) close() error {
	err := s.srv.Close()
	if serr := <-s.serve; serr != nil && !errors.Is(serr, banio.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	return err
}

// Interface checks.
var _ System = (*banioRTT)(nil)
