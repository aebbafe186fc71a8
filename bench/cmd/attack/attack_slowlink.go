package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

// Slow links: honest peers behind a throttling proxy. Not attacks by intent, but
// what a master does to a peer on a slow link decides whether such peers can work.

// slowPut: a remote client uploads a blob over a slow link.
func slowPut() attack {
	return attack{
		name:   "slow-put",
		family: "8a. slow links",
		budget: 60 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			size, rate := sc.n(15_000_000, 2_000_000), 1_000_000
			return slowUpload(ctx, t, r, size, rate, sc.d(40*time.Second, 10*time.Second))
		},
	}
}

// slowHeartbeat: the same over a slower link, to a master that drops peers silent
// for 5 s.
func slowHeartbeat() attack {
	return attack{
		name:   "slow-heartbeat",
		family: "8c. slow links",
		budget: 60 * time.Second,
		spec: func(map[string]bool, scale) startSpec {
			return startSpec{args: []string{"-heartbeat", "1s", "-heartbeat-timeout", "5s"}}
		},
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			size, rate := sc.n(4_000_000, 3_000_000), 400_000
			return slowUpload(ctx, t, r, size, rate, sc.d(30*time.Second, 15*time.Second))
		},
	}
}

// slowUpload puts a random blob of size bytes through a rate-limited link.
func slowUpload(ctx context.Context, t *target, r *run, size, rate int, bound time.Duration) error {
	r.sent("dispatch.Client.PutBlob of %s (random) through a %s/s link", decimal(int64(size)), decimal(int64(rate)))
	p, err := newThrottle(t.addr, rate)
	if err != nil {
		return err
	}
	defer p.close()
	c, err := dispatch.NewClient(p.addr())
	if err != nil {
		return err
	}
	defer c.Close()
	blob := make([]byte, size)
	_, _ = rand.Read(blob)
	cctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	t0 := time.Now()
	_, err = c.PutBlob(cctx, blob)
	took := time.Since(t0)
	ideal := float64(size) / float64(rate)
	if err != nil {
		r.outcome("failed after %.1f s (the link needs %.0f s): %s", took.Seconds(), ideal, shortErr(err))
		return nil
	}
	r.outcome("stored in %.1f s (the link needs %.0f s)", took.Seconds(), ideal)
	return nil
}

// slowFetch: a worker behind a slow link runs a job that needs a blob the master
// holds (uploaded over a fast connection first).
func slowFetch() attack {
	return attack{
		name:   "slow-fetch",
		family: "8b. slow links",
		budget: 90 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			size, rate := sc.n(15_000_000, 2_000_000), 1_000_000
			bound := sc.d(40*time.Second, 10*time.Second)
			r.sent("a worker behind a %s/s link runs a job that fetches a %s blob (Job.Blob); caller bounded to %v",
				decimal(int64(rate)), decimal(int64(size)), bound)
			c, err := dispatch.NewClient(t.addr)
			if err != nil {
				return err
			}
			defer c.Close()
			blob := make([]byte, size)
			_, _ = rand.Read(blob)
			hash, err := c.PutBlob(ctx, blob)
			if err != nil {
				return fmt.Errorf("fast upload: %w", err)
			}
			p, err := newThrottle(t.addr, rate)
			if err != nil {
				return err
			}
			defer p.close()
			fetches := make(chan string, 16)
			w := worker.New(p.addr(), worker.WithName("slow"), worker.WithConcurrency(1), worker.WithDrainGrace(time.Second))
			w.Handle("needs-blob", func(jctx context.Context, j *worker.Job) (any, error) {
				t0 := time.Now()
				b, err := j.Blob(jctx, string(j.Payload))
				msg := fmt.Sprintf("attempt %d: fetched in %.1f s", j.Attempt, time.Since(t0).Seconds())
				if err != nil {
					msg = fmt.Sprintf("attempt %d: fetch failed after %.1f s (%s)", j.Attempt, time.Since(t0).Seconds(), shortErr(err))
				}
				select {
				case fetches <- msg:
				default:
				}
				if err != nil {
					return nil, err
				}
				return fmt.Sprint(len(b)), nil
			})
			stopWorker, err := runWorker(ctx, t, w)
			if err != nil {
				return err
			}
			defer stopWorker()
			cctx, cancel := context.WithTimeout(ctx, bound)
			defer cancel()
			t0 := time.Now()
			res, err := c.Call(cctx, "needs-blob", hash)
			took := time.Since(t0)
			time.Sleep(500 * time.Millisecond) // the last attempt's handler may still be reporting
			var attempts []string
			for len(fetches) > 0 {
				attempts = append(attempts, <-fetches)
			}
			switch {
			case err == nil:
				r.outcome("job done in %.1f s (result %s); %s", took.Seconds(), res, strings.Join(attempts, "; "))
			default:
				r.outcome("job failed after %.1f s: %s; %s", took.Seconds(), shortErr(err), strings.Join(attempts, "; "))
			}
			return nil
		},
	}
}
