package main

import (
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/store"
)

// status is the /status document. Its shape is part of the operations contract
// (docs/operations.md): fields are never omitted, lists and maps are never null (only
// "store" and "cluster" are null, when there is none). Fields are only ever added.
type status struct {
	Listen        string         `json:"listen"`         // the banio address
	Version       string         `json:"version"`        // the master's banfleet build
	StartedAt     time.Time      `json:"started_at"`     // RFC 3339
	TakenAt       time.Time      `json:"taken_at"`       // when this document was read
	UptimeSeconds float64        `json:"uptime_seconds"` // since the master started
	Workers       []workerStatus `json:"workers"`        // in registration order
	Capacity      int            `json:"capacity"`       // sum of the workers' capacities
	InFlight      int            `json:"inflight"`       // jobs running on workers
	Queued        int            `json:"queued"`         // jobs waiting for a worker
	QueuedByType  map[string]int `json:"queued_by_type"` // the same, per job type
	Orphaned      int            `json:"orphaned"`       // running when a durable master started, not yet claimed
	Done          uint64         `json:"done"`           // jobs resolved with a result
	Failed        uint64         `json:"failed"`         // jobs failed: a handler's error, a bad job
	TimedOut      uint64         `json:"timed_out"`      // jobs whose timeout or deadline passed
	Cancelled     uint64         `json:"cancelled"`      // jobs cancelled by their caller (or by the master's shutdown)
	Lost          uint64         `json:"lost"`           // jobs whose attempts ran out with their worker lost
	Retried       uint64         `json:"retried"`        // re-dispatches
	Throughput    float64        `json:"throughput"`     // jobs done per second, averaged over the last 10 s
	Rate          float64        `json:"rate"`           // jobs done per second in the last second sampled
	BlobsServed   uint64         `json:"blobs_served"`   // blob downloads answered

	Types          []typeStatus  `json:"types"` // the most queued first; at most dispatch.SnapshotTypes
	TypesOmitted   int           `json:"types_omitted"`
	WorkersOmitted int           `json:"workers_omitted"` // past dispatch.SnapshotWorkers
	History        historyStatus `json:"history"`
	Recent         recentStatus  `json:"recent"`
	Blobs          blobsStatus   `json:"blobs"`
	Store          *storeStatus  `json:"store"`   // null for an in-memory master
	Cluster        any           `json:"cluster"` // null while the master runs alone
	Pprof          bool          `json:"pprof"`   // /debug/pprof/ is served (-pprof)
}

// workerStatus is one worker in /status.
type workerStatus struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Capacity int               `json:"capacity"`
	InFlight int               `json:"inflight"`
	Labels   map[string]string `json:"labels"`
	Types    []string          `json:"types"`
	Remote   string            `json:"remote"`
	Draining bool              `json:"draining"`

	State            string    `json:"state"`   // ready, busy (every slot taken), draining, gone
	Version          string    `json:"version"` // its banfleet build; "" from a worker too old to say
	Done             uint64    `json:"done"`    // attempts that ended on it, by outcome
	Failed           uint64    `json:"failed"`
	TimedOut         uint64    `json:"timed_out"`
	Cancelled        uint64    `json:"cancelled"`
	Lost             uint64    `json:"lost"`
	HandedBack       uint64    `json:"handed_back"`
	Rate             float64   `json:"rate"` // attempts done per second in the last second sampled
	ConnectedAt      time.Time `json:"connected_at"`
	LastHeardAt      time.Time `json:"last_heard_at"`      // a message from it was last seen, to the second
	LastHeardSeconds float64   `json:"last_heard_seconds"` // how long ago
}

// typeStatus is one job type in /status.
type typeStatus struct {
	Type             string  `json:"type"`
	Queued           int     `json:"queued"`
	QueuedBytes      int64   `json:"queued_bytes"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"` // since the submission of the job next in line
	Workers          int     `json:"workers"`            // workers announcing it
	FreeSlots        int     `json:"free_slots"`         // their free slots, draining ones excepted
}

// historyStatus is the throughput history: one point per second, oldest first.
type historyStatus struct {
	IntervalSeconds float64       `json:"interval_seconds"`
	Points          []pointStatus `json:"points"`
	PeakRate        float64       `json:"peak_rate"` // the most jobs done per second in one point
}

