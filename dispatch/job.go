package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Job describes work to run on a worker.
type Job struct {
	ID          string        // RequestID; "" → a new UUID
	Type        string        // routes to workers that handle this type
	Payload     any           // []byte and string travel as-is, anything else as JSON
	Timeout     time.Duration // 0 → the master's default (WithDefaultTimeout)
	MaxAttempts int           // 0 → the master's default (WithMaxAttempts)
}

// EncodePayload gives the bytes a job with Payload v carries to its worker: []byte and
// string as they are, anything else as JSON (the way banio marshals message data).
// Code that must identify a job by its payload (package sweep's journal) hashes these
// bytes, so that it sees exactly what the master does.
func EncodePayload(v any) ([]byte, error) {
	switch p := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return p, nil
	case string:
		return []byte(p), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadJob, err)
	}
	return b, nil
}

// Job states. A job moves queued → running → (queued again on retry) → resolved.
type jobState uint8

const (
	stateQueued   jobState = iota // in its type's FIFO
	stateRunning                  // dispatched to a worker, waiting for the reply
	stateBackoff                  // waiting to be queued again after a failed attempt
	stateLeaving                  // its context ended while queued or backing off; resolving
	stateResolved                 // its ticket has resolved

	// A durable master's only (OpenMaster):
	stateCommitting // its Submitted record is on its way to the store; it holds its id
	stateOrphan     // running when the master started: its worker may claim it (orphan.go)
)

// job is the master's record of one submitted job. Fields after mu-guarded are owned by
// the Master and guarded by Master.mu.
type job struct {
	id          string
	typ         string
	action      string // protocol.JobAction(typ), built once
	payload     []byte
	hash        uint64                // payloadHash(payload), for a resubmitted id's conflict check; 0 if unhashed
	deadline    instant               // the earlier of the caller's deadline and the timeout; none if neither
	ended       atomic.Pointer[error] // why the job must stop (see end); nil while it may run
	maxAttempts int
	caller      observer // the submitter's: a *Ticket, or a remote caller's *remoteReply
	// reply is the remote caller's view of the job when caller is one submitted
	// remotely (&reply): allocated with the job rather than on its own.
	reply       remoteReply
	span        trace.Span
	trace       map[string]string // the dispatch span's context, for the worker
	submittedAt instant           // when the master took it (for a restored job: its first master)

	// guarded by Master.mu
	stopWatch func() bool // stops watching the caller's context; set once the job is admitted
	timer     *time.Timer // fires the job's timeout; set once the job is admitted
	state     jobState
	stored    bool // the store holds the job (its Submitted record is committed): its changes are recorded
	// unhashed: the job's id was made up for it (by the master, or by a Client, which
	// sends its reply key as the id), so only its own submitter submits it again, with
	// the same payload, and the payload is not hashed (see submit). Set before the job
	// is shared; beside state and stored, where it takes no room of its own.
	unhashed  bool
	adopted   int32        // the attempt last re-adopted from an orphan (orphan.go), 0 if none; an int32 beside state and stored, where it takes no room of its own
	attempt   int          // dispatch sequence number; also tells replies of old attempts apart
	spent     int          // attempts counted against maxAttempts (hand-backs are not)
	worker    *workerState // of the current or last attempt
	slot      *workerState // whose capacity the running attempt holds; nil once freed
	lastErr   error
	tm        *typeMetrics // its type's metric attribute sets: set once, before the job is shared
	readyAt   instant      // since when it may be dispatched: submitted, or queued again
	startedAt instant      // its running attempt's dispatch; none when unknown (adopted)
	waited    time.Duration
	orphanOf  string     // stateOrphan: the id of the worker that ran attempt attempt
	followers []observer // later submissions of the same id (and re-attached callers) that attached to it
	qprev     *job       // neighbours in its type's queue while queued (queue.go)
	qnext     *job
}

// A job has no context of its own: a context per job (WithCancel, WithTimeout and an
// AfterFunc under the caller's) cost 7 of a remote job's 56 allocations and, for the
// jobs of a remote caller, contention on the one parent they shared. Instead each way
// a job can be stopped (its caller's context, its timeout, a remote cancel, its
// caller's connection closing, its resolution) calls end with its reason.

// Why a job stopped when no caller's context says so.
var (
	errJobTimedOut = fmt.Errorf("dispatch: job %w", context.DeadlineExceeded)
	errJobCanceled = fmt.Errorf("dispatch: job %w", context.Canceled)
	// A resolved job stops too: Close resolves jobs whose attempts still run, and
	// those attempts then cancel the job on their workers.
	errJobSettled = errors.New("dispatch: job already resolved")
)

// end records why the job must stop. Only the first reason counts; end reports whether
// it was this one.
func (j *job) end(reason error) bool {
	return j.ended.CompareAndSwap(nil, &reason)
}

// endSettled is end(errJobSettled), which every job's resolution calls: the reason is
// the package's variable, so that recording it allocates nothing.
func (j *job) endSettled() bool {
	return j.ended.CompareAndSwap(nil, &errJobSettled)
}

// endErr is why the job must stop, nil while it may run.
func (j *job) endErr() error {
	if p := j.ended.Load(); p != nil {
		return *p
	}
	return nil
}

// remote is the remote caller the job's outcome goes to, nil for one submitted in
// process (or restored by a durable master without a caller).
func (j *job) remote() *remoteCaller { return remoteOf(j.caller) }

// ticket is the in-process submitter's Ticket, nil for a remote caller's job.
func (j *job) ticket() *Ticket {
	t, _ := j.caller.(*Ticket)
	return t
}
