package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/banfleet/banfleet/worker"
)

// callFunc is one job round trip, through a Master or a Client.
type callFunc func(ctx context.Context, payload []byte) ([]byte, error)

// runCallers spreads b.N calls over a fixed number of concurrent callers.
func runCallers(b *testing.B, callers, size int, call callFunc) {
	payload := make([]byte, size)
	var next atomic.Int64
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				res, err := call(context.Background(), payload)
				if err != nil || len(res) != size {
					b.Errorf("call: %d bytes, %v", len(res), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

func echoBytes(ctx context.Context, j *worker.Job) (any, error) { return j.Payload, nil }

// BenchmarkMaster measures jobs through an in-process master to 1 or 4 workers.
func BenchmarkMaster(b *testing.B) {
	for _, workers := range []int{1, 4} {
		for _, size := range []int{64, 64 << 10} {
			b.Run(fmt.Sprintf("workers=%d/size=%d/callers=64", workers, size), func(b *testing.B) {
				f := newFleet(b)
				for range workers {
					f.startWorker(map[string]worker.Handler{"echo": echoBytes}, worker.WithConcurrency(64))
				}
				runCallers(b, 64, size, func(ctx context.Context, p []byte) ([]byte, error) {
					return f.master.Call(ctx, "echo", p)
				})
			})
		}
	}
}

// BenchmarkClient measures remote calls: client → master → worker → master → client.
func BenchmarkClient(b *testing.B) {
	b.Run("workers=1/size=64/callers=1", func(b *testing.B) {
		f := newFleet(b)
		f.startWorker(map[string]worker.Handler{"echo": echoBytes})
		c := newClientB(b, f.addr)
		runCallers(b, 1, 64, func(ctx context.Context, p []byte) ([]byte, error) {
			return c.Call(ctx, "echo", p)
		})
	})
	for _, workers := range []int{1, 4} {
		for _, size := range []int{64, 64 << 10} {
			b.Run(fmt.Sprintf("workers=%d/size=%d/callers=64", workers, size), func(b *testing.B) {
				f := newFleet(b)
				for range workers {
					f.startWorker(map[string]worker.Handler{"echo": echoBytes}, worker.WithConcurrency(64))
				}
				c := newClientB(b, f.addr)
				runCallers(b, 64, size, func(ctx context.Context, p []byte) ([]byte, error) {
					return c.Call(ctx, "echo", p)
				})
			})
		}
	}
}
