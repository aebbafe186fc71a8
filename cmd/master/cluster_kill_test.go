package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/internal/proctest"
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

	load := startDoublingLoad(t, addrs, "c-", jobs)
	load.awaitResolved(jobs/3, 60*time.Second, "the first leader resolved too few jobs")
	lead.proc.Kill()

	load.checkEveryJobOnce(90 * time.Second)
}
