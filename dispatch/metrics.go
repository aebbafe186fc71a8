package dispatch

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The master's metrics (DESIGN.md §5; docs/operations.md lists them). The instruments
// are made once, in newMaster, from the meter of WithMeterProvider (default: the global
// provider, a no-op until a program installs one), with attribute sets built in
// advance, one typeMetrics per job type label. On the path of every job the histograms
// are recorded outside Master.mu, and the counters are atomic adds to typeMetrics:
// each SDK measurement costs 130 to 170 ns (a lock per instrument), and a job has five,
// so the counters are read, like the gauges, by one callback at collection time
// (observe), under Master.mu once.

// MaxMetricTypes bounds the distinct job types the master's metrics label with their
// name: the first MaxMetricTypes types the master sees (announced by a worker, or
// submitted) keep their own label value for the life of the process; every later type
// is labelled OtherMetricType. Callers can submit any type name, so without a bound a
// caller could make the metrics grow without end; 256 is far more than a fleet serves.
const MaxMetricTypes = 256

// OtherMetricType is the type label of the job types past MaxMetricTypes.
const OtherMetricType = "other"

// Why a job was dispatched again: the reason label of banfleet.jobs.retried, in the
// order of retryReasonNames.
type retryReason uint8

const (
	retryWorkerLost retryReason = iota // its worker's connection was lost during the attempt
	retryError                         // the handler returned a retryable error
	retryHandedBack                    // a draining worker gave it back without running it
	retryNotSent                       // its envelope could not leave (the connection had just closed)
	numRetryReasons
)

var retryReasonNames = [numRetryReasons]string{"worker_lost", "error", "handed_back", "not_sent"}

// attemptHandedBack is the status of banfleet.job.run.duration for an attempt a
// draining worker handed back; the other statuses are outcomeNames.
const attemptHandedBack = numOutcomes

// durationBuckets are the bounds of the duration histograms, in seconds: 1 µs doubling
// 34 times to 4.8 h, since jobs run from microseconds (an echo) to hours (a backtest
// sweep's largest). Explicit base-2 buckets rather than the SDK's exponential
// histogram because the Prometheus text format, what /metrics serves and what most
// scrapers read, has no exponential (native) histograms. A View can override them.
var durationBuckets = func() []float64 {
	b := make([]float64, 35)
	for i := range b {
		b[i] = 1e-6 * float64(uint64(1)<<i)
	}
	return b
}()

// masterMetrics holds the master's instruments.
type masterMetrics struct {
	submitted metric.Int64ObservableCounter
	completed metric.Int64ObservableCounter
	retried   metric.Int64ObservableCounter
	wait      metric.Float64Histogram
	run       metric.Float64Histogram
	e2e       metric.Float64Histogram

	queueDepth   metric.Int64ObservableGauge
	queueAge     metric.Float64ObservableGauge
	workers      metric.Int64ObservableGauge
	slots        metric.Int64ObservableGauge
	blobBytes    metric.Int64ObservableGauge
	blobCount    metric.Int64ObservableGauge
	storeRecords metric.Int64ObservableCounter
	storeCommits metric.Int64ObservableCounter
	storeTime    metric.Float64ObservableCounter
	storeBatch   metric.Int64ObservableGauge
	storeFile    metric.Int64ObservableGauge

	slotBusy, slotFree []metric.ObserveOption
	reg                metric.Registration // the callback; unregistered by Close

	// guarded by Master.mu
	types map[string]*typeMetrics // by label value; at most MaxMetricTypes
	other *typeMetrics            // the label of the types past them, once there are any
}

// typeMetrics are the attribute sets of one type label, built once: what the hot path
// passes to the instruments as they are; and the counts of the counters, which observe
// reports.
type typeMetrics struct {
	label   string
	wait    []metric.RecordOption
	e2e     []metric.RecordOption
	run     [numOutcomes + 1][]metric.RecordOption // by outcome, then attemptHandedBack
	observe []metric.ObserveOption                 // type only
	byClass [numOutcomes][]metric.ObserveOption    // type and status
	byWhy   [numRetryReasons][]metric.ObserveOption

	submitted atomic.Int64
	completed [numOutcomes]atomic.Int64
	retried   [numRetryReasons]atomic.Int64
}

