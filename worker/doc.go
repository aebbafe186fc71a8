// Package worker is banfleet's worker runtime: it connects to a dispatch.Master,
// announces the job types it handles and its capacity, runs each job's handler with a
// context that carries the job's deadline and is cancelled when the caller cancels, and
// answers with the result.
//
//	w := worker.New("master:6789", worker.WithConcurrency(8))
//	w.Handle("resize", func(ctx context.Context, job *worker.Job) (any, error) {
//		return resize(ctx, job.Payload)
//	})
//	err := w.Run(ctx) // until ctx ends, then drains
//
// Files: worker.go (connect, register), runner.go (one goroutine per accepted job,
// bounded by a semaphore of the worker's capacity; panics become errors), drain.go
// (shutdown: stop taking jobs, finish or hand back), blob.go (content-addressed inputs
// fetched once and cached).
//
// It speaks to the master in package protocol's vocabulary and does not import
// package dispatch.
package worker
