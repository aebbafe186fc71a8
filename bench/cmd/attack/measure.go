package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
)

// One attack's run: start a fresh master, read a baseline, attack, read the figures
// of the attack window, provoke GCs to learn what the master still holds, kill it.

// attack is one entry of the catalogue.
type attack struct {
	name   string
	family string
	// spec starts the master; known lists the flags the binary accepts, so an
	// attack may use a newer flag only when it exists.
	spec func(known map[string]bool, sc scale) startSpec
	// run attacks t. It fills r's Sent and Outcome and may leave connections open
	// until the figures are read (run.deferred).
	run func(ctx context.Context, t *target, sc scale, r *run) error
	// budget bounds run (full scale).
	budget time.Duration
}

// run is what an attack reports through.
type run struct {
	res      *Result
	mu       sync.Mutex
	cleanups []func()
	window   func() // closes the measured window (once)
}

// endWindow ends the measured window (CPU, log lines) now, before the attack's
// own teardown, whose costs (a thousand connections closing) are not the
// attack's. Without a call the window ends when run returns.
func (r *run) endWindow() { r.window() }

func (r *run) sent(format string, args ...any)    { r.res.Sent = fmt.Sprintf(format, args...) }
func (r *run) outcome(format string, args ...any) { r.res.Outcome = fmt.Sprintf(format, args...) }

// note adds a machine-readable figure to the JSON report.
func (r *run) note(key string, v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.res.Figures == nil {
		r.res.Figures = map[string]any{}
	}
	r.res.Figures[key] = v
}

// deferred registers fn to run after the figures are read (and before the kill).
func (r *run) deferred(fn func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, fn)
	r.mu.Unlock()
}

func (r *run) cleanup() {
	r.mu.Lock()
	fns := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// execute runs one attack against a fresh master from bin.
func execute(ctx context.Context, bin string, known map[string]bool, a attack, sc scale, maxRSS uint64) *Result {
	res := &Result{Attack: a.name, Family: a.family, Scale: sc.name()}
	started := time.Now()
	defer func() { res.Seconds = time.Since(started).Seconds() }()
	spec := a.spec(known, sc)
	res.MasterArgs = strings.Join(spec.args, " ")
	if spec.token != "" {
		res.MasterArgs = strings.TrimSpace("-token *** " + res.MasterArgs)
	}
	if spec.nofile > 0 {
		res.MasterArgs = strings.TrimSpace(fmt.Sprintf("(ulimit -n %d) %s", spec.nofile, res.MasterArgs))
	}
	t, err := startTarget(ctx, bin, spec)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer t.kill()
	r := &run{res: res}

	// Baseline: the heap a fresh master keeps.
	if live, err := settleGC(ctx, t, 5*time.Second); err == nil {
		res.LiveBeforeMiB = live
	} else {
		res.LiveBeforeMiB = -1
		res.Figures = map[string]any{"baseline_probe": err.Error()}
	}

	cpu0 := t.cpuSeconds()
	logs0, bytes0 := t.logCount()
	msgs0 := t.msgCounts()
	var once sync.Once
	r.window = func() {
		once.Do(func() {
			// What the master logged just before may still be in the pipe.
			time.Sleep(250 * time.Millisecond)
			res.CPUSeconds = t.cpuSeconds() - cpu0
			logs1, bytes1 := t.logCount()
			res.LogLines, res.LogBytes = logs1-logs0, bytes1-bytes0
			res.TopLogs = t.topMessages(3, msgs0)
		})
	}
	actx, cancel := context.WithTimeout(ctx, sc.dur(a.budget))
	guard := watchRSS(actx, t, maxRSS, r)
	err = a.run(actx, t, sc, r)
	cancel()
	<-guard
	if err != nil {
		res.Error = err.Error()
	}
	r.endWindow()
	res.FDsAtEnd = t.openFDs()

	if t.alive() {
		if live, err := settleGC(ctx, t, 30*time.Second); err == nil {
			res.LiveAfterMiB = live
		} else {
			res.LiveAfterMiB = -1
			r.note("after_probe", err.Error())
		}
	} else {
		res.LiveAfterMiB = -1
		res.MasterDied = fmt.Sprintf("master exited during the attack: %v", t.exit)
	}
	res.PeakHeapMiB = t.peakHeap()
	res.PeakRSS = t.procStatus("VmHWM")
	res.GCs = t.gcCount()
	r.cleanup()
	return res
}

// watchRSS kills the master if its RSS passes limit (a safety net for this
// machine, not a figure); the channel closes when ctx ends.
func watchRSS(ctx context.Context, t *target, limit uint64, r *run) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.exited:
				return
			case <-tick.C:
				if rss := t.procStatus("VmRSS"); limit > 0 && rss > limit {
					r.note("killed_by_harness", fmt.Sprintf("RSS %d MiB over the -max-rss limit", rss>>20))
					t.kill()
					return
				}
			}
		}
	}()
	return done
}

// settleGC provokes two GC cycles in the master with light, legitimate traffic that
// it does not keep (a 1 MiB blob uploaded and deleted, repeatedly), and returns the
// live heap (MiB) the second one found. Two, because the first may have begun before
// the call. Bounded by timeout and by 3× the heap goal in bytes.
func settleGC(ctx context.Context, t *target, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var opts []banio.Option
	if t.token != "" {
		opts = append(opts, banio.WithToken(t.token))
	}
	c, err := dispatch.NewClient(t.addr, dispatch.WithBanIO(opts...))
	if err != nil {
		return 0, fmt.Errorf("probe client: %w", err)
	}
	defer c.Close()
	blob := make([]byte, 1<<20)
	n0 := t.gcCount()
	budget := int64(64 << 20)
	if g, ok := t.lastGC(); ok {
		budget = max(budget, 3*int64(g.goal)<<20)
	}
	budget = min(budget, 16<<30)
	var sent int64
	for t.gcCount() < n0+2 {
		if sent > budget {
			return 0, fmt.Errorf("no two GCs after %d MiB of probe traffic", sent>>20)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("probe: %d GCs in %v", t.gcCount()-n0, timeout)
		}
		_, _ = rand.Read(blob[:32]) // a new blob each time, not a dedup hit
		h, err := c.PutBlob(ctx, blob)
		if err != nil {
			return 0, fmt.Errorf("probe upload: %w", err)
		}
		if _, err := c.DeleteBlob(ctx, h); err != nil {
			return 0, fmt.Errorf("probe delete: %w", err)
		}
		sent += int64(len(blob))
	}
	// The line is read asynchronously; give the second one a moment to land.
	time.Sleep(20 * time.Millisecond)
	g, _ := t.lastGC()
	return g.live, nil
}
