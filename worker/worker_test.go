package worker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
)

func TestRunNeedsHandlers(t *testing.T) {
	if err := worker.New("127.0.0.1:1").Run(context.Background()); err == nil {
		t.Fatal("Run without handlers must fail")
	}
}

func TestRunStopsWhileMasterUnreachable(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the worker keeps retrying
	w := worker.New(addr)
	w.Handle("x", func(context.Context, *worker.Job) (any, error) { return nil, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run ended by its context before connecting: %v, want nil", err)
	}
}

// A malformed job envelope is dropped without harming the worker: the next job works.
func TestMalformedEnvelopeIsDropped(t *testing.T) {
	leakcheck.Check(t)
	conns := make(chan *banio.BanConn, 1)
	f := fleettest.New(t, map[string]worker.Handler{
		"echo": func(ctx context.Context, j *worker.Job) (any, error) { return j.Payload, nil },
	}, fleettest.WithServerSetup(func(srv *banio.ServerIO) {
		prev := srv.InitConn
		srv.InitConn = func(c *banio.BanConn) {
			prev(c)
			select {
			case conns <- c: // the first connection; a reconnect is not needed
			default:
			}
		}
	}))
	master := f.Master()
	c := <-conns
	for _, garbage := range [][]byte{nil, {0xff}, {1, 200, 1}, []byte("not an envelope")} {
		if err := c.WriteMsg(&banio.IOMsg{Action: protocol.JobAction("echo"), Data: garbage}); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := master.Call(context.Background(), "echo", "fine"); err != nil || string(res) != "fine" {
		t.Fatalf("after garbage: %q %v", res, err)
	}
}
