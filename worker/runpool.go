package worker

import "sync"

// runPool runs jobs on goroutines it keeps: a goroutine that finished a job parks, and
// the next job runs on it rather than on a new one, the way fasthttp's worker pool
// serves requests. A goroutine per job cost, in bench/'s dispatch-w4 at 64 B, 6 % of
// the whole process's CPU: creating it, and growing its stack as the job's span
// started; a parked goroutine keeps the stack it grew.
//
// At most max goroutines park (the worker's capacity: more jobs than that run only
// while some wait for a slot). The most recently parked runs the next job, so a
// light load keeps reusing the same few and their stacks stay warm. Parked goroutines
// cost their stacks, a few KiB each, until stop: a worker that was once busy keeps up
// to its capacity of them while idle.
type runPool struct {
	exec func(*task) // runs one job to its reply
	max  int         // parked goroutines kept
	// afterJob, when set (tests), hears after each job whether its goroutine parked.
	afterJob func(parked bool)

	mu      sync.Mutex
	idle    []*runner // parked, the most recently parked last
	stopped bool      // stop was called: no goroutine parks any more
}

// runner is one parked goroutine: the next job is handed to it on next, nil ends it.
type runner struct {
	next chan *task // cap 1
}

// run runs t on a parked goroutine, or on a new one when none is parked.
func (p *runPool) run(t *task) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		r := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		r.next <- t // never blocks: a parked runner's channel is empty
		return
	}
	p.mu.Unlock()
	go p.loop(t)
}

// loop is one pool goroutine: it runs jobs until the pool has no room to park it, or
// stops.
func (p *runPool) loop(t *task) {
	var r *runner
	for t != nil {
		p.exec(t)
		if r == nil {
			r = &runner{next: make(chan *task, 1)}
		}
		parked := p.park(r)
		if p.afterJob != nil {
			p.afterJob(parked)
		}
		if !parked {
			return
		}
		t = <-r.next
	}
}

// park adds r to the parked goroutines, and reports whether it did.
func (p *runPool) park(r *runner) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= p.max {
		return false
	}
	p.idle = append(p.idle, r)
	return true
}

// stop ends the parked goroutines; those still running a job end after it. Jobs run
// after stop get a goroutine each, which ends with its job.
func (p *runPool) stop() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.stopped = nil, true
	p.mu.Unlock()
	for _, r := range idle {
		r.next <- nil
	}
}
