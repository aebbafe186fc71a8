package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/internal/proctest"
	"github.com/banfleet/banfleet/worker"
)

// clusterMember is one cmd/master -cluster process of a test.
type clusterMember struct {
	proc   *proctest.Proc
	addr   string // banio
	status string // http://host:port
}

func startMember(t *testing.T, bin, id string, extra ...string) *clusterMember {
	t.Helper()
	args := append([]string{"-cluster", "-node-id", id, "-raft-addr", "127.0.0.1:0", "-listen", "127.0.0.1:0",
		"-http", "127.0.0.1:0", "-data-dir", t.TempDir(), "-orphan-grace", "5m", "-log-level", "warn",
		"-heartbeat", "100ms", "-heartbeat-timeout", "1s"}, extra...)
	p := proctest.Start(t, id, bin, args...)
	m := &clusterMember{proc: p, addr: p.AwaitLine(t, "banfleet master listening on ")}
	m.status = "http://" + strings.TrimSuffix(p.AwaitLine(t, "banfleet master status on http://"), "/")
	return m
}

// clusterStatus reads a member's /status "cluster".
func clusterStatusOf(t *testing.T, m *clusterMember) cluster.Status {
	t.Helper()
	resp, err := http.Get(m.status + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Cluster *cluster.Status `json:"cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Cluster == nil {
		t.Fatalf("/status of %s: %v (cluster %v)", m.status, err, doc.Cluster)
	}
	return *doc.Cluster
}

// TestKill9ClusterLeaderLosesNothing runs three cmd/master -cluster processes (one
// founds the cluster, two join it through its status listener), 3,000 jobs on three
// workers in this process, and kills the leader with SIGKILL while jobs are queued,
// running and resolving. The workers and the Client, given every member's address,
// follow the new leader; every ticket resolves once with its result, and no job runs
// twice.
func TestKill9ClusterLeaderLosesNothing(t *testing.T) {
	leakcheck.Check(t)
	const jobs = 3000
	bin := proctest.Build(t, t.TempDir(), raceEnabled, "github.com/banfleet/banfleet/cmd/master")[0]
	m1 := startMember(t, bin, "m1", "-peers", "m1=127.0.0.1:0")
	m2 := startMember(t, bin, "m2", "-join", m1.status)
	m2.proc.AwaitLine(t, "banfleet master joined the cluster via ")
	m3 := startMember(t, bin, "m3", "-join", m1.status)
	m3.proc.AwaitLine(t, "banfleet master joined the cluster via ")
	members := []*clusterMember{m1, m2, m3}
	st := clusterStatusOf(t, m1)
	if len(st.Members) != 3 || st.Leader == "" {
		t.Fatalf("the cluster is %+v, want three members and a leader", st)
	}
	var lead *clusterMember
	for i, m := range members {
		if st.Leader == "m"+strconv.Itoa(i+1) {
			lead = m
		}
	}
	addrs := m1.addr + "," + m2.addr + "," + m3.addr

	var mu sync.Mutex
	runs := make(map[string]int)
	done := make(chan struct{}, jobs)
	double := func(ctx context.Context, j *worker.Job) (any, error) {
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		select { // long enough that jobs are in flight when the leader dies
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		n, _ := strconv.Atoi(string(j.Payload))
		return strconv.Itoa(2 * n), nil
	}
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopWorkers(); wg.Wait() }()
	bopts := []banio.Option{banio.WithHeartbeat(100*time.Millisecond, time.Second), banio.WithReconnectBackoff(fastReconnect)}
	for i := range 3 {
		w := worker.New(addrs, worker.WithConcurrency(16), worker.WithName("w"+strconv.Itoa(i)), worker.WithBanIO(bopts...), worker.WithDrainGrace(time.Second))
		w.Handle("double", double)
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	client, err := dispatch.NewClient(addrs, dispatch.WithBanIO(bopts...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tks := make([]*dispatch.Ticket, jobs)
	for i := range tks {
		tk, err := client.Submit(context.Background(), dispatch.Job{ID: "c-" + strconv.Itoa(i), Type: "double", Payload: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		tks[i] = tk
		go func() { <-tk.Done(); done <- struct{}{} }()
	}
	for range jobs / 3 {
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("the first leader resolved too few jobs")
		}
	}
	lead.proc.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i, tk := range tks {
		res, err := tk.Wait(ctx)
		if err != nil || string(res) != strconv.Itoa(2*i) {
			t.Fatalf("job %d: %q, %v; want %d", i, res, err, 2*i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range jobs {
		if n := runs["c-"+strconv.Itoa(i)]; n != 1 {
			t.Fatalf("job c-%d ran %d times, want once", i, n)
		}
	}
}
