// Command storechurn runs a long churn of jobs through a durable master and reports
// what its store did and how large its file is: the figures behind "the file stays
// bounded" in docs/benchmarks.md. It is run by hand, never by tests:
//
//	go run ./cmd/storechurn -jobs 1000000
//
// The master (dispatch.OpenMaster on a bolt file in a temp dir, fsynced as cmd/master
// runs it), 4 workers of 64 slots and one remote dispatch.Client with -callers
// closed-loop callers run in this process over loopback, like bench's
// dispatch-durable-w4. Outcomes are retained as the master's defaults say (5 minutes,
// at most 100,000), so the file holds the unresolved jobs plus the retained outcomes;
// every -report jobs it prints the file's size.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
)

func main() {
	jobs := flag.Int64("jobs", 1_000_000, "jobs to run")
	callers := flag.Int("callers", 64, "concurrent closed-loop callers")
	size := flag.Int("size", 64, "payload bytes")
	report := flag.Int64("report", 100_000, "print the store's figures every this many jobs")
	flag.Parse()
	if err := run(*jobs, *callers, *size, *report); err != nil {
		fmt.Fprintln(os.Stderr, "storechurn:", err)
		os.Exit(1)
	}
}

func run(jobs int64, callers, size int, report int64) error {
	dir, err := os.MkdirTemp("", "storechurn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "master.db")
	st, err := store.OpenBolt(path)
	if err != nil {
		return err
	}
	srv := banio.NewBanServer("", "storechurn")
	m, err := dispatch.OpenMaster(srv, st)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(ln) }()
	addr := ln.Addr().String()
	wctx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	var wg sync.WaitGroup
	for range 4 {
		w := worker.New(addr, worker.WithConcurrency(64))
		w.Handle("echo", func(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	wait, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitWorkers(wait, 4); err != nil {
		return err
	}
	client, err := dispatch.NewClient(addr)
	if err != nil {
		return err
	}
	payload := make([]byte, size)
	var next, failed atomic.Int64
	start := time.Now()
	last := start
	var mu sync.Mutex
	var cw sync.WaitGroup
	for range callers {
		cw.Add(1)
		go func() {
			defer cw.Done()
			for {
				n := next.Add(1)
				if n > jobs {
					return
				}
				if _, err := client.Call(context.Background(), "echo", payload); err != nil {
					failed.Add(1)
				}
				if n%report == 0 {
					mu.Lock()
					now := time.Now()
					s := st.Stats()
					fmt.Printf("%9d jobs  %7.0f jobs/s  file %6.1f MiB (%d free pages)  held %d jobs (%d resolved)  %.3f fsyncs/job  %.1f records/commit\n",
						n, float64(report)/now.Sub(last).Seconds(), float64(s.FileBytes)/(1<<20), s.FreePages, s.Jobs, s.Resolved,
						float64(s.Fsyncs)/float64(n), s.MeanBatch)
					last = now
					mu.Unlock()
				}
			}
		}()
	}
	cw.Wait()
	elapsed := time.Since(start)
	_ = client.Close()
	stopWorkers()
	wg.Wait()
	_ = m.Close()
	_ = srv.Close()
	s := st.Stats()
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Printf("%d jobs in %v (%.0f jobs/s), %d failed; %d records in %d commits (%.1f per commit, max %d), %.3f fsyncs/job\n",
		jobs, elapsed.Round(time.Millisecond), float64(jobs)/elapsed.Seconds(), failed.Load(), s.Records, s.Commits, s.MeanBatch, s.MaxBatch,
		float64(s.Fsyncs)/float64(jobs))
	before, after, err := store.Compact(path)
	if err != nil {
		return err
	}
	fmt.Printf("file: %.1f MiB at the end holding %d jobs (%d resolved, retained); %.1f MiB after store.Compact\n",
		float64(before)/(1<<20), s.Jobs, s.Resolved, float64(after)/(1<<20))
	return nil
}
