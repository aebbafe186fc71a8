package dispatch

import (
	"cmp"
	"slices"
	"time"

	"github.com/banfleet/banfleet/store"
)

// Introspection: what a status page, a CLI or a test reads of a running master, beyond
// Stats. Every call copies what it returns under the master's locks and bounds its
// size, so a caller may keep the result, and a page refreshed every second costs the
// job path one short hold of Master.mu per refresh.

// Bounds of a Snapshot.
const (
	// SnapshotTypes is the most job types a Snapshot lists, those with the most
	// queued first.
	SnapshotTypes = 256
	// SnapshotWorkers is the most workers a Snapshot lists, in registration order.
	SnapshotWorkers = 1024
	// SnapshotBlobs is how many of the largest blobs a Snapshot lists.
	SnapshotBlobs = 10
)

// Snapshot is the master's state at one moment, for a status page. Counts that
// Snapshot could not list in full say how many it left out.
type Snapshot struct {
	Taken   time.Time
	Stats   Stats
	Types   []TypeState // the most queued first, then by name; at most SnapshotTypes
	Workers []WorkerState
	// TypesOmitted and WorkersOmitted count what the bounds left out.
	TypesOmitted, WorkersOmitted int
	History                      History
	Recent                       RecentJobs
	Blobs                        BlobsState
	// Store is what the job store did and holds; nil for an in-memory master.
	Store *store.Stats
}

// TypeState is one job type the master knows (served by a worker, or with jobs
// queued).
type TypeState struct {
	Type        string
	Queued      int           // jobs waiting for a worker
	QueuedBytes int64         // what they count against the queue byte budgets
	OldestWait  time.Duration // since the submission of the job next in line; 0 when none waits
	Workers     int           // registered workers announcing it, draining ones included
	FreeSlots   int           // free slots of those that take jobs now
}

// WorkerState is one registered worker. Its attempt counts are the attempts that ended
// on it, however their jobs then ended (a retried attempt counts where it ran).
type WorkerState struct {
	WorkerInfo
	// State is "ready" (a slot is free), "busy" (every slot is taken), "draining" (it
	// takes no new jobs) or "gone" (its connection closed; it is being forgotten).
	State       string
	Done        uint64  // attempts that returned a result
	Failed      uint64  // attempts that returned an error
	TimedOut    uint64  // attempts whose job timed out while they ran
	Cancelled   uint64  // attempts whose job was cancelled while they ran
	Lost        uint64  // attempts lost with a connection of its
	HandedBack  uint64  // attempts it gave back unrun while draining
	Rate        float64 // attempts done per second over the last HistoryInterval
	ConnectedAt time.Time
	LastHeardAt time.Time // when a message from it was last seen, to HistoryInterval
	Unsampled   bool      // registered since the last sample: Rate and LastHeardAt are not known yet
}

// History is the master's throughput over the last HistoryLen intervals.
type History struct {
	Interval time.Duration // HistoryInterval
	// Points are the samples, oldest first; each counts the jobs resolved in the
	// interval that ended at its End.
	Points []HistoryPoint
	// Rate is the jobs resolved with a result per second in the last sample, the
	// recent rate a page shows; 0 before the first sample.
	Rate float64
}

// HistoryPoint is one sample of History.
type HistoryPoint struct {
	End      time.Time
	Duration time.Duration // the interval it covers (HistoryInterval, give or take the timer)
	OK       uint64        // jobs resolved with a result
	NotOK    uint64        // jobs failed, lost, timed out or cancelled
}

// RecentJobs are the last jobs resolved without a result, most recent first, at most
// RecentPerClass of each class: kept apart so that a sweep cancelled by its caller does
// not push the failures out.
type RecentJobs struct {
	Failed    []JobView // the handler's error, a bad job (Stats.Failed)
	Lost      []JobView // attempts ran out with their worker lost
	TimedOut  []JobView
	Cancelled []JobView
}

// BlobsState is what the blob store holds, and its largest blobs.
type BlobsState struct {
	BlobStats
	Largest []BlobState // the SnapshotBlobs largest, largest first
}