type pointStatus struct {
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
	OK      uint64    `json:"ok"`     // jobs resolved with a result
	NotOK   uint64    `json:"not_ok"` // failed, lost, timed out, cancelled
}

// recentStatus lists the last jobs resolved without a result, most recent first, at
// most dispatch.RecentPerClass of each.
type recentStatus struct {
	Failed    []jobStatus `json:"failed"`
	Lost      []jobStatus `json:"lost"`
	TimedOut  []jobStatus `json:"timed_out"`
	Cancelled []jobStatus `json:"cancelled"`
}

// jobStatus is one job: in recent, and the answer of /status/job.json.
type jobStatus struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	Phase       string     `json:"phase"`   // queued, running, backoff, committing, orphaned, resolved
	Outcome     string     `json:"outcome"` // ok, error, timeout, cancelled, lost; "" while unresolved
	Attempts    int        `json:"attempts"`
	Spent       int        `json:"spent"`
	MaxAttempts int        `json:"max_attempts"` // 0: not known
	Worker      string     `json:"worker"`
	SubmittedAt *time.Time `json:"submitted_at"` // null: not known
	StartedAt   *time.Time `json:"started_at"`   // the current or last attempt's; null: none, or not known
	ResolvedAt  *time.Time `json:"resolved_at"`  // null while unresolved
	WaitSeconds float64    `json:"wait_seconds"` // queue wait before that attempt
	RunSeconds  float64    `json:"run_seconds"`  // that attempt's run: until resolved, or until now
	Error       string     `json:"error"`
	Source      string     `json:"source"` // live, recent, store, retained
}

type blobsStatus struct {
	Count   int          `json:"count"`
	Bytes   int64        `json:"bytes"`
	Limit   int64        `json:"limit"`
	Served  uint64       `json:"served"`
	Largest []blobStatus `json:"largest"`
}

type blobStatus struct {
	Hash      string `json:"hash"`
	Bytes     int64  `json:"bytes"`
	Downloads uint64 `json:"downloads"`
}

// storeStatus is store.Stats.
type storeStatus struct {
	Records       uint64  `json:"records"`
	Rejected      uint64  `json:"rejected"`
	Commits       uint64  `json:"commits"`
	Checkpoints   uint64  `json:"checkpoints"`
	Fsyncs        uint64  `json:"fsyncs"`
	MeanBatch     float64 `json:"mean_batch"`
	MaxBatch      int     `json:"max_batch"`
	CommitSeconds float64 `json:"commit_seconds"`
	FileBytes     int64   `json:"file_bytes"`
	WALBytes      int64   `json:"wal_bytes"`
	FreePages     int     `json:"free_pages"`
	Jobs          int     `json:"jobs"`
	JobsQueued    int     `json:"jobs_queued"`
	JobsRunning   int     `json:"jobs_running"`
	JobsResolved  int     `json:"jobs_resolved"`
	Blobs         int     `json:"blobs"`
	BlobBytes     int64   `json:"blob_bytes"`
}

