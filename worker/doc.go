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
// # When the master goes away
//
// A lost connection cancels nothing: the worker reconnects (banio does, with backoff)
// and its jobs keep running. A reply that cannot be delivered while the connection is
// down is held, and so are the replies sent in the last few seconds (WithReplyLinger),
// since a master killed at that moment may never have had them. Both are bounded, by
// protocol.MaxHeldAttempts and WithHeldReplyBytes; a reply past the bounds is dropped
// with one warning per outage, and the master runs that job again once its grace for
// the lost attempt ends. On registering again the worker lists in its announcement the
// jobs still running from before and the replies it holds (protocol.WorkerInfo.Held),
// then sends those replies on the new connection, behind the announcement. A master
// that restarted re-adopts the attempts it still waits for and cancels the running
// ones it does not want; one that never went away ignores replies it no longer waits
// for. A draining worker repeats its drain after registering again and gives its held
// replies the rest of its grace period to be delivered.
//
// Given the addresses of a cluster's masters ("a:1,b:2,c:3"), the worker connects to
// the leader (a follower answers with where it is), and a failover is to it what a
// restart is: it registers with the new leader, which re-adopts its attempts.
//
// Files: worker.go (connect), register.go (registration, and what a registration after
// a loss claims), reply.go (sending a reply, or holding it while the master is away),
// held.go (the bounded store of replies held while the master is away), sentring.go
// (the replies sent recently, remembered in case the connection drops), runner.go
// (running an accepted job, bounded by a semaphore of the worker's capacity; panics
// become errors), inline.go (short jobs run on the connection's read loop, moved off it
// when they run long), runpool.go (the goroutines other jobs run on, kept for the next
// job), drain.go (shutdown: stop taking jobs, finish or hand back), blob.go
// (content-addressed inputs fetched once and cached).
//
// It speaks to the master in package protocol's vocabulary and does not import
// package dispatch.
package worker
