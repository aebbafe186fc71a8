package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks run 64 callers, as the dispatch targets do, each applying one job
// at a time and waiting for it, and report jobs/s, fsyncs per job and the mean batch.

const benchCallers = 64

// runCallers splits b.N jobs between 64 goroutines that each run job(i) for theirs.
func runCallers(b *testing.B, job func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchCallers)
	b.ResetTimer()
	start := time.Now()
	for range benchCallers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := job(int(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}

func reportStore(b *testing.B, s Store) {
	st := s.Stats()
	b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/job")
	b.ReportMetric(st.MeanBatch, "records/commit")
	if st.Commits > 0 {
		b.ReportMetric(float64(st.CommitTime.Microseconds())/float64(st.Commits), "µs/commit")
	}
}

func benchSubmit(b *testing.B, s Store) {
	payload := make([]byte, 64)
	runCallers(b, func(i int) error {
		return s.Apply(ctx, Submitted(Spec{ID: fmt.Sprintf("job-%09d", i), Type: "echo", Payload: payload, MaxAttempts: 3}))
	})
	reportStore(b, s)
}

func benchLifecycle(b *testing.B, s Store) {
	payload := make([]byte, 64)
	runCallers(b, func(i int) error { return lifecycle(s, fmt.Sprintf("job-%09d", i), payload) })
	reportStore(b, s)
}

func BenchmarkBoltApplySubmit64(b *testing.B) {
	for _, delay := range []time.Duration{DefaultMaxDelay, 0} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) {
			s, _ := openTemp(b, WithMaxDelay(delay))
			defer s.Close()
			benchSubmit(b, s)
		})
	}
}

func BenchmarkBoltLifecycle64(b *testing.B) {
	for _, delay := range []time.Duration{DefaultMaxDelay, 0} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) {
			s, _ := openTemp(b, WithMaxDelay(delay))
			defer s.Close()
			benchLifecycle(b, s)
		})
	}
}

// BenchmarkMemApplySubmit64 and BenchmarkMemLifecycle64 are the floor: the same state
// machine with no file.
func BenchmarkMemApplySubmit64(b *testing.B) { benchSubmit(b, NewMem()) }

func BenchmarkMemLifecycle64(b *testing.B) { benchLifecycle(b, NewMem()) }

// BenchmarkBoltApplySubmit1: one caller, so every job is a commit of its own: the
// latency of a durable Submit.
func BenchmarkBoltApplySubmit1(b *testing.B) {
	s, _ := openTemp(b)
	defer s.Close()
	payload := make([]byte, 64)
	b.ResetTimer()
	for i := range b.N {
		if err := s.Apply(ctx, Submitted(Spec{ID: fmt.Sprintf("job-%09d", i), Type: "echo", Payload: payload})); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportStore(b, s)
}
