package banio

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks over loopback TCP, client and server in this process (allocations are
// counted for both ends). Run them with e.g.
//
//	go test -run='^$' -bench=. -benchtime=2s -count=3 ./banio/
//
// Round trip = SetWait → WriteMsg → server handler → SendWaitRes → WaitResult, the
// measure the performance targets are set for (docs/benchmarks.md).

// waitKeyLen is the length of SetWait("")'s keys; a request carries its key in front
// of its payload.
const waitKeyLen = 36

// benchServer serves "rt" requests: Data = key || payload, answered with the payload.
func benchServer(b *testing.B, opts ...Option) string {
	b.Helper()
	srv := NewBanServer("127.0.0.1:0", "bench", opts...)
	srv.InitConn = func(c *BanConn) {
		c.Listen("rt", func(m *IOMsgRaw) {
			_ = c.SendWaitRes(string(m.Data[:waitKeyLen]), m.Data[waitKeyLen:])
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func benchClient(b *testing.B, addr string, opts ...Option) *ClientIO {
	b.Helper()
	c, err := NewClientIO(addr, opts...)
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = c.RunForever() }()
	b.Cleanup(func() { _ = c.Close() })
	return c
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", sizeName(size), callers), func(b *testing.B) {
				benchRoundTrip(b, size, callers)
			})
		}
	}
	// Frames above 1 MiB are read into buffers of their own (readLarge).
	b.Run(fmt.Sprintf("%s/callers=4", sizeName(4<<20)), func(b *testing.B) { benchRoundTrip(b, 4<<20, 4) })
}

// BenchmarkRoundTripZlib is the round trip in banbot's format (no fast codec), i.e.
// what a banbot peer costs.
func BenchmarkRoundTripZlib(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(fmt.Sprintf("%s/callers=64", sizeName(size)), func(b *testing.B) {
			benchRoundTrip(b, size, 64, WithCodec(CodecZlib))
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func benchRoundTrip(b *testing.B, size, callers int, opts ...Option) {
	addr := benchServer(b, opts...)
	c := benchClient(b, addr, opts...)
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	// Warm up: the handshake, pools, the handler goroutine.
	warm := make([]byte, waitKeyLen+size)
	for range 10 {
		if err := rtOnce(c, warm, payload); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, callers)
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, waitKeyLen+size)
			for next.Add(1) <= int64(b.N) {
				if err := rtOnce(c, buf, payload); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rt/s")
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
}

// rtOnce does one round trip, building the request in buf.
func rtOnce(c *ClientIO, buf, payload []byte) error {
	key := c.SetWait("", 1)
	copy(buf, key)
	copy(buf[waitKeyLen:], payload)
	if err := c.WriteMsg(&IOMsg{Action: "rt", Data: buf}); err != nil {
		c.CloseWaitChan(key)
		return err
	}
	res, err := c.WaitResult(context.Background(), key, 10*time.Second)
	if err != nil {
		return err
	}
	if len(res) != len(payload) {
		return fmt.Errorf("reply of %d bytes, want %d", len(res), len(payload))
	}
	return nil
}

// BenchmarkBroadcast: one op is one Broadcast, delivered to 4 subscribers' handlers.
// The producer stays a bounded window ahead of the slowest subscriber (a broadcaster
// that outruns its readers for long is cut as a slow consumer, by design).
func BenchmarkBroadcast(b *testing.B) {
	for _, size := range []int{64, 64 << 10} {
		b.Run(sizeName(size)+"/subs=4", func(b *testing.B) { benchBroadcast(b, size, 4) })
	}
}

func benchBroadcast(b *testing.B, size, nsubs int) {
	srv := NewBanServer("127.0.0.1:0", "bench")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })

	counts := make([]atomic.Int64, nsubs)
	progress := make(chan struct{}, 1)
	for i := range nsubs {
		c := benchClient(b, ln.Addr().String())
		c.Listen("tick", func(*IOMsgRaw) {
			if counts[i].Add(1)%64 == 0 {
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
		if err := c.Subscribe("tick"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.GetVal("barrier", 5); err != nil { // subscription in place
			b.Fatal(err)
		}
	}
	slowest := func() int64 {
		m := counts[0].Load()
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}
	window := int64(max(256, (8<<20)/size))
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	msg := &IOMsg{Action: "tick", Data: payload}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range int64(b.N) {
		for i-slowest() > window {
			select {
			case <-progress:
			case <-time.After(time.Millisecond):
			}
		}
		if err := srv.Broadcast(msg); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for slowest() < int64(b.N) {
		if time.Now().After(deadline) || srv.SlowConsumers() > 0 {
			b.Fatalf("delivered %d of %d (slow consumers %d)", slowest(), b.N, srv.SlowConsumers())
		}
		select {
		case <-progress:
		case <-time.After(time.Millisecond):
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(nsubs*b.N)/time.Since(start).Seconds(), "delivered/s")
}
