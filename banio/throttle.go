package banio

import (
	"sync"
	"time"
)

// authThrottle slows down token guessing: every failed authentication from a host (a
// wrong token, a bad hello, an action before the hello) bars that host from connecting
// for a penalty that doubles with each failure, from base up to max (WithAuthPenalty;
// base 0 disables it). A host that has not failed for authForgetAfter starts afresh. The
// table is bounded (maxThrottledHosts); past that some records are dropped.
type authThrottle struct {
	base, max time.Duration

	mu    sync.Mutex
	hosts map[string]*strikes
}

type strikes struct {
	n     int       // failures in a row
	until time.Time // connections are refused until then
	last  time.Time // the latest failure
}

const (
	authForgetAfter   = 10 * time.Minute
	maxThrottledHosts = 1 << 16
)

// fail records a failed authentication from host and returns the penalty it earned.
func (t *authThrottle) fail(host string, now time.Time) time.Duration {
	if t.base <= 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hosts == nil {
		t.hosts = make(map[string]*strikes)
	}
	st := t.hosts[host]
	if st == nil || now.Sub(st.last) > authForgetAfter {
		if st == nil && len(t.hosts) >= maxThrottledHosts {
			t.evictSomeLocked()
		}
		st = &strikes{}
		t.hosts[host] = st
	}
	st.n++
	penalty := min(t.base<<min(st.n-1, 20), max(t.max, t.base))
	st.last, st.until = now, now.Add(penalty)
	return penalty
}

// barred reports how much longer host is barred from connecting (0: not barred).
func (t *authThrottle) barred(host string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.hosts[host]; st != nil && now.Before(st.until) {
		return st.until.Sub(now)
	}
	return 0
}

// sweep forgets hosts that have not failed for authForgetAfter.
func (t *authThrottle) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, st := range t.hosts {
		if now.Sub(st.last) > authForgetAfter {
			delete(t.hosts, h)
		}
	}
}

// evictSomeLocked makes room in a full table by dropping a sixteenth of it, chosen by
// map order (effectively at random): amortised O(1) per new host even when a flood of
// addresses keeps the table full.
func (t *authThrottle) evictSomeLocked() {
	drop := len(t.hosts) / 16
	for h := range t.hosts {
		if drop <= 0 {
			break
		}
		delete(t.hosts, h)
		drop--
	}
}
