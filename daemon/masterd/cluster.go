package masterd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/cluster"
	"github.com/banfleet/banfleet/daemon"
	"github.com/banfleet/banfleet/dispatch"
)

// A master in a cluster (-cluster): one of three (or five) master processes that
// replicate the job state through raft (package cluster). The leader dispatches; the
// others answer workers and callers with where the leader is. docs/operations.md,
// "Running a cluster", describes bootstrapping, adding and removing members, and
// backups.

// DefaultRaftAddr is the default of -raft-addr.
const DefaultRaftAddr = "127.0.0.1:6791"

// ClusterFlags are the -cluster flags of Config.
type ClusterFlags struct {
	Enabled       bool
	NodeID        string // raft server id
	RaftAddr      string // raft bind address
	RaftAdvertise string // raft address the others dial, if not RaftAddr
	Advertise     string // banio address announced for redirects, if not -listen
	Peers         string // founding members: id=host:port,…
	Join          string // status URLs of members to ask to add this one
	// Raft's heartbeat and election timeouts (cluster.Config); 0 is raft's default of
	// 1 s each. Shorter ones make a failover faster on a quiet network and risk
	// needless elections on a busy one.
	HeartbeatTimeout, ElectionTimeout time.Duration
}

func (c *ClusterFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, "cluster", false, "run as one member of a cluster of masters replicating their jobs through raft (with -node-id, -raft-addr and -peers or -join)")
	fs.StringVar(&c.NodeID, "node-id", "", "this member's `id` in the cluster: unique and the same across restarts")
	fs.StringVar(&c.RaftAddr, "raft-addr", DefaultRaftAddr, "`address` raft listens on for the other members")
	fs.StringVar(&c.RaftAdvertise, "raft-advertise", "", "raft `address` the other members dial, when -raft-addr is a wildcard")
	fs.StringVar(&c.Advertise, "advertise", "", "banio `address` the other members send workers and callers to while this one leads (default: -listen)")
	fs.StringVar(&c.Peers, "peers", "", "founding members, `id=host:port,...` (raft addresses, this member too): bootstraps a new cluster on first start; give every founding member the same list")
	fs.DurationVar(&c.HeartbeatTimeout, "raft-heartbeat", cluster.DefaultHeartbeatTimeout, "how long a follower waits to hear from the leader before it calls an election")
	fs.DurationVar(&c.ElectionTimeout, "raft-election", cluster.DefaultElectionTimeout, "how long a candidate waits for votes before it tries again")
	fs.StringVar(&c.Join, "join", "", "status `URLs` (http://host:port,...) of members of a running cluster: on start this member asks them to add it")
}

func (c *ClusterFlags) validate(cfg *Config) error {
	if !c.Enabled {
		return nil
	}
	switch {
	case c.NodeID == "":
		return errors.New("-cluster needs -node-id: a unique, stable id for this member")
	case cfg.InMemory:
		return errors.New("-cluster keeps its jobs in raft's log under -data-dir: it cannot run -in-memory")
	case c.RaftAddr == "":
		return errors.New("-cluster needs -raft-addr")
	case c.HeartbeatTimeout < 10*time.Millisecond || c.ElectionTimeout < 10*time.Millisecond:
		return errors.New("-raft-heartbeat and -raft-election must be at least 10ms (raft's default is 1s)")
	case c.Peers != "" && c.Join != "":
		return errors.New("give -peers (found a new cluster) or -join (join a running one), not both")
	}
	if _, err := cluster.ParsePeers(c.Peers); err != nil {
		return err
	}
	return nil
}

