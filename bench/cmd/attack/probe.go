package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// Honest peers that watch how the master serves others while it is attacked.

// latencies collects durations.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	errs int
	last error
}

func (l *latencies) add(d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs++
		l.last = err
		return
	}
	l.d = append(l.d, d)
}

// summary is "n ok, p50 …, max …[, k failed: last error]".
func (l *latencies) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := summarize(l.d)
	if l.errs > 0 {
		s += fmt.Sprintf(", %d failed (%s)", l.errs, shortErr(l.last))
	}
	return s
}

func summarize(d []time.Duration) string {
	if len(d) == 0 {
		return "none completed"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return fmt.Sprintf("%d ok, p50 %s, max %s", len(s), roundDur(s[len(s)/2]), roundDur(s[len(s)-1]))
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// kvProbe is an authenticated banio client doing SetVal + GetVal round trips, one
// after the other, until stop; each GetVal's latency is recorded.
type kvProbe struct {
	c   *banio.ClientIO
	lat latencies
}

func newKVProbe(addr, token string) (*kvProbe, error) {
	var opts []banio.Option
	if token != "" {
		opts = append(opts, banio.WithToken(token))
	}
	c, err := banio.NewClientIO(addr, opts...)
	if err != nil {
		return nil, err
	}
	go func() { _ = c.RunForever() }()
	return &kvProbe{c: c}, nil
}

// loop runs round trips until ctx ends, at most one per pause.
func (p *kvProbe) loop(ctx context.Context, pause time.Duration) {
	for i := 0; ctx.Err() == nil && i < 1_000_000; i++ {
		v := strconv.Itoa(i)
		t0 := time.Now()
		err := p.c.SetVal(&banio.KeyValExpire{Key: "probe", Val: v})
		if err == nil {
			var got string
			got, err = p.c.GetVal("probe", 5)
			if err == nil && got != v {
				err = fmt.Errorf("GetVal = %q, want %q", got, v)
			}
		}
		p.lat.add(time.Since(t0), err)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (p *kvProbe) close() { _ = p.c.Close() }
