package main

import (
	"context"
	"sync"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// lockStarvation: many clients contending one network lock, each holding it about
// a millisecond. Lock retries "busy" with growing pauses (up to 200 ms), which is
// not a queue: some callers may wait very long.
func lockStarvation() attack {
	return attack{
		name:   "lock-starvation",
		family: "11. lock starvation",
		budget: 60 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			clients, window := sc.n(50, 20), sc.d(10*time.Second, 2*time.Second)
			r.sent("%d banio.ClientIOs (one connection each) looping Lock/hold 1 ms/Unlock on one key for %v", clients, window)
			end := time.Now().Add(window)
			lctx, cancel := context.WithDeadline(ctx, end)
			defer cancel()
			var mu sync.Mutex
			var waits []time.Duration
			var unfinished []time.Duration // waits still going when the window closed
			never := 0
			var wg sync.WaitGroup
			var conns []*banio.ClientIO
			for i := 0; i < clients; i++ {
				c, err := banio.NewClientIO(t.addr)
				if err != nil {
					return err
				}
				go func() { _ = c.RunForever() }()
				conns = append(conns, c)
			}
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got := 0
					for lctx.Err() == nil {
						t0 := time.Now()
						tok, err := c.Lock(lctx, "hot", 10*time.Second)
						w := time.Since(t0)
						if err != nil {
							mu.Lock()
							if lctx.Err() != nil {
								unfinished = append(unfinished, w)
							}
							mu.Unlock()
							break
						}
						got++
						mu.Lock()
						waits = append(waits, w)
						mu.Unlock()
						time.Sleep(time.Millisecond)
						_ = c.Unlock("hot", tok)
					}
					if got == 0 {
						mu.Lock()
						never++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			all := append(append([]time.Duration(nil), waits...), unfinished...)
			over := 0
			for _, w := range all {
				if w > 5*time.Second {
					over++
				}
			}
			var maxW time.Duration
			for _, w := range all {
				maxW = max(maxW, w)
			}
			r.note("acquisitions", len(waits))
			r.note("median_wait_ms", percentile(waits, 0.5).Seconds()*1000)
			r.note("max_wait_ms", maxW.Seconds()*1000)
			r.outcome("%d acquisitions; wait median %s, p99 %s, max %s (counting waits cut off by the window); %d waits > 5 s; %d of %d clients never got the lock",
				len(waits), roundDur(percentile(waits, 0.5)), roundDur(percentile(waits, 0.99)), roundDur(maxW), over, never, clients)
			return nil
		},
	}
}
