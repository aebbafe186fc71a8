package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// banioBroadcast is banio-broadcast: one banio.ServerIO, bcastSubscribers
// ClientIOs subscribed to "tick", and one producer calling srv.Broadcast in
// a loop. One op is one message delivered to one subscriber.
//
// The producer keeps at most bcastAhead messages in flight beyond the
// slowest subscriber (banbot's appendix measured broadcast that way): when
// it is that far ahead it waits until the slowest subscriber is back within
// bcastResume, so it sleeps and wakes once per batch rather than once per
// message. Every message carries a sequence number and its send time; each
// subscriber checks that the numbers arrive one by one in order (and the
// whole content of every 64th message), records the delivery latency, and
// a gap, reordering or wrong content fails the sample.
type banioBroadcast struct {
	srv  *banServer
	subs []*bcastSub
	base time.Time // send times are nanoseconds since base (monotonic)

	sent    uint64 // last sequence number broadcast; producer only
	waiting atomic.Bool
	resume  atomic.Uint64 // subscribers at or past this wake a waiting producer
	wake    chan struct{} // cap 1
	// window is the current Measure's number and fill its expected payload
	// (the header is overwritten per message). Subscribers see a new window
	// number and reset their histograms themselves, so that only their own
	// goroutine ever writes them.
	window atomic.Uint64
	fill   atomic.Pointer[[]byte]
}

const (
	bcastSubscribers = 4
	bcastAction      = "tick"
	bcastAhead       = 128 // most messages the producer is ahead of the slowest subscriber
	bcastResume      = 64  // it resumes when the slowest is this close again
	bcastHeader      = 16  // sequence number and send time
	bcastStall       = 5 * time.Second
)

func newBanioBroadcast() *banioBroadcast {
	return &banioBroadcast{wake: make(chan struct{}, 1)}
}

// Supports runs one producer (callers = 1) and payloads that hold the
// 16-byte header.
func (b *banioBroadcast) Supports(c Case) error {
	if c.Callers != 1 {
		return errors.New("one producer; only callers=1 runs")
	}
	if c.Size < bcastHeader {
		return fmt.Errorf("payload must hold the %d-byte sequence/time header", bcastHeader)
	}
	return nil
}

// bcastSub is one subscriber. Only its connection's handler goroutine
// writes hist; the producer reads it after it has seen recv reach the last
// message sent (the atomic store/load orders them).
type bcastSub struct {
	b      *banioBroadcast
	cli    *banio.ClientIO
	run    chan error
	recv   atomic.Uint64 // last sequence number received in order
	window uint64        // the window hist belongs to
	hist   Histogram
	mu     sync.Mutex
	err    error
}

