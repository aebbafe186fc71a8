package store

import "time"

// Lazy records. A durable master tells a job's caller its outcome before the job's
// Resolved record is durable (the worker keeps its reply until a restarted master
// claims it), so nobody waits for that record; yet committed on its own it costs an
// fdatasync, and one that runs while the caller's next Submit commits makes both
// slower (two concurrent fdatasyncs of one file take about 1.5× as long each as one
// alone, measured on this machine). ApplyLater queues such records to go with the next
// commit somebody waits for, or with a commit of their own once the oldest has waited
// WithMaxLazy: a caller submitting one job after another then pays one sync per job,
// not two. Order is unchanged: lazy records are applied and committed in call order
// with every other call.

// ApplyLater is ApplyThen for records nobody waits for: they may wait up to
// WithMaxLazy (default DefaultMaxLazy) for a commit that a caller of Apply, ApplyThen,
// Load or Expire waits for, and are committed with it. then is called once they are
// durable, like ApplyThen's.
func (b *Bolt) ApplyLater(then func(error), recs ...Record) error {
	if len(recs) == 0 {
		return b.ApplyThen(then, recs...)
	}
	if then == nil {
		then = func(error) {}
	}
	return b.enqueue(&request{recs: prepare(recs, b.opts.blobThreshold), then: then, lazy: true})
}

// holdLazy is the committer's wait while only lazy records are pending: for a kick (a
// request somebody waits for, or Close), a checkpoint's hand-over, or wait.
func (b *Bolt) holdLazy(wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-b.kick:
	case req := <-b.ckReq:
		req.reply <- b.settledHandOver(req.next)
	case <-t.C:
	}
}
