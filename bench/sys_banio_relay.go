package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// banioRelay is banio-relay-w4: the cheapest broker banio allows, for reading
// dispatch-w4 against. A relay (banio.ServerIO) forwards each request from the
// one shared client to 4 echo workers in turn and each answer back, keeping no
// state at all: the client's wait key travels in the actions, as a NATS reply
// subject does. It has none of what dispatch does per job (a job record,
// least-loaded routing, capacity, retries when a worker is lost, timeouts,
// cancellation, tracing), so it shows how much of dispatch's cost is the
// four banio hops themselves.
//
//	client:  SetWait → WriteMsg("req:"+key) → WaitResult
//	relay:   "req:"+key  → next worker, WriteMsgNoBlock("job:"+key)
//	worker:  "job:"+key  → WriteMsg("done:"+key), same data
//	relay:   "done:"+key → client, SendWaitResNoBlock(key)
//
// Every handler is registered with ListenInline: none of them blocks.
type banioRelay struct {
	workers int

	srv    *banServer
	cli    *banio.ClientIO
	ws     []*banio.ClientIO
	runs   chan error // RunForever results of the client and the workers
	active int        // RunForever calls started

	mu      sync.Mutex                       // guards the hellos
	hellos  []*banio.BanConn                 // the workers' connections, as they say hello
	ready   chan struct{}                    // closed once the client and every worker said hello
	caller  atomic.Pointer[banio.BanConn]    // the client's connection on the relay
	workerC atomic.Pointer[[]*banio.BanConn] // the workers' connections, once all are known
	next    atomic.Uint32                    // round-robin position
}

const (
	relayReq   = "req:"
	relayJob   = "job:"
	relayDone  = "done:"
	relayHello = "hello:" // "hello:client" or "hello:worker"
)

func newBanioRelay(workers int) *banioRelay { return &banioRelay{workers: workers} }

// Start starts the relay, the workers and the client, and waits until the relay
// knows all of them.
func (r *banioRelay) Start(ctx context.Context) error {
	r.ready = make(chan struct{})
	srv := banio.NewBanServer(loopback, "bench-relay")
	srv.InitConn = r.initRelayConn
	bs, err := serveBanio(srv)
	if err != nil {
		return err
	}
	r.srv = bs
	r.runs = make(chan error, r.workers+1)
	for range r.workers {
		w, err := r.dial(bs.addr, "worker")
		if err != nil {
			return err
		}
		w.ListenInline(relayJob, func(m *banio.IOMsgRaw) {
			// A failed send shows up as the caller's timeout.
			_ = w.WriteMsg(&banio.IOMsg{Action: relayDone + m.Action[len(relayJob):], Data: m.Data})
		})
		r.ws = append(r.ws, w)
	}
	cli, err := r.dial(bs.addr, "client")
	if err != nil {
		return err
	}
	r.cli = cli
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("banio-relay: waiting for the relay to know everyone: %w", ctx.Err())
	case <-time.After(10 * time.Second):
		return errors.New("banio-relay: the relay did not hear from everyone within 10s")
	}
}

// dial connects a client or worker to the relay and says which it is.
func (r *banioRelay) dial(addr, role string) (*banio.ClientIO, error) {
	c, err := banio.NewClientIO(addr)
	if err != nil {
		return nil, fmt.Errorf("banio-relay %s: %w", role, err)
	}
	r.active++
	go func() { r.runs <- c.RunForever() }()
	if err := c.WriteMsg(&banio.IOMsg{Action: relayHello + role}); err != nil {
		return nil, fmt.Errorf("banio-relay %s hello: %w", role, err)
	}
	return c, nil
}

// initRelayConn gives each relay connection its handlers.
func (r *banioRelay) initRelayConn(c *banio.BanConn) {
	c.ListenInline(relayHello, func(m *banio.IOMsgRaw) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if strings.HasSuffix(m.Action, "client") {
			r.caller.Store(c)
		} else {
			r.hellos = append(r.hellos, c)
		}
		if r.workerC.Load() == nil && r.caller.Load() != nil && len(r.hellos) == r.workers {
			ws := r.hellos
			r.workerC.Store(&ws)
			close(r.ready)
		}
	})
	c.ListenInline(relayReq, func(m *banio.IOMsgRaw) {
		wp := r.workerC.Load()
		if wp == nil {
			return // not ready: Start has not returned, so no caller sends yet
		}
		ws := *wp
		w := ws[int(r.next.Add(1))%len(ws)]
		_ = w.WriteMsgNoBlock(&banio.IOMsg{Action: relayJob + m.Action[len(relayReq):], Data: m.Data})
	})
	c.ListenInline(relayDone, func(m *banio.IOMsgRaw) {
		caller := r.caller.Load()
		_ = caller.SendWaitResNoBlock(m.Action[len(relayDone):], m.Data)
	})
}

// NewCaller returns a Caller on the shared client.
func (r *banioRelay) NewCaller() (Caller, error) {
	if r.cli == nil {
		return nil, errors.New("banio-relay: not started")
	}
	return &banioKeyCaller{cli: r.cli, prefix: relayReq}, nil
}

// Close closes the client and the workers, waits for their read loops, and
// closes the relay.
func (r *banioRelay) Close() error {
	var errs []error
	for _, c := range append([]*banio.ClientIO{r.cli}, r.ws...) {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	for range r.active {
		if err := <-r.runs; err != nil {
			errs = append(errs, fmt.Errorf("RunForever: %w", err))
		}
	}
	if r.srv != nil {
		errs = append(errs, r.srv.close())
	}
	return errors.Join(errs...)
}

// Interface checks.
var _ System = (*banioRelay)(nil)
