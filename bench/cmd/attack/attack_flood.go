package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Floods: cheap requests whose cost on the master is its log.

// tokenGuess: wrong-token hellos as fast as the master answers them, one new
// connection per guess, all from one address.
func tokenGuess() attack {
	return attack{
		name:   "token-guess",
		family: "9a. flooding",
		budget: 40 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{token: harnessToken} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			window := sc.d(5*time.Second, 1500*time.Millisecond)
			const workers, maxGuesses = 8, 200_000
			r.sent("wrong-token hellos from 127.0.0.2 for %v, %d at a time, a new connection each", window, workers)
			src := loopbackSource(0, 1)
			var refused, other, dialFail atomic.Int64
			var lastErr atomic.Value
			wctx, cancel := context.WithTimeout(ctx, window)
			defer cancel()
			logs0, _ := t.logCount()
			t0 := time.Now()
			var wg sync.WaitGroup
			var issued atomic.Int64
			for g := 0; g < workers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for wctx.Err() == nil && issued.Add(1) <= maxGuesses {
						p, err := dialRaw(t.addr, src, 2*time.Second)
						if err != nil {
							dialFail.Add(1)
							lastErr.Store(err.Error())
							continue
						}
						w, err := p.hello(fmt.Sprintf("guess-%d", issued.Load()), true, 2*time.Second)
						if err == nil && w.Error != "" {
							refused.Add(1)
							// Wait for the master to close first, so TIME_WAIT stays on its side
							// and our ports are not used up.
							_ = p.nc.SetReadDeadline(time.Now().Add(time.Second))
							_, _, _ = p.recv(time.Second)
						} else {
							other.Add(1)
							if err != nil {
								lastErr.Store(err.Error())
							}
						}
						p.close()
					}
				}()
			}
			wg.Wait()
			took := time.Since(t0)
			logs1, _ := t.logCount()
			n := refused.Load()
			perGuess := 0.0
			if n > 0 {
				perGuess = float64(logs1-logs0) / float64(n)
			}
			out := fmt.Sprintf("%d guesses refused in %.1f s (%.0f/s), %.2f master log lines per guess", n, took.Seconds(), float64(n)/took.Seconds(), perGuess)
			if other.Load()+dialFail.Load() > 0 {
				out += fmt.Sprintf("; %d not refused cleanly, %d dials failed (last: %v)", other.Load(), dialFail.Load(), lastErr.Load())
			}
			r.note("guesses_per_second", float64(n)/took.Seconds())
			r.note("log_lines_per_guess", perGuess)
			r.outcome("%s", out)
			return nil
		},
	}
}

// badBlobGet: malformed fleet.blob.get requests on one connection.
func badBlobGet() attack {
	return attack{
		name:   "bad-blob-get",
		family: "9b. flooding",
		budget: 40 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			n := sc.n(10_000, 2_000)
			r.sent("%d fleet.blob.get frames with non-JSON data on one connection (after a hello), then an onGetVal", n)
			p, err := dialRaw(t.addr, nil, 5*time.Second)
			if err != nil {
				return err
			}
			defer p.close()
			if _, err := p.hello("", true, 5*time.Second); err != nil {
				return fmt.Errorf("hello: %w", err)
			}
			f := frame("fleet.blob.get", rawTagged([]byte("not json")), false)
			batch := make([]byte, 0, len(f)*100)
			for i := 0; i < 100; i++ {
				batch = append(batch, f...)
			}
			t0 := time.Now()
			for sent := 0; sent < n; sent += 100 {
				if err := p.send(batch, 10*time.Second); err != nil {
					return fmt.Errorf("write: %w", err)
				}
			}
			if _, _, err := p.roundTrip("flood-done", 30*time.Second); err != nil {
				r.outcome("no answer to the onGetVal after the flood: %s", shortErr(err))
				return nil
			}
			time.Sleep(200 * time.Millisecond) // let the last log lines reach our reader
			r.outcome("handled in %.1f s", time.Since(t0).Seconds())
			return nil
		},
	}
}