// BlobState is one blob the master holds.
type BlobState struct {
	Hash      string
	Size      int64
	Downloads uint64 // downloads answered since the master started
}

// Job phases of a JobView.
const (
	PhaseQueued     = "queued"     // waiting for a worker
	PhaseRunning    = "running"    // an attempt is under way on a worker
	PhaseBackoff    = "backoff"    // waiting to be queued again after a failed attempt, or held back by a failed store
	PhaseCommitting = "committing" // its submission is being recorded by the store
	PhaseOrphaned   = "orphaned"   // running when a durable master started; its worker has not claimed it yet
	PhaseResolved   = "resolved"   // ended; Outcome says how
)

// JobView is what the master knows of one job.
type JobView struct {
	ID    string
	Type  string
	Phase string // one of the Phase constants
	// Outcome is how a resolved job counts: "ok", "error", "timeout", "cancelled" or
	// "lost" (the status label of banfleet.jobs.completed); "" while unresolved.
	Outcome     string
	Attempts    int    // dispatches so far (the number of the current or last attempt)
	Spent       int    // attempts counted against MaxAttempts (hand-backs are not)
	MaxAttempts int    // 0 when not known (a job read back from the store)
	Worker      string // the id of the worker of the current or last attempt
	SubmittedAt time.Time
	StartedAt   time.Time     // the current or last attempt's dispatch; zero if none (or not known)
	Waited      time.Duration // the queue wait before that attempt
	ResolvedAt  time.Time     // zero while unresolved
	// Error is the outcome's error, or for an unresolved job the last attempt's, cut to
	// 2 KiB.
	Error string
	// Source says where the master found the job: "live" (it is unresolved), "recent"
	// (the rings of recently resolved jobs), "store" (the job store holds it) or
	// "retained" (its outcome is retained for its caller, WithResultRetention).
	Source string
}

// Snapshot returns the master's state for a status page.
func (m *Master) Snapshot() Snapshot {
	s := Snapshot{Taken: time.Now(), Stats: m.Stats()}
	taken := instantOf(s.Taken) // waits are measured to the snapshot
	m.mu.Lock()
	free := make(map[*workerClass]int, len(m.classes)) // each class's free slots, summed once
	for _, c := range m.classes {
		for _, w := range c.free {
			free[c] += max(w.info.Capacity-w.inflight, 0)
		}
	}
	for _, jt := range m.types {
		ts := TypeState{Type: jt.name, Queued: jt.queue.n, QueuedBytes: jt.queue.bytes}
		if h := jt.queue.head; h != nil {
			ts.OldestWait = max(taken.sub(h.submittedAt), 0)
		}
		for _, l := range jt.serving {
			ts.Workers += l.class.members
			ts.FreeSlots += free[l.class]
		}
		s.Types = append(s.Types, ts)
	}
	for i, w := range m.workers {
		if i == SnapshotWorkers {
			s.WorkersOmitted = len(m.workers) - i
			break
		}
		s.Workers = append(s.Workers, workerStateLocked(w))
	}
	m.mu.Unlock()

	slices.SortFunc(s.Types, func(a, b TypeState) int {
		return cmp.Or(cmp.Compare(b.Queued, a.Queued), cmp.Compare(a.Type, b.Type))
	})
	if len(s.Types) > SnapshotTypes {
		s.TypesOmitted = len(s.Types) - SnapshotTypes
		s.Types = slices.Clip(s.Types[:SnapshotTypes])
	}
	s.Blobs = m.blobsState()
	s.History, s.Recent = m.insightState()
	if m.jn != nil {
		st := m.jn.st.Stats()
		s.Store = &st
	}
	return s
}