// Start serves on 127.0.0.1, connects and subscribes the subscribers, and
// waits until the server has every subscription.
func (b *banioBroadcast) Start(ctx context.Context) error {
	b.base = time.Now()
	bs, err := serveBanio(banio.NewBanServer(loopback, "bench-broadcast"))
	if err != nil {
		return err
	}
	b.srv = bs
	for i := 0; i < bcastSubscribers; i++ {
		cli, err := banio.NewClientIO(bs.addr)
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i+1, err)
		}
		s := &bcastSub{b: b, cli: cli, run: make(chan error, 1)}
		b.subs = append(b.subs, s)
		cli.Listen(bcastAction, s.onTick)
		go func() { s.run <- cli.RunForever() }()
		if err := cli.Subscribe(bcastAction); err != nil {
			return fmt.Errorf("subscriber %d: subscribe: %w", i+1, err)
		}
	}
	for {
		n := 0
		for _, c := range bs.srv.Conns() {
			if _, ok := c.GetData(bcastAction); ok {
				n++
			}
		}
		if n == bcastSubscribers {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d subscriptions reached the server: %w", n, bcastSubscribers, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// NewCaller is never called: banio-broadcast is a Measurer.
func (b *banioBroadcast) NewCaller() (Caller, error) {
	return nil, errors.New("banio-broadcast is a Measurer and has no callers")
}

// onTick checks and counts one delivered message.
func (s *bcastSub) onTick(m *banio.IOMsgRaw) {
	now := time.Since(s.b.base)
	if w := s.b.window.Load(); w != s.window {
		s.window = w
		s.hist.Reset()
	}
	want := s.recv.Load() + 1
	fill := *s.b.fill.Load()
	switch {
	case len(m.Data) != len(fill):
		s.fail(fmt.Errorf("message %d is %d bytes, want %d", want, len(m.Data), len(fill)))
		return
	case binary.LittleEndian.Uint64(m.Data) != want:
		s.fail(fmt.Errorf("got message %d, want %d (out of order or lost)", binary.LittleEndian.Uint64(m.Data), want))
		return
	case want%checkEvery == 0 && !bytes.Equal(m.Data[bcastHeader:], fill[bcastHeader:]):
		s.fail(fmt.Errorf("message %d: content differs", want))
		return
	}
	s.hist.Record(now - time.Duration(binary.LittleEndian.Uint64(m.Data[8:])))
	s.recv.Store(want)
	if s.b.waiting.Load() && want >= s.b.resume.Load() {
		s.b.signal()
	}
}

// fail records the first error of s and wakes the producer.
func (s *bcastSub) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.b.signal()
}

func (s *bcastSub) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (b *banioBroadcast) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// bcastFill returns a payload of size bytes with the fixed filler every
// message carries after its header.
func bcastFill(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// slowest returns the smallest sequence number every subscriber has
// received, or the first subscriber error.
func (b *banioBroadcast) slowest() (uint64, error) {
	low := b.sent
	for _, s := range b.subs {
		if r := s.recv.Load(); r < low {
			low = r
		}
		if err := s.failed(); err != nil {
			return 0, err
		}
	}
	return low, nil
}

// waitFor blocks until every subscriber has received message seq, or a
// subscriber failed, ctx ended, or stall fired.
func (b *banioBroadcast) waitFor(ctx context.Context, seq uint64, stall <-chan time.Time) error {
	b.resume.Store(seq)
	for {
		b.waiting.Store(true)
		low, err := b.slowest()
		if err != nil || low >= seq {
			b.waiting.Store(false)
			return err
		}
		select {
		case <-b.wake:
		case <-ctx.Done():
			b.waiting.Store(false)
			return ctx.Err()
		case <-stall:
			b.waiting.Store(false)
			return fmt.Errorf("subscribers stalled: slowest at message %d of %d", low, b.sent)
		}
	}
}

// Measure broadcasts for window, then waits until every subscriber has every
// message; the ops are all deliveries and Elapsed ends with the last one.
func (b *banioBroadcast) Measure(ctx context.Context, c Case, window time.Duration) (Sample, error) {
	if err := b.Supports(c); err != nil {
		return Sample{}, err
	}
	fill := bcastFill(c.Size)
	b.fill.Store(&fill)
	b.window.Add(1)
	payload := bytes.Clone(fill)
	first := b.sent
	stallTimer := time.NewTimer(window + bcastStall)
	defer stallTimer.Stop()
	start := time.Now()
	deadline := start.Add(window)
	msg := &banio.IOMsg{Action: bcastAction, Data: payload}
	for time.Now().Before(deadline) {
		if low, err := b.slowest(); err != nil {
			return Sample{}, err
		} else if b.sent-low >= bcastAhead {
			if err := b.waitFor(ctx, b.sent-bcastResume, stallTimer.C); err != nil {
				return Sample{}, err
			}
		}
		b.sent++
		binary.LittleEndian.PutUint64(payload, b.sent)
		binary.LittleEndian.PutUint64(payload[8:], uint64(time.Since(b.base)))
		if err := b.srv.srv.Broadcast(msg); err != nil {
			return Sample{}, fmt.Errorf("broadcast: %w", err)
		}
	}
	if err := b.waitFor(ctx, b.sent, stallTimer.C); err != nil {
		return Sample{}, err
	}
	s := Sample{
		Ops:     int64(b.sent-first) * int64(len(b.subs)),
		Elapsed: time.Since(start),
		Latency: new(Histogram),
	}
	for _, sub := range b.subs {
		s.Latency.Merge(&sub.hist)
	}
	if slow := b.srv.srv.SlowConsumers(); slow > 0 {
		return s, fmt.Errorf("%d subscribers cut as slow consumers", slow)
	}
	return s, nil
}

// Close closes the subscribers, waits for their read loops, and closes the
// server.
func (b *banioBroadcast) Close() error {
	var errs []error
	for _, s := range b.subs {
		errs = append(errs, s.cli.Close())
		if err := <-s.run; err != nil {
			errs = append(errs, fmt.Errorf("subscriber RunForever: %w", err))
		}
	}
	if b.srv != nil {
		errs = append(errs, b.srv.close())
	}
	return errors.Join(errs...)
}

// Interface checks.
var (
	_ System     = (*banioBroadcast)(nil)
	_ Measurer   = (*banioBroadcast)(nil)
	_ CaseFilter = (*banioBroadcast)(nil)
)
