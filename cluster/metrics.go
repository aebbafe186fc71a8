package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/banfleet/banfleet/protocol"
)

// The cluster's metrics (docs/operations.md lists them), made once per Node from
// Config.MeterProvider (default: the global provider):
//
//	banfleet.cluster.leader_changes  counter: leaders this member has seen take over
//	banfleet.cluster.apply.duration  histogram (s): a raft entry's proposal to its being
//	                                 applied on the leader, the wait a Submit's
//	                                 acceptance adds; recorded once per entry, not per job
//	banfleet.cluster.apply.records   counter: records the leader committed
//	banfleet.cluster.leader          gauge: 1 while this member is the leader, else 0
//	banfleet.cluster.store_restarts  counter: leaderships whose replicated store failed
//	                                 while raft still said they led, and were restarted
//	                                 (Node.restartLeadership); anything above 0 is worth
//	                                 reading the member's log for
//
// One histogram record per entry (many records each) keeps them off the cost of a job.
type metrics struct {
	leaderChanges metric.Int64Counter
	applyDuration metric.Float64Histogram
	applyRecords  metric.Int64Counter
	storeRestarts metric.Int64Counter
	leaderGauge   metric.Int64ObservableGauge
	reg           metric.Registration

	leader atomic.Bool
}

// applyBuckets are the bounds of the apply histogram, in seconds: 50 µs doubling to
// about 3.3 s, from a loopback commit to one that waited out an election.
var applyBuckets = func() []float64 {
	b := make([]float64, 17)
	for i := range b {
		b[i] = 50e-6 * float64(uint64(1)<<i)
	}
	return b
}()

// newMetrics makes the instruments; one the provider cannot make is a no-op (the SDK
// returns it with the error, which it also reports to otel's error handler).
func newMetrics(mp metric.MeterProvider) *metrics {
	meter := mp.Meter(protocol.ScopeName)
	m := &metrics{}
	m.leaderChanges, _ = meter.Int64Counter("banfleet.cluster.leader_changes", metric.WithUnit("{change}"),
		metric.WithDescription("Leaders this member has seen take over (an election won by any member, this one included)."))
	m.applyDuration, _ = meter.Float64Histogram("banfleet.cluster.apply.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from the leader proposing a raft entry (the records of many jobs) to its being committed and applied."),
		metric.WithExplicitBucketBoundaries(applyBuckets...))
	m.applyRecords, _ = meter.Int64Counter("banfleet.cluster.apply.records", metric.WithUnit("{record}"),
		metric.WithDescription("Job state records the leader committed through raft."))
	m.storeRestarts, _ = meter.Int64Counter("banfleet.cluster.store_restarts", metric.WithUnit("{restart}"),
		metric.WithDescription("Leaderships whose replicated store failed while raft still said this member led, restarted on a new store."))
	m.leaderGauge, _ = meter.Int64ObservableGauge("banfleet.cluster.leader", metric.WithUnit("1"),
		metric.WithDescription("1 while this member is the cluster's leader, else 0."))
	m.reg, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var v int64
		if m.leader.Load() {
			v = 1
		}
		o.ObserveInt64(m.leaderGauge, v)
		return nil
	}, m.leaderGauge)
	return m
}

func (m *metrics) applied(d time.Duration, records int) {
	m.applyDuration.Record(context.Background(), d.Seconds())
	m.applyRecords.Add(context.Background(), int64(records))
}

func (m *metrics) leaderChanged() { m.leaderChanges.Add(context.Background(), 1) }

func (m *metrics) storeRestarted() { m.storeRestarts.Add(context.Background(), 1) }

func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}