// workerStateLocked copies w. m.mu must be held.
func workerStateLocked(w *workerState) WorkerState {
	info := w.info
	info.InFlight, info.Draining = w.inflight, w.draining
	info.Types = slices.Clone(info.Types)
	slices.Sort(info.Types)
	if info.Labels != nil {
		labels := make(map[string]string, len(info.Labels))
		for k, v := range info.Labels {
			labels[k] = v
		}
		info.Labels = labels
	}
	t := &w.tally
	ws := WorkerState{
		WorkerInfo: info, Rate: t.rate, ConnectedAt: w.conn.Created(), LastHeardAt: t.heard,
		Unsampled: t.sampledAt.IsZero(),
		Done:      t.ended[outcomeOK].Load(), Failed: t.ended[outcomeError].Load(),
		TimedOut: t.ended[outcomeTimeout].Load(), Cancelled: t.ended[outcomeCancelled].Load(),
		Lost: t.ended[outcomeLost].Load(), HandedBack: t.ended[attemptHandedBack].Load(),
	}
	if ws.Unsampled {
		ws.LastHeardAt = ws.ConnectedAt
	}
	switch {
	case w.gone:
		ws.State = "gone"
	case w.draining:
		ws.State = "draining"
	case w.inflight >= w.info.Capacity:
		ws.State = "busy"
	default:
		ws.State = "ready"
	}
	return ws
}

// blobsState reads the blob store and its largest blobs.
func (m *Master) blobsState() BlobsState {
	bs := BlobsState{BlobStats: m.BlobStats()}
	s := &m.blobs
	s.mu.RLock()
	// The largest SnapshotBlobs, kept smallest first while the map is walked.
	for h, data := range s.blobs {
		b := BlobState{Hash: h, Size: int64(len(data))}
		if len(bs.Largest) == SnapshotBlobs {
			if b.Size <= bs.Largest[0].Size {
				continue
			}
			bs.Largest = bs.Largest[1:]
		}
		i, _ := slices.BinarySearchFunc(bs.Largest, b.Size, func(x BlobState, size int64) int { return cmp.Compare(x.Size, size) })
		bs.Largest = slices.Insert(bs.Largest, i, b)
	}
	s.mu.RUnlock()
	slices.SortFunc(bs.Largest, func(a, b BlobState) int {
		return cmp.Or(cmp.Compare(b.Size, a.Size), cmp.Compare(a.Hash, b.Hash))
	})
	ins := &m.insight
	ins.mu.Lock()
	for i := range bs.Largest {
		bs.Largest[i].Downloads = ins.served[bs.Largest[i].Hash]
	}
	ins.mu.Unlock()
	return bs
}

// insightState copies the history and the recent rings.
func (m *Master) insightState() (History, RecentJobs) {
	ins := &m.insight
	ins.mu.Lock()
	h := History{Interval: HistoryInterval, Points: make([]HistoryPoint, 0, ins.n)}
	for i := range ins.n {
		p := ins.samples[(ins.head+i)%HistoryLen]
		h.Points = append(h.Points, HistoryPoint{End: p.end, Duration: p.dur, OK: p.ok, NotOK: p.notOK})
	}
	var rings [numOutcomes][]recentJob
	for c := outcomeError; c < numOutcomes; c++ {
		rings[c] = ins.recent[c].newestFirst(nil)
	}
	ins.mu.Unlock()
	if n := len(h.Points); n > 0 {
		last := h.Points[n-1]
		h.Rate = float64(last.OK) / last.Duration.Seconds()
	}
	views := func(c outcomeClass) []JobView {
		out := make([]JobView, len(rings[c]))
		for i, rj := range rings[c] {
			out[i] = rj.view()
		}
		return out
	}
	return h, RecentJobs{Failed: views(outcomeError), Lost: views(outcomeLost),
		TimedOut: views(outcomeTimeout), Cancelled: views(outcomeCancelled)}
}

func (rj *recentJob) view() JobView {
	return JobView{ID: rj.id, Type: rj.typ, Phase: PhaseResolved, Outcome: outcomeNames[rj.class],
		Attempts: rj.attempts, Spent: rj.spent, MaxAttempts: rj.maxAttempts, Worker: rj.worker,
		SubmittedAt: rj.submitted, StartedAt: rj.started, Waited: rj.waited, ResolvedAt: rj.ended,
		Error: errorText(rj.err), Source: "recent"}
}

