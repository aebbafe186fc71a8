package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// checkEvery makes every checkEvery-th call of each caller (and its first)
// carry a fresh stamp and have its whole reply compared with the request;
// the other calls check the reply length only, so that a 64 KiB compare does
// not dominate the measured cost.
const checkEvery = 64

// closedLoop drives Case.Callers Callers of one System, each in its own
// goroutine issuing its next call as soon as the previous one returned.
type closedLoop struct {
	callers []*loopCaller
	grace   time.Duration
}

// loopCaller is the per-goroutine state of one closed-loop caller; only its
// goroutine touches it during a window, so recording needs no lock.
type loopCaller struct {
	id      uint64
	c       Caller
	payload []byte
	seq     uint64
	ops     int64
	hist    Histogram
	err     error
}

// newClosedLoop asks sys for c.Callers Callers and gives each its own
// payload of c.Size bytes: a short repeating pattern, or random bytes.
func newClosedLoop(sys System, c Case, grace time.Duration, random bool) (*closedLoop, error) {
	l := &closedLoop{grace: grace}
	for i := 0; i < c.Callers; i++ {
		caller, err := sys.NewCaller()
		if err != nil {
			return nil, fmt.Errorf("new caller %d of %d: %w", i+1, c.Callers, err)
		}
		lc := &loopCaller{id: uint64(i + 1), c: caller, payload: make([]byte, c.Size)}
		if random {
			var seed [32]byte
			binary.LittleEndian.PutUint64(seed[:], uint64(i+1))
			_, _ = rand.NewChaCha8(seed).Read(lc.payload)
		} else {
			for j := range lc.payload {
				lc.payload[j] = byte(j*7 + i*13 + 1)
			}
		}
		l.callers = append(l.callers, lc)
	}
	return l, nil
}

// window runs every caller for about d and merges their counts and
// latencies. The window ends when every caller has seen the deadline pass
// after one of its calls, so Elapsed covers all counted calls. If a call
// fails, every caller stops and the first error is returned; if calls are
// still in flight grace after the deadline, they are cancelled.
func (l *closedLoop) window(ctx context.Context, d time.Duration) (Sample, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var abort, timedOut atomic.Bool
	start := time.Now()
	deadline := start.Add(d)
	watchdog := time.AfterFunc(d+l.grace, func() {
		timedOut.Store(true)
		abort.Store(true)
		cancel()
	})
	defer watchdog.Stop()

	var wg sync.WaitGroup
	for _, lc := range l.callers {
		lc.ops, lc.err = 0, nil
		lc.hist.Reset()
		wg.Add(1)
		go func() {
			defer wg.Done()
			lc.run(ctx, deadline, &abort, cancel)
		}()
	}
	wg.Wait()
	s := Sample{Elapsed: time.Since(start), Latency: new(Histogram)}

	var errs []error
	for _, lc := range l.callers {
		s.Ops += lc.ops
		s.Latency.Merge(&lc.hist)
		if lc.err != nil {
			errs = append(errs, lc.err)
		}
	}
	if timedOut.Load() {
		return s, fmt.Errorf("calls still in flight %v after the window ended; cancelled them", l.grace)
	}
	if len(errs) > 0 {
		// Usually one caller failed with the cause and the others report
		// the cancellation it triggered.
		return s, firstCause(errs)
	}
	return s, nil
}

// firstCause returns the first error in errs that is not a context
// cancellation, or the first error if all are.
func firstCause(errs []error) error {
	for _, err := range errs {
		if !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errs[0]
}

// run is one caller's loop.
func (lc *loopCaller) run(ctx context.Context, deadline time.Time, abort *atomic.Bool, cancel func()) {
	p := lc.payload
	for !abort.Load() {
		check := lc.seq%checkEvery == 0
		if check {
			lc.stamp(p)
		}
		t0 := time.Now()
		reply, err := lc.c.Call(ctx, p)
		t1 := time.Now()
		if err == nil {
			err = verify(reply, p, check)
		}
		if err != nil {
			lc.err = fmt.Errorf("caller %d, call %d: %w", lc.id, lc.seq+1, err)
			abort.Store(true)
			cancel()
			return
		}
		lc.hist.Record(t1.Sub(t0))
		lc.ops++
		lc.seq++
		if t1.After(deadline) {
			return
		}
	}
}

// stamp writes the caller id and call sequence number over the start of p,
// so that a reply meant for another call or caller is caught.
func (lc *loopCaller) stamp(p []byte) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], lc.id<<40|lc.seq&(1<<40-1))
	copy(p, b[:])
}

// verify checks an echoed reply against its request: always its length,
// and its content when full is set.
func verify(reply, req []byte, full bool) error {
	if len(reply) != len(req) {
		return fmt.Errorf("reply is %d bytes, request was %d", len(reply), len(req))
	}
	if full && !bytes.Equal(reply, req) {
		return errors.New("reply content differs from the request")
	}
	return nil
}