// serveCluster is Serve for a member of a cluster: it runs until ctx ends, then
// closes the status server and the member (its master, every connection, raft).
// The listeners are open before the readiness lines are printed, as in Serve.
func (d *Daemon) serveCluster(ctx context.Context, cfg Config, bopts []banio.Option, opts []dispatch.Option, metrics *daemon.Metrics, stdout io.Writer, log *slog.Logger) (err error) {
	peers, err := cluster.ParsePeers(cfg.Cluster.Peers)
	if err != nil {
		return err
	}
	ln, hln, err := listen(cfg)
	if err != nil {
		return err
	}
	advertise := cfg.Cluster.Advertise
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	ccfg := cluster.Config{MeterProvider: metrics.Provider}
	ccfg.ID, ccfg.RaftBind, ccfg.RaftAdvertise = cfg.Cluster.NodeID, cfg.Cluster.RaftAddr, cfg.Cluster.RaftAdvertise
	ccfg.Peers, ccfg.DataDir = peers, filepath.Join(cfg.DataDir, "cluster")
	ccfg.HeartbeatTimeout, ccfg.ElectionTimeout = cfg.Cluster.HeartbeatTimeout, cfg.Cluster.ElectionTimeout
	ccfg.Listener, ccfg.BanioAddr = ln, advertise
	ccfg.NewServer = func() *banio.ServerIO {
		return banio.NewBanServer(ln.Addr().String(), "banfleet-master", append(bopts, banio.WithLogger(log))...)
	}
	ccfg.MasterOptions, ccfg.Retention, ccfg.Logger = opts, cfg.Retention, log
	node, err := cluster.Open(ccfg)
	if err != nil {
		_ = ln.Close()
		if hln != nil {
			_ = hln.Close()
		}
		return err
	}
	defer func() {
		if cerr := node.Close(); cerr != nil {
			log.Warn("cluster member close", "err", cerr)
		}
	}()

	status := d.serveStatus(hln, &Fleet{Node: node, Addr: ln.Addr().String(), Config: &cfg, Metrics: metrics.Handler, Log: log})
	log.Info("cluster member listening", "id", cfg.Cluster.NodeID, "addr", ln.Addr().String(), "raft", node.RaftAddr())
	fmt.Fprintf(stdout, "banfleet master listening on %s\n", ln.Addr())
	fmt.Fprintf(stdout, "banfleet master raft on %s\n", node.RaftAddr())
	if hln != nil {
		log.Info("status server listening", "addr", hln.Addr().String())
		fmt.Fprintf(stdout, "banfleet master status on http://%s/\n", hln.Addr())
	}
	// The join retries until it is added or the member stops, for whichever reason.
	joinCtx, stopJoin := context.WithCancel(ctx)
	defer stopJoin()
	joined := make(chan struct{})
	if cfg.Cluster.Join != "" {
		go func() {
			defer close(joined)
			joinCluster(joinCtx, cfg.Cluster.Join, cfg.Cluster.NodeID, node.RaftAddr(), advertise, stdout, log)
		}()
	} else {
		close(joined)
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case err = <-status.failed():
		err = fmt.Errorf("status server: %w", err)
	}
	stopJoin()
	<-joined
	status.shutdown(log)
	return err
}

// routeCluster adds the membership endpoints of a cluster member to mux:
//
//	POST /cluster/add?id=ID&raft=HOST:PORT[&banio=HOST:PORT]  add a voter
//	POST /cluster/remove?id=ID                                 remove a member
//
// Both must reach the leader; another member answers 409 with the leader's id.
func routeCluster(mux *http.ServeMux, node *cluster.Node) {
	mux.HandleFunc("POST /cluster/add", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		membership(w, node, node.AddVoter(r.Context(), q.Get("id"), q.Get("raft"), q.Get("banio")))
	})
	mux.HandleFunc("POST /cluster/remove", func(w http.ResponseWriter, r *http.Request) {
		membership(w, node, node.RemoveServer(r.Context(), r.URL.Query().Get("id")))
	})
}

func membership(w http.ResponseWriter, node *cluster.Node, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, cluster.ErrNotLeaderHere):
		w.WriteHeader(http.StatusConflict)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
	st := node.Status()
	res := struct {
		OK      bool            `json:"ok"`
		Error   string          `json:"error,omitempty"`
		Cluster *cluster.Status `json:"cluster"`
	}{OK: err == nil, Cluster: &st}
	if err != nil {
		res.Error = err.Error()
	}
	_ = json.NewEncoder(w).Encode(res)
}

// joinCluster asks the members at urls (status URLs, comma-separated) to add this
// one, trying each in turn, again with backoff until one (the leader) accepts or ctx
// ends. Once added it prints "banfleet master joined the cluster via URL" to stdout.
func joinCluster(ctx context.Context, urls, id, raftAddr, banioAddr string, stdout io.Writer, log *slog.Logger) {
	q := url.Values{"id": {id}, "raft": {raftAddr}, "banio": {banioAddr}}
	client := &http.Client{Timeout: 40 * time.Second}
	b := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(0)), ctx)
	_ = backoff.Retry(func() error {
		var last error
		for _, base := range strings.Split(urls, ",") {
			base = strings.TrimRight(strings.TrimSpace(base), "/")
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/cluster/add?"+q.Encode(), nil)
			if err != nil {
				log.Error("cluster: -join URL", "url", base, "err", err)
				return backoff.Permanent(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				last = err
				continue
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				log.Info("cluster: joined", "via", base)
				fmt.Fprintf(stdout, "banfleet master joined the cluster via %s\n", base)
				return nil
			}
			last = fmt.Errorf("%s: %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
		}
		log.Warn("cluster: not added yet; trying again", "err", last)
		return last
	}, b)
}
