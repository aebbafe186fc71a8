package main

import (
	"context"
	"fmt"
	"time"

	"github.com/banfleet/banfleet/worker"
)

// echoWorkers are the dispatch systems' workers: n workers of dispatchConcurrency
// slots each, named bench-worker-<i>, echoing every "echo" job's payload.
type echoWorkers struct {
	stop    context.CancelFunc
	runErrs chan error // one Worker.Run result per started worker
	running int
}

// startEchoWorkers starts n workers connecting to addr; they run until stop.
func startEchoWorkers(addr string, n int, opts ...worker.Option) *echoWorkers {
	ctx, stop := context.WithCancel(context.Background())
	ws := &echoWorkers{stop: stop, runErrs: make(chan error, n)}
	for i := range n {
		w := worker.New(addr, append([]worker.Option{worker.WithConcurrency(dispatchConcurrency), worker.WithName(fmt.Sprintf("bench-worker-%d", i+1))}, opts...)...)
		w.Handle("echo", func(ctx context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
		ws.running++
		go func() { ws.runErrs <- w.Run(ctx) }()
	}
	return ws
}

// ended is where a worker's Run result arrives; the caller that takes one calls
// gone.
func (ws *echoWorkers) ended() <-chan error { return ws.runErrs }

// gone notes that one worker's Run result was taken from ended.
func (ws *echoWorkers) gone() { ws.running-- }

// close stops the workers and waits up to 5 s for them to drain, returning their
// errors.
func (ws *echoWorkers) close() []error {
	if ws == nil {
		return nil
	}
	ws.stop()
	var errs []error
	timeout := time.After(5 * time.Second)
	for ws.running > 0 {
		select {
		case err := <-ws.runErrs:
			ws.running--
			if err != nil {
				errs = append(errs, fmt.Errorf("worker: %w", err))
			}
		case <-timeout:
			return append(errs, fmt.Errorf("%d workers still draining after 5s", ws.running))
		}
	}
	return errs
}
