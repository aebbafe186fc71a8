// Command clusterfailover measures how long a cluster of masters takes to dispatch
// again after its leader dies: the figure behind "failover under 3 s on loopback"
// (DESIGN.md §3). It is run by hand, never by tests:
//
//	go run ./cmd/clusterfailover -repeat 3
//
// Each repeat starts three members of a cluster in this process (package cluster:
// real raft over loopback TCP, raft-boltdb fsynced, as cmd/master -cluster runs), four
// workers of 64 slots and one remote Client, all given every member's address, and
// -callers closed-loop callers of 64-byte echo jobs. After -warmup it kills the
// leader (Node.Close: raft, its master and every connection) and reports:
//
//	elected   the kill → another member's master open (election, raft.Barrier, the
//	          master rebuilt from the replicated state)
//	failover  the kill → the first job a worker starts after it, which only the new
//	          leader can have dispatched (the dead one's store was fenced first)
//
// and the calls per second before and after. Raft's timings are the bench's loopback
// ones (-heartbeat: heartbeat and election timeout, and the leader lease).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

func main() {
	repeat := flag.Int("repeat", 3, "kills, each on a fresh cluster")
	callers := flag.Int("callers", 64, "closed-loop callers")
	warmup := flag.Duration("warmup", 2*time.Second, "load before the kill")
	heartbeat := flag.Duration("heartbeat", 500*time.Millisecond, "raft heartbeat and election timeout, and leader lease")
	flag.Parse()
	var elected, failover []time.Duration
	for i := range *repeat {
		e, f, before, after, err := once(*callers, *warmup, *heartbeat)
		if err != nil {
			fmt.Fprintln(os.Stderr, "clusterfailover:", err)
			os.Exit(1)
		}
		fmt.Printf("repeat %d: elected %v, failover %v; %.0f calls/s before, %.0f after\n", i+1,
			e.Round(time.Millisecond), f.Round(time.Millisecond), before, after)
		elected, failover = append(elected, e), append(failover, f)
	}
	slices.Sort(elected)
	slices.Sort(failover)
	fmt.Printf("median of %d: elected %v, failover %v (heartbeat %v)\n", *repeat,
		elected[len(elected)/2].Round(time.Millisecond), failover[len(failover)/2].Round(time.Millisecond), *heartbeat)
}

func fastReconnect() backoff.BackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(10*time.Millisecond),
		backoff.WithMaxInterval(100*time.Millisecond), backoff.WithMaxElapsedTime(0))
}

// once runs one repeat.
func once(callers int, warmup, heartbeat time.Duration) (elected, failover time.Duration, before, after float64, err error) {
	dir, err := os.MkdirTemp("", "clusterfailover-")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	var nodes []*cluster.Node
	var peers []cluster.Peer
	var addrs []string
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, 0, 0, err
		}
		id := fmt.Sprintf("m%d", i+1)
		n, err := cluster.Open(cluster.Config{
			ID: id, RaftBind: "127.0.0.1:0", DataDir: dir + "/" + id, Listener: ln,
			HeartbeatTimeout: heartbeat, ElectionTimeout: heartbeat, LeaderLeaseTimeout: heartbeat,
			MasterOptions: []dispatch.Option{dispatch.WithOrphanGrace(5 * time.Second)},
		})
		if err != nil {
			_ = ln.Close()
			return 0, 0, 0, 0, err
		}
		nodes = append(nodes, n)
		peers = append(peers, cluster.Peer{ID: id, RaftAddr: n.RaftAddr()})
		addrs = append(addrs, n.BanioAddr())
	}
	if err := nodes[0].Bootstrap(peers); err != nil {
		return 0, 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lead, err := leader(ctx, nodes, nil)
	if err != nil {
		return 0, 0, 0, 0, err
	}

	all := strings.Join(addrs, ",")
	var kill atomic.Int64 // the kill's time, ns; 0 before
	var first atomic.Int64
	bopts := []banio.Option{banio.WithReconnectBackoff(fastReconnect)}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopWorkers(); wg.Wait() }()
	for i := range 4 {
		w := worker.New(all, worker.WithConcurrency(64), worker.WithName(fmt.Sprintf("w%d", i)), worker.WithBanIO(bopts...))
		w.Handle("echo", func(_ context.Context, j *worker.Job) (any, error) {
			if k := kill.Load(); k != 0 {
				first.CompareAndSwap(0, time.Now().UnixNano())
			}
			return j.Payload, nil
		})
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	if err := lead.Master().WaitWorkers(ctx, 4); err != nil {
		return 0, 0, 0, 0, err
	}
	client, err := dispatch.NewClient(all, dispatch.WithBanIO(bopts...))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer client.Close()
	var calls atomic.Int64
	cctx, stopCallers := context.WithCancel(context.Background())
	var cwg sync.WaitGroup
	payload := make([]byte, 64)
	for range callers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for cctx.Err() == nil {
				if _, err := client.Call(cctx, "echo", payload); err == nil {
					calls.Add(1)
				}
			}
		}()
	}
	defer func() { stopCallers(); cwg.Wait() }()

	time.Sleep(warmup) // load, measured: not a synchronisation
	before = float64(calls.Load()) / warmup.Seconds()
	start := time.Now()
	kill.Store(start.UnixNano())
	go func() { _ = lead.Close() }()
	next, err := leader(ctx, nodes, lead)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	elected = time.Since(start)
	for first.Load() == 0 { // the first start after the kill: polled, as no event says it
		if ctx.Err() != nil {
			return 0, 0, 0, 0, fmt.Errorf("no job dispatched after the kill: %w", ctx.Err())
		}
		time.Sleep(time.Millisecond)
	}
	failover = time.Duration(first.Load() - start.UnixNano())
	n0 := calls.Load()
	time.Sleep(warmup)
	after = float64(calls.Load()-n0) / warmup.Seconds()
	_ = next
	return elected, failover, before, after, nil
}

// leader waits until a member other than not leads with its master open.
func leader(ctx context.Context, nodes []*cluster.Node, not *cluster.Node) (*cluster.Node, error) {
	for {
		var changed []<-chan struct{}
		for _, n := range nodes {
			if n == not {
				continue
			}
			changed = append(changed, n.Changed())
			if n.Master() != nil {
				return n, nil
			}
		}
		select {
		case <-changed[0]:
		case <-changed[len(changed)-1]:
		case <-time.After(50 * time.Millisecond): // a middle member's change, if any
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader: %w", ctx.Err())
		}
	}
}
