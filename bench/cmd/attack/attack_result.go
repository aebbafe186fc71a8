package main

import (
	"context"
	"fmt"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

// frameLimitFlags are names a newer master may give a frame-size flag; the
// attack uses the first the build lists.
var frameLimitFlags = []string{"max-frame-size", "max-frame", "frame-limit", "max-frame-bytes"}

// resultTooLarge: a worker whose handler returns a result larger than a frame may
// be, and a caller that waits with no deadline of its own (the harness bounds it).
func resultTooLarge() attack {
	return attack{
		name:   "result-too-large",
		family: "5. result too large",
		budget: 60 * time.Second,
		spec: func(known map[string]bool, sc scale) startSpec {
			for _, f := range frameLimitFlags {
				if known[f] {
					return startSpec{args: []string{"-" + f, "1048576"}}
				}
			}
			return startSpec{}
		},
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			size := 65 << 20 // over banio.DefaultMaxFrameSize
			if len(t.args) > 0 {
				size = 2 << 20 // over the 1 MiB limit given to the master
			}
			w := worker.New(t.addr, worker.WithName("big-result"), worker.WithConcurrency(1), worker.WithDrainGrace(time.Second))
			w.Handle("big", func(context.Context, *worker.Job) (any, error) { return make([]byte, size), nil })
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
			bound := sc.d(15*time.Second, 3*time.Second)
			r.sent("one job whose handler returns %s; the caller passes context.Background() (the harness gives up after %v)",
				bytesHuman(int64(size)), bound)
			cctx, cancel := context.WithTimeout(ctx, bound)
			defer cancel()
			t0 := time.Now()
			type callResult struct {
				res []byte
				err error
			}
			done := make(chan callResult, 1)
			go func() {
				res, err := c.Call(cctx, "big", "go")
				done <- callResult{res, err}
			}()
			// Read /status just before the harness gives up: once the caller's context
			// ends, the client cancels the job and the master forgets it.
			inflight := -1.0
			var cr callResult
			select {
			case cr = <-done:
			case <-time.After(bound - time.Second):
				inflight = t.statusNumber("inflight")
				cr = <-done
			}
			took := time.Since(t0)
			switch {
			case cr.err == nil:
				r.outcome("resolved after %.1f s with a %s result", took.Seconds(), bytesHuman(int64(len(cr.res))))
			case cctx.Err() != nil:
				r.outcome("not resolved after %.1f s (the caller would wait forever); /status %.0f s in: inflight %.0f",
					took.Seconds(), (bound - time.Second).Seconds(), inflight)
			default:
				r.outcome("resolved after %.1f s with error: %s", took.Seconds(), shortErr(cr.err))
			}
			return nil
		},
	}
}

// workerCount is the number of workers /status lists (-1 if unreadable).
func workerCount(t *target) int {
	doc, err := t.status()
	if err != nil {
		return -1
	}
	ws, _ := doc["workers"].([]any)
	return len(ws)
}

// runWorker runs w and waits until the master lists it (one more worker than it listed
// before). stop ends it, waiting up to 10 s for its drain.
func runWorker(ctx context.Context, t *target, w *worker.Worker) (stop func(), err error) {
	before := max(workerCount(t), 0)
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	stop = func() {
		wcancel()
		select {
		case <-wdone:
		case <-time.After(10 * time.Second):
		}
	}
	if err := waitWorkers(ctx, t, before+1, 10*time.Second); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// waitWorkers waits until the master lists n workers.
func waitWorkers(ctx context.Context, t *target, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if workerCount(t) >= n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the master did not list %d workers within %v", n, timeout)
}