// document reads the master once and builds /status.
func (s *statusServer) document() status {
	snap := s.fleet.Snapshot()
	now := s.now()
	st := snap.Stats
	out := status{
		Listen: s.listen, Version: s.version,
		StartedAt:     s.started.UTC().Truncate(time.Second),
		TakenAt:       now.UTC(),
		UptimeSeconds: now.Sub(s.started).Seconds(),
		Workers:       make([]workerStatus, 0, len(snap.Workers)),
		Capacity:      st.Capacity, InFlight: st.InFlight, Queued: st.Queued, QueuedByType: map[string]int{},
		Orphaned: st.Orphaned, Done: st.Done, Failed: st.Failed, TimedOut: st.TimedOut, Cancelled: st.Cancelled,
		Lost: st.Lost, Retried: st.Retried, Throughput: st.Throughput, Rate: snap.History.Rate,
		BlobsServed:  snap.Blobs.Served,
		Types:        make([]typeStatus, 0, len(snap.Types)),
		TypesOmitted: snap.TypesOmitted, WorkersOmitted: snap.WorkersOmitted,
		History: newHistoryStatus(snap.History),
		Recent: recentStatus{
			Failed: jobStatuses(snap.Recent.Failed, now), Lost: jobStatuses(snap.Recent.Lost, now),
			TimedOut: jobStatuses(snap.Recent.TimedOut, now), Cancelled: jobStatuses(snap.Recent.Cancelled, now),
		},
		Blobs: blobsStatus{Count: snap.Blobs.Count, Bytes: snap.Blobs.Bytes, Limit: snap.Blobs.Limit, Served: snap.Blobs.Served,
			Largest: make([]blobStatus, 0, len(snap.Blobs.Largest))},
		Pprof: s.pprof,
	}
	for typ, n := range st.QueuedByType {
		out.QueuedByType[typ] = n
	}
	for _, w := range snap.Workers {
		ws := workerStatus{
			ID: w.ID, Name: w.Name, Capacity: w.Capacity, InFlight: w.InFlight,
			Labels: map[string]string{}, Types: append([]string{}, w.Types...),
			Remote: w.Remote, Draining: w.Draining,
			State: w.State, Version: w.Version, Done: w.Done, Failed: w.Failed, TimedOut: w.TimedOut,
			Cancelled: w.Cancelled, Lost: w.Lost, HandedBack: w.HandedBack, Rate: w.Rate,
			ConnectedAt: w.ConnectedAt.UTC(), LastHeardAt: w.LastHeardAt.UTC(),
			LastHeardSeconds: max(now.Sub(w.LastHeardAt).Seconds(), 0),
		}
		for k, v := range w.Labels {
			ws.Labels[k] = v
		}
		out.Workers = append(out.Workers, ws)
	}
	for _, t := range snap.Types {
		out.Types = append(out.Types, typeStatus{Type: t.Type, Queued: t.Queued, QueuedBytes: t.QueuedBytes,
			OldestAgeSeconds: t.OldestWait.Seconds(), Workers: t.Workers, FreeSlots: t.FreeSlots})
	}
	for _, b := range snap.Blobs.Largest {
		out.Blobs.Largest = append(out.Blobs.Largest, blobStatus{Hash: b.Hash, Bytes: b.Size, Downloads: b.Downloads})
	}
	if snap.Store != nil {
		out.Store = newStoreStatus(snap.Store)
	}
	if s.cluster != nil {
		out.Cluster = s.cluster()
	}
	return out
}

func newHistoryStatus(h dispatch.History) historyStatus {
	out := historyStatus{IntervalSeconds: h.Interval.Seconds(), Points: make([]pointStatus, 0, len(h.Points))}
	for _, p := range h.Points {
		ps := pointStatus{End: p.End.UTC(), Seconds: p.Duration.Seconds(), OK: p.OK, NotOK: p.NotOK}
		out.Points = append(out.Points, ps)
		if ps.Seconds > 0 {
			out.PeakRate = max(out.PeakRate, float64(p.OK)/ps.Seconds)
		}
	}
	return out
}

func jobStatuses(vs []dispatch.JobView, now time.Time) []jobStatus {
	out := make([]jobStatus, 0, len(vs))
	for _, v := range vs {
		out = append(out, newJobStatus(v, now))
	}
	return out
}

func newJobStatus(v dispatch.JobView, now time.Time) jobStatus {
	js := jobStatus{ID: v.ID, Type: v.Type, Phase: v.Phase, Outcome: v.Outcome, Attempts: v.Attempts, Spent: v.Spent,
		MaxAttempts: v.MaxAttempts, Worker: v.Worker, SubmittedAt: timeOrNil(v.SubmittedAt), StartedAt: timeOrNil(v.StartedAt),
		ResolvedAt: timeOrNil(v.ResolvedAt), WaitSeconds: v.Waited.Seconds(), Error: v.Error, Source: v.Source}
	if !v.StartedAt.IsZero() {
		end := now
		if !v.ResolvedAt.IsZero() {
			end = v.ResolvedAt
		}
		js.RunSeconds = max(end.Sub(v.StartedAt).Seconds(), 0)
	}
	return js
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func newStoreStatus(s *store.Stats) *storeStatus {
	return &storeStatus{Records: s.Records, Rejected: s.Rejected, Commits: s.Commits, Checkpoints: s.Checkpoints,
		Fsyncs: s.Fsyncs, MeanBatch: s.MeanBatch, MaxBatch: s.MaxBatch, CommitSeconds: s.CommitTime.Seconds(),
		FileBytes: s.FileBytes, WALBytes: s.WALBytes, FreePages: s.FreePages, Jobs: s.Jobs, JobsQueued: s.Queued,
		JobsRunning: s.Running, JobsResolved: s.Resolved, Blobs: s.Blobs, BlobBytes: s.BlobBytes}
}
