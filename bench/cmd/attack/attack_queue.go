package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/banfleet/banfleet/dispatch"
)

// queueLeak: an honest remote client submits jobs nobody serves, with a short
// timeout. Every job times out; what the master still holds afterwards leaked.
func queueLeak() attack {
	return attack{
		name:   "queue-leak",
		family: "4. queue leak",
		budget: 150 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			big, distinct := sc.n(60_000, 6_000), sc.n(200_000, 20_000)
			timeout := 50 * time.Millisecond
			r.sent("dispatch.Client: %d jobs of 10 KiB for one type nobody serves, then %d tiny jobs of distinct types; all with a %v timeout",
				big, distinct, timeout)
			c, err := dispatch.NewClient(t.addr)
			if err != nil {
				return err
			}
			r.deferred(func() { _ = c.Close() })
			payload := make([]byte, 10<<10)
			t0 := time.Now()
			a := submitMany(ctx, c, big, func(int) dispatch.Job {
				return dispatch.Job{Type: "unserved", Payload: payload, Timeout: timeout}
			})
			t1 := time.Now()
			b := submitMany(ctx, c, distinct, func(i int) dispatch.Job {
				return dispatch.Job{Type: fmt.Sprintf("type-%07d", i), Payload: "x", Timeout: timeout}
			})
			t2 := time.Now()
			queued := t.statusNumber("queued")
			r.note("phase1_seconds", t1.Sub(t0).Seconds())
			r.note("phase2_seconds", t2.Sub(t1).Seconds())
			r.note("status_queued_after", queued)
			r.outcome("10 KiB jobs: %s in %.1f s; distinct types: %s in %.1f s; /status queued afterwards: %.0f",
				a, t1.Sub(t0).Seconds(), b, t2.Sub(t1).Seconds(), queued)
			return nil
		},
	}
}

// outcomes counts how jobs ended, by a short error description.
type outcomes struct {
	mu sync.Mutex
	by map[string]int
}

func (o *outcomes) add(err error) {
	k := "ok"
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded):
		k = "deadline"
	case errors.Is(err, dispatch.ErrQueueFull):
		k = "queue full"
	default:
		k = shortErr(err)
	}
	o.mu.Lock()
	o.by[k]++
	o.mu.Unlock()
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for k, n := range o.by {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// submitMany submits n jobs, at most 4096 unresolved at once, and waits for every
// ticket (each bounded by 30 s). It stops early when ctx ends.
func submitMany(ctx context.Context, c *dispatch.Client, n int, job func(i int) dispatch.Job) *outcomes {
	o := &outcomes{by: map[string]int{}}
	sem := make(chan struct{}, 4096)
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		tk, err := c.Submit(ctx, job(i))
		if err != nil {
			o.add(err)
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := tk.Wait(wctx)
			if wctx.Err() != nil && ctx.Err() == nil {
				err = fmt.Errorf("no outcome within 30 s")
			}
			o.add(err)
		}()
	}
	wg.Wait()
	return o
}