// newMasterMetrics makes the instruments. An instrument the provider cannot make (a
// misconfigured View, say) is a no-op one: the SDK returns it along with the error,
// which it also reports to otel's error handler, so the master goes on without it.
func newMasterMetrics(mp metric.MeterProvider) *masterMetrics {
	meter := mp.Meter(protocol.ScopeName)
	mm := &masterMetrics{types: make(map[string]*typeMetrics)}
	hist := func(name, desc string) metric.Float64Histogram {
		h, _ := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		return h
	}
	mm.submitted, _ = meter.Int64ObservableCounter("banfleet.jobs.submitted", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs accepted by the master (a submission that attaches to a job it holds is not one)."))
	mm.completed, _ = meter.Int64ObservableCounter("banfleet.jobs.completed", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs resolved, by status: ok, error (the handler's error, a bad job), timeout, cancelled, lost (attempts ran out with the worker lost)."))
	mm.retried, _ = meter.Int64ObservableCounter("banfleet.jobs.retried", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs dispatched again, by reason: worker_lost, error (retryable), handed_back (draining worker), not_sent."))
	mm.wait = hist("banfleet.job.wait.duration", "Time from a job's submission (or its re-queueing after a failed attempt) to its dispatch to a worker.")
	mm.run = hist("banfleet.job.run.duration", "Time from an attempt's dispatch to its end (reply or loss of the worker), by the attempt's status.")
	mm.e2e = hist("banfleet.job.e2e.duration", "Time from a job's submission to its resolution.")

	mm.queueDepth, _ = meter.Int64ObservableGauge("banfleet.queue.depth", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs waiting for a worker, per job type."))
	mm.queueAge, _ = meter.Float64ObservableGauge("banfleet.queue.oldest_age", metric.WithUnit("s"),
		metric.WithDescription("How long the job next in line of each type's queue has waited since its submission (0: none waits)."))
	mm.workers, _ = meter.Int64ObservableGauge("banfleet.workers.connected", metric.WithUnit("{worker}"),
		metric.WithDescription("Workers registered with the master, draining ones included."))
	mm.slots, _ = meter.Int64ObservableGauge("banfleet.worker.slots", metric.WithUnit("{slot}"),
		metric.WithDescription("Worker slots: busy (running an attempt) and free (routable, not draining)."))
	mm.blobBytes, _ = meter.Int64ObservableGauge("banfleet.blobs.size", metric.WithUnit("By"),
		metric.WithDescription("Bytes of the blobs the master holds (PutBlob), counted against its budget."))
	mm.blobCount, _ = meter.Int64ObservableGauge("banfleet.blobs.count", metric.WithUnit("{blob}"),
		metric.WithDescription("Blobs the master holds."))
	mm.slotBusy = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("state", "busy")))}
	mm.slotFree = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("state", "free")))}
	return mm
}

// newStoreMetrics makes the instruments of a durable master's store, read from its
// store.Stats at collection time.
func (mm *masterMetrics) newStoreMetrics(mp metric.MeterProvider) {
	meter := mp.Meter(protocol.ScopeName)
	mm.storeRecords, _ = meter.Int64ObservableCounter("banfleet.store.records", metric.WithUnit("{record}"),
		metric.WithDescription("Records the job store applied."))
	mm.storeCommits, _ = meter.Int64ObservableCounter("banfleet.store.commits", metric.WithUnit("{commit}"),
		metric.WithDescription("Transactions the job store committed, each with the records of every change it gathered (0 for the in-memory store)."))
	mm.storeTime, _ = meter.Float64ObservableCounter("banfleet.store.commit.time", metric.WithUnit("s"),
		metric.WithDescription("Time the job store spent committing (writing and syncing), in total."))
	mm.storeBatch, _ = meter.Int64ObservableGauge("banfleet.store.batch.max", metric.WithUnit("{record}"),
		metric.WithDescription("The most records one commit of the job store held."))
	mm.storeFile, _ = meter.Int64ObservableGauge("banfleet.store.file.size", metric.WithUnit("By"),
		metric.WithDescription("Size of the job store's file."))
}

// register arms the callback that reads the gauges, once the master is complete (a
// durable one has its journal).
func (m *Master) registerMetrics(mp metric.MeterProvider) {
	mm := m.metrics
	obs := []metric.Observable{mm.submitted, mm.completed, mm.retried,
		mm.queueDepth, mm.queueAge, mm.workers, mm.slots, mm.blobBytes, mm.blobCount}
	if m.jn != nil {
		mm.newStoreMetrics(mp)
		obs = append(obs, mm.storeRecords, mm.storeCommits, mm.storeTime, mm.storeBatch, mm.storeFile)
	}
	reg, err := mp.Meter(protocol.ScopeName).RegisterCallback(m.observe, obs...)
	if err == nil {
		mm.reg = reg
	}
}

// typeMetricsLocked returns the attribute sets of job type typ's label. m.mu must be
// held.
func (mm *masterMetrics) typeMetricsLocked(typ string) *typeMetrics {
	if tm := mm.types[typ]; tm != nil {
		return tm
	}
	if len(mm.types) >= MaxMetricTypes {
		if mm.other == nil {
			mm.other = newTypeMetrics(OtherMetricType)
		}
		return mm.other
	}
	tm := newTypeMetrics(typ)
	mm.types[typ] = tm
	return tm
}

func newTypeMetrics(label string) *typeMetrics {
	typ := attribute.String("type", label)
	tm := &typeMetrics{label: label}
	one := metric.WithAttributeSet(attribute.NewSet(typ))
	tm.wait = []metric.RecordOption{one}
	tm.e2e = tm.wait
	tm.observe = []metric.ObserveOption{one}
	for c := range numOutcomes {
		set := metric.WithAttributeSet(attribute.NewSet(typ, attribute.String("status", outcomeNames[c])))
		tm.byClass[c] = []metric.ObserveOption{set}
		tm.run[c] = []metric.RecordOption{set}
	}
	tm.run[attemptHandedBack] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(typ, attribute.String("status", "handed_back")))}
	for r := range numRetryReasons {
		tm.byWhy[r] = []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(typ, attribute.String("reason", retryReasonNames[r])))}
	}
	return tm
}

