package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
)

// manyTypes: a worker that announces a huge list of job types, and what it does to
// the throughput of everyone else's jobs.
func manyTypes() attack {
	return attack{
		name:   "many-types",
		family: "10. many job types",
		budget: 90 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			types := sc.n(300_000, 30_000)
			window := sc.d(4*time.Second, time.Second)
			const callers = 64
			r.sent("a raw fleet.register announcing %d job types (via banio.ClientIO), next to an echo worker; %d callers of echo for %v before and after",
				types, callers, window)

			w := worker.New(t.addr, worker.WithName("echo"), worker.WithConcurrency(callers), worker.WithDrainGrace(time.Second))
			w.Handle("echo", func(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
			stopWorker, err := runWorker(ctx, t, w)
			if err != nil {
				return err
			}
			defer stopWorker()
			c, err := dispatch.NewClient(t.addr)
			if err != nil {
				return err
			}
			defer c.Close()
			// Warm up, then measure.
			echoRate(ctx, c, callers, window/4)
			before, errs0 := echoRate(ctx, c, callers, window)

			big, err := banio.NewClientIO(t.addr)
			if err != nil {
				return err
			}
			defer big.Close()
			go func() { _ = big.RunForever() }()
			names := make([]string, types)
			for i := range names {
				names[i] = fmt.Sprintf("bulk-type-%07d", i)
			}
			t0 := time.Now()
			if err := big.WriteMsg(&banio.IOMsg{Action: protocol.ActionRegister, Data: protocol.WorkerInfo{
				ID: "many-types", Name: "many-types", Capacity: 1, Types: names}}); err != nil {
				return fmt.Errorf("register: %w", err)
			}
			// The master handles a connection's messages in order: once this GetVal is
			// answered, the registration has been handled (accepted or refused).
			if _, err := big.GetVal("after-register", 60); err != nil {
				return fmt.Errorf("barrier after the registration: %w", err)
			}
			listed := "listed"
			if err := waitWorkers(ctx, t, 2, 2*time.Second); err != nil {
				listed = "refused (not listed)"
			}
			registered := time.Since(t0)
			after, errs1 := echoRate(ctx, c, callers, window)
			ratio := 0.0
			if before > 0 {
				ratio = after / before
			}
			r.note("echo_per_s_before", before)
			r.note("echo_per_s_after", after)
			r.note("ratio", ratio)
			r.outcome("echo jobs/s: %.0f alone, %.0f with the many-types worker (ratio %.2f); registration %s after %.1f s; failed calls %d/%d",
				before, after, ratio, listed, registered.Seconds(), errs0, errs1)
			return nil
		},
	}
}

// echoRate runs callers closed-loop echo calls for window and returns calls/s and
// the number of failed calls.
func echoRate(ctx context.Context, c *dispatch.Client, callers int, window time.Duration) (float64, int64) {
	wctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	payload := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := c.Call(cctx, "echo", payload)
				ccancel()
				if err != nil {
					if wctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(t0).Seconds(), failed.Load()
}
