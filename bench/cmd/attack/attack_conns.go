package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// Connection-level attacks: many sockets, fake liveness, silent peers.

// connFlood: more connections than the master's file descriptor limit, each
// pinging every few seconds, while the harness checks /healthz and whether an
// honest client still gets in.
func connFlood() attack {
	return attack{
		name:   "conn-flood",
		family: "6. connection flood",
		budget: 90 * time.Second,
		spec:   func(map[string]bool, scale) startSpec { return startSpec{nofile: 1024} },
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			n, sources := sc.n(1100, 1100), 20
			hold := sc.d(12*time.Second, 3*time.Second)
			r.sent("%d connections from %d 127.0.0.x sources (master RLIMIT_NOFILE 1024), each pinging every 3 s, held %v",
				n, sources, hold)
			f := dialFlock(ctx, t.addr, n, sources, 3*time.Second)
			defer f.close()
			f.keep(ctx, zframe("ping", []byte("1")), 3*time.Second)

			var health latencies
			var honest []string
			hctx, cancel := context.WithTimeout(ctx, hold)
			defer cancel()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // /healthz twice a second, each bounded by 2 s
				defer wg.Done()
				hc := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				for hctx.Err() == nil {
					t0 := time.Now()
					resp, err := hc.Get(t.httpURL + "healthz")
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %s", resp.Status)
						}
					}
					health.add(time.Since(t0), err)
					sleepCtx(hctx, 500*time.Millisecond)
				}
			}()
			go func() { // an honest client now and then
				defer wg.Done()
				for i := 0; i < 3 && hctx.Err() == nil; i++ {
					sleepCtx(hctx, hold/5)
					honest = append(honest, honestClient(t.addr))
				}
			}()
			wg.Wait()
			open, served := f.counts()
			fds := t.openFDs()
			r.endWindow()
			r.note("master_fds_during", fds)
			r.outcome("attack connections: %s, %d served (got a pong), %d still open; master fds %d; /healthz: %s; new honest clients: %s",
				f.dialSummary(), served, open, fds, health.summary(), tally(honest))
			return nil
		},
	}
}

// honestClient connects a banio client from 127.0.0.1 and makes one round trip.
func honestClient(addr string) string {
	t0 := time.Now()
	c, err := banio.NewClientIO(addr, banio.WithHandshakeTimeout(3*time.Second))
	if err != nil {
		return "connect: " + shortErr(err)
	}
	defer c.Close()
	go func() { _ = c.RunForever() }()
	if _, err := c.GetVal("honest", 3); err != nil {
		return fmt.Sprintf("connected but no answer within %.0f s (%s)", time.Since(t0).Seconds(), shortErr(err))
	}
	return "served"
}

// emptyFrames: connections that send nothing but zero-length frames every second,
// against a master that drops peers silent for 5 s.
func emptyFrames() attack {
	return attack{
		name:   "empty-frames",
		family: "7. liveness by empty frames",
		budget: 60 * time.Second,
		spec: func(map[string]bool, scale) startSpec {
			return startSpec{args: []string{"-heartbeat", "1s", "-heartbeat-timeout", "5s"}}
		},
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			n, sources := sc.n(1000, 200), 20
			hold := sc.d(15*time.Second, 6500*time.Millisecond)
			r.sent("%d connections from %d sources, no hello, each a zero-length frame (4 zero bytes) every 1 s for %v", n, sources, hold)
			f := dialFlock(ctx, t.addr, n, sources, 3*time.Second)
			defer f.close()
			f.keep(ctx, []byte{0, 0, 0, 0}, time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(hold):
			}
			open, _ := f.counts()
			r.endWindow()
			r.note("closed_within_7s", f.closedWithin(7*time.Second))
			r.outcome("%s; after %v %d still open (heartbeat timeout 5 s), %d closed within 7 s of connecting",
				f.dialSummary(), hold, open, f.closedWithin(7*time.Second))
			return nil
		},
	}
}

// silentBanbot: a banbot-style client (no hello, never pings) that subscribes and
// then stays silent, against a master with a 3 s heartbeat timeout.
func silentBanbot() attack {
	return attack{
		name:   "silent-banbot",
		family: "12. banbot client that never pings",
		budget: 30 * time.Second,
		spec: func(map[string]bool, scale) startSpec {
			return startSpec{args: []string{"-heartbeat", "1s", "-heartbeat-timeout", "3s"}}
		},
		run: func(ctx context.Context, t *target, sc scale, r *run) error {
			silent := sc.d(8*time.Second, 6*time.Second)
			r.sent("a raw peer without hello: subscribe [\"ohlcv_BTC\"], then silent for %v", silent)
			p, err := dialRaw(t.addr, nil, 5*time.Second)
			if err != nil {
				return err
			}
			defer p.close()
			t0 := time.Now()
			if err := p.send(zframe("subscribe", []byte(`["ohlcv_BTC"]`)), 5*time.Second); err != nil {
				return err
			}
			closed, at := p.watchClose()
			select {
			case <-closed:
				r.outcome("closed by the master %.1f s after subscribing", at.Sub(t0).Seconds())
			case <-time.After(silent):
				r.outcome("still open after %v of silence", silent)
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		},
	}
}

// tally joins outcomes, counting repeats: "2× ok; 1× refused".
func tally(outs []string) string {
	if len(outs) == 0 {
		return "none tried"
	}
	var order []string
	n := map[string]int{}
	for _, o := range outs {
		if n[o] == 0 {
			order = append(order, o)
		}
		n[o]++
	}
	parts := make([]string, len(order))
	for i, o := range order {
		parts[i] = fmt.Sprintf("%d× %s", n[o], o)
	}
	return strings.Join(parts, "; ")
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