// The hot path's measurements, outside Master.mu. Their context is Background: the
// job's trace context would make the SDK sample exemplars on every measurement.

func (mm *masterMetrics) jobSubmitted(tm *typeMetrics) { tm.submitted.Add(1) }

func (mm *masterMetrics) jobDispatched(tm *typeMetrics, waited time.Duration) {
	mm.wait.Record(context.Background(), waited.Seconds(), tm.wait...)
}

// attemptEnded records the run time of an attempt that ended with status (an
// outcomeClass or attemptHandedBack); ran < 0 means its start is unknown (an attempt
// adopted after a restart).
func (mm *masterMetrics) attemptEnded(tm *typeMetrics, status outcomeClass, ran time.Duration) {
	if ran >= 0 {
		mm.run.Record(context.Background(), ran.Seconds(), tm.run[status]...)
	}
}

func (mm *masterMetrics) jobRetried(tm *typeMetrics, r retryReason) { tm.retried[r].Add(1) }

func (mm *masterMetrics) jobResolved(tm *typeMetrics, c outcomeClass, e2e time.Duration) {
	tm.completed[c].Add(1)
	mm.e2e.Record(context.Background(), e2e.Seconds(), tm.e2e...)
}

// queueReading is one type label's queue at a collection.
type queueReading struct {
	tm     *typeMetrics
	depth  int64
	oldest instant // submission of the job next in line; none when none waits
}

// observe is the metrics callback: the counters and gauges, read under m.mu once, then
// observed outside it. A counter's series appears once it counted something, as a
// synchronous counter's would.
func (m *Master) observe(_ context.Context, o metric.Observer) error {
	mm := m.metrics
	now := instantNow()
	m.mu.Lock()
	labels := make([]*typeMetrics, 0, len(mm.types)+1)
	for _, tm := range mm.types {
		labels = append(labels, tm)
	}
	if mm.other != nil {
		labels = append(labels, mm.other)
	}
	// Types that share the other label are summed (depth) and their oldest job taken.
	readings := make([]queueReading, 0, min(len(m.types), MaxMetricTypes+1))
	at := make(map[*typeMetrics]int, cap(readings))
	for _, jt := range m.types {
		i, ok := at[jt.tm]
		if !ok {
			i = len(readings)
			at[jt.tm] = i
			readings = append(readings, queueReading{tm: jt.tm})
		}
		r := &readings[i]
		r.depth += int64(jt.queue.n)
		if h := jt.queue.head; h != nil && (r.oldest.isZero() || h.submittedAt < r.oldest) {
			r.oldest = h.submittedAt
		}
	}
	workers := int64(len(m.workers))
	var busy, free int64
	for _, w := range m.workers {
		busy += int64(w.inflight)
		if !w.draining && !w.gone {
			free += int64(max(w.info.Capacity-w.inflight, 0))
		}
	}
	m.mu.Unlock()

	for _, tm := range labels {
		if n := tm.submitted.Load(); n > 0 {
			o.ObserveInt64(mm.submitted, n, tm.observe...)
		}
		for c := range tm.completed {
			if n := tm.completed[c].Load(); n > 0 {
				o.ObserveInt64(mm.completed, n, tm.byClass[c]...)
			}
		}
		for r := range tm.retried {
			if n := tm.retried[r].Load(); n > 0 {
				o.ObserveInt64(mm.retried, n, tm.byWhy[r]...)
			}
		}
	}
	for _, r := range readings {
		o.ObserveInt64(mm.queueDepth, r.depth, r.tm.observe...)
		age := 0.0
		if !r.oldest.isZero() {
			age = max(now.sub(r.oldest).Seconds(), 0)
		}
		o.ObserveFloat64(mm.queueAge, age, r.tm.observe...)
	}
	o.ObserveInt64(mm.workers, workers)
	o.ObserveInt64(mm.slots, busy, mm.slotBusy...)
	o.ObserveInt64(mm.slots, free, mm.slotFree...)
	bs := m.BlobStats()
	o.ObserveInt64(mm.blobBytes, bs.Bytes)
	o.ObserveInt64(mm.blobCount, int64(bs.Count))
	if m.jn != nil {
		s := m.jn.st.Stats()
		o.ObserveInt64(mm.storeRecords, int64(s.Records))
		o.ObserveInt64(mm.storeCommits, int64(s.Commits))
		o.ObserveFloat64(mm.storeTime, s.CommitTime.Seconds())
		o.ObserveInt64(mm.storeBatch, int64(s.MaxBatch))
		o.ObserveInt64(mm.storeFile, s.FileBytes)
	}
	return nil
}
