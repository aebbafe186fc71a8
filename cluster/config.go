package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"go.opentelemetry.io/otel/metric"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
)

// Defaults of Config's timings: raft's own defaults (raft.DefaultConfig), which suit
// a LAN. On loopback, tests and benchmarks use shorter ones.
const (
	DefaultHeartbeatTimeout   = time.Second
	DefaultElectionTimeout    = time.Second
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	// DefaultSnapshotThreshold is how many entries are applied between snapshots (and
	// DefaultTrailingLogs how many stay in the log after one, for a follower a little
	// behind to catch up from the log rather than a snapshot). An entry carries the
	// records of many jobs, so this is far more jobs than raft's default suggests.
	DefaultSnapshotThreshold = 8192
	DefaultTrailingLogs      = 10240
	DefaultSnapshotInterval  = 2 * time.Minute
)

// Config configures a Node. ID, RaftBind, DataDir and Listener are required.
type Config struct {
	// ID names this member in the cluster: unique, and the same across restarts
	// (raft's server id).
	ID string
	// RaftBind is the address raft's TCP transport listens on ("host:port"; port 0
	// picks one). RaftAdvertise is the address the other members dial, when RaftBind
	// is not it (a wildcard host); "" uses RaftBind's.
	RaftBind, RaftAdvertise string
	// Peers, when this member has no raft state yet, bootstraps a new cluster of
	// exactly these members (this one among them). Every founding member may be given
	// the same list: raft bootstraps once. Empty: the member waits to be added to an
	// existing cluster (Node.AddVoter on its leader) or bootstrapped (Node.Bootstrap).
	Peers []Peer
	// DataDir holds raft's log and stable store (raft.db) and its snapshots
	// (snapshots/). Back it up with the member stopped, or rebuild a member by
	// emptying it and adding the member again.
	DataDir string

	// Listener is the banio listener workers and callers connect to; the Node serves
	// it: with the master while it leads, else answering every hello with where the
	// leader is. BanioAddr is the address announced for redirects ("" uses the
	// listener's, which must then not be a wildcard).
	Listener  net.Listener
	BanioAddr string
	// NewServer makes the banio server of each leadership and each follower spell
	// (every change of role closes every connection, so that workers and callers find
	// the leader again). Default: banio.NewBanServer with no options.
	NewServer func() *banio.ServerIO
	// MasterOptions are passed to dispatch.OpenMaster each time this member leads.
	MasterOptions []dispatch.Option
	// EarlyOutcomes delivers a job's outcome to its caller as soon as the leader has
	// it, as a single durable master does, instead of once its Resolved record has
	// committed (dispatch.WithOutcomesAfterCommit, the default here). It takes one
	// commit off every job's path (at 64 callers on loopback, in runs on a shared
	// machine: 0.28–0.40× dispatch-w4 rather than 0.21–0.24×), at a cost: a leader cut off from the others may, for the
	// moment its lease lasts, tell a caller an outcome the cluster never records; the
	// next leader then settles the job again from its worker's re-offered reply, or
	// runs it again if that worker is gone.
	EarlyOutcomes bool
	// BlobThreshold and Retention are the store's (store.WithBlobThreshold,
	// store.WithRetention); 0 uses store's defaults.
	BlobThreshold int
	Retention     time.Duration

	// Raft's timings (0: the defaults above); raft.Config documents them.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	SnapshotInterval                                      time.Duration
	SnapshotThreshold, TrailingLogs                       uint64
	// NoSync skips raft's log fsyncs: a member's crash may lose what it acknowledged.
	// For tests and benchmarks only.
	NoSync bool

	// StreamLayer replaces raft's TCP transport's listener and dialer (tests that
	// partition a member use one); nil uses raft.NewTCPTransport on RaftBind.
	StreamLayer raft.StreamLayer

	Logger        *slog.Logger         // default: discard
	MeterProvider metric.MeterProvider // default: the global provider
}

// Peer is a founding member of a cluster: its raft server id and raft address.
type Peer struct {
	ID, RaftAddr string
}

// ParsePeers parses "id=host:port,id=host:port,…", the -peers flag of cmd/master.
func ParsePeers(s string) ([]Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Peer
	seen := make(map[string]bool)
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("cluster: peer %q is not id=host:port (e.g. m1=10.0.0.1:7000)", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("cluster: peer %s: raft address %q: %w", id, addr, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("cluster: peer id %q given twice", id)
		}
		seen[id] = true
		out = append(out, Peer{ID: id, RaftAddr: addr})
	}
	return out, nil
}

func (c *Config) validate() error {
	switch {
	case c.ID == "":
		return errors.New("cluster: Config.ID is empty: give every member a unique, stable id")
	case c.RaftBind == "":
		return errors.New("cluster: Config.RaftBind is empty: give raft an address to listen on")
	case c.DataDir == "":
		return errors.New("cluster: Config.DataDir is empty: raft needs a directory for its log and snapshots")
	case c.Listener == nil:
		return errors.New("cluster: Config.Listener is nil: the node serves workers and callers on it")
	}
	if len(c.Peers) > 0 {
		found := false
		for _, p := range c.Peers {
			found = found || p.ID == c.ID
		}
		if !found {
			return fmt.Errorf("cluster: the peers do not include this member (%s): list every founding member, this one too", c.ID)
		}
	}
	return nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout))
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.BlobThreshold <= 0 {
		c.BlobThreshold = store.DefaultBlobThreshold
	}
	if c.Retention <= 0 {
		c.Retention = store.DefaultRetention
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.NewServer == nil {
		c.NewServer = func() *banio.ServerIO { return banio.NewBanServer("", "banfleet-master") }
	}
	if c.BanioAddr == "" {
		c.BanioAddr = c.Listener.Addr().String()
	}
	return c
}
