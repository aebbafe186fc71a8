// Package leakcheck fails a test whose goroutines outlive it, in the spirit of
// go.uber.org/goleak but from the standard library only.
package leakcheck

import (
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Check snapshots the goroutines running now and registers a cleanup that fails t if,
// after the test and its other cleanups, goroutines that were not there before are
// still running after a grace period (goroutines end asynchronously after Close).
// Call it first in a test, so its cleanup runs last.
func Check(t testing.TB) {
	t.Helper()
	before := snapshot()
	t.Cleanup(func() {
		var extra []string
		deadline := time.Now().Add(5 * time.Second)
		for {
			extra = extra[:0]
			for id, stack := range snapshot() {
				if _, ok := before[id]; !ok && !ignorable(stack) {
					extra = append(extra, stack)
				}
			}
			if len(extra) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			t.Errorf("leakcheck: %d goroutine(s) leaked:\n\n%s", len(extra), strings.Join(extra, "\n\n"))
		}
	})
}

// snapshot maps goroutine ids to their stacks.
func snapshot() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := make(map[string]string)
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		fields := strings.Fields(header) // "goroutine 12 [running]:"
		if len(fields) >= 2 {
			out[fields[1]] = g
		}
	}
	return out
}

// ignorable filters goroutines that belong to the runtime or the test framework.
func ignorable(stack string) bool {
	for _, s := range []string{
		"testing.tRunner", "testing.(*T).Run", "testing.(*M).", "os/signal.signal_recv",
		"runtime.ensureSigM", "leakcheck.snapshot",
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}