// errorText is err's text cut to maxErrorText bytes (at a rune boundary).
func errorText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// LookupJob returns what the master knows of job id: unresolved, recently resolved
// without a result (the rings of Snapshot.Recent), held by a durable master's store,
// or retained for its caller. ok is false when it knows nothing of it.
func (m *Master) LookupJob(id string) (view JobView, ok bool) {
	m.mu.Lock()
	if j := m.jobs[id]; j != nil {
		view = liveViewLocked(j)
		m.mu.Unlock()
		return view, true
	}
	m.mu.Unlock()

	ins := &m.insight
	ins.mu.Lock()
	for c := outcomeError; c < numOutcomes && !ok; c++ {
		for i := range ins.recent[c].buf {
			if rj := &ins.recent[c].buf[i]; rj.id == id && (!ok || rj.ended.After(view.ResolvedAt)) {
				view, ok = rj.view(), true
			}
		}
	}
	ins.mu.Unlock()
	if ok {
		return view, true
	}
	m.mu.Lock()
	o, held := m.retained.get(id, instantNow())
	var retained JobView
	if held {
		retained = JobView{ID: id, Type: o.typ, Phase: PhaseResolved, Outcome: outcomeNames[classify(o.err)],
			Error: errorText(o.err), Source: "retained"}
	}
	m.mu.Unlock()
	if m.jn != nil {
		if js := m.jn.st.Lookup(id); js.Phase != store.PhaseUnknown {
			view = storedView(id, js)
			if held && view.Phase != PhaseResolved {
				// The job resolved a moment ago: its outcome is retained at once, and
				// its Resolved record is on its way to the store.
				view.Phase, view.Outcome, view.Error = PhaseResolved, retained.Outcome, retained.Error
			}
			return view, true
		}
	}
	return retained, held
}

// liveViewLocked describes an unresolved job. m.mu must be held.
func liveViewLocked(j *job) JobView {
	v := JobView{ID: j.id, Type: j.typ, Attempts: j.attempt, Spent: j.spent, MaxAttempts: j.maxAttempts,
		SubmittedAt: j.submittedAt.time(), StartedAt: j.startedAt.time(), Waited: j.waited, Error: errorText(j.lastErr), Source: "live"}
	if j.worker != nil {
		v.Worker = j.worker.info.ID
	}
	switch j.state {
	case stateQueued:
		v.Phase = PhaseQueued
	case stateRunning:
		v.Phase = PhaseRunning
	case stateBackoff, stateLeaving:
		v.Phase = PhaseBackoff
	case stateCommitting:
		v.Phase = PhaseCommitting
	case stateOrphan:
		v.Phase, v.Worker = PhaseOrphaned, j.orphanOf
	default:
		v.Phase = PhaseResolved
	}
	return v
}

// storedView describes a job as the store holds it.
func storedView(id string, js store.JobState) JobView {
	v := JobView{ID: id, Type: js.Spec.Type, Attempts: js.Attempt, Spent: js.Spent, MaxAttempts: js.Spec.MaxAttempts,
		Worker: js.Worker, SubmittedAt: js.Spec.SubmittedAt, Error: js.LastError, Source: "store"}
	if v.Error != "" {
		v.Error = errorText(stringError(v.Error))
	}
	switch js.Phase {
	case store.PhaseQueued:
		v.Phase = PhaseQueued
	case store.PhaseRunning:
		v.Phase = PhaseRunning
	default:
		v.Phase = PhaseResolved
		v.ResolvedAt = js.ResolvedAt
		if o := js.Outcome; o != nil {
			_, err := loadedOutcome(o, nil)
			v.Outcome, v.Error = outcomeNames[classify(err)], errorText(err)
			if o.Worker != "" {
				v.Worker = o.Worker
			}
		}
	}
	return v
}

// stringError is an error that is only its text.
type stringError string

func (e stringError) Error() string { return string(e) }
