package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
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

// marshalPayload encodes Job.Payload the way banio marshals message data.
func marshalPayload(v any) ([]byte, error) {
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
type jobState int

const (
	stateQueued   jobState = iota // in its type's FIFO
	stateRunning                  // dispatched to a worker, waiting for the reply
	stateBackoff                  // waiting to be queued again after a failed attempt
	stateLeaving                  // its context ended while queued or backing off; resolving
	stateResolved                 // its ticket has resolved
)

// job is the master's record of one submitted job. Fields after mu-guarded are owned by
// the Master and guarded by Master.mu.
type job struct {
	id          string
	typ         string
	action      string // JobAction(typ), built once
	payload     []byte
	ctx         context.Context // ends on the caller's cancellation or the job's timeout
	cancel      context.CancelFunc
	maxAttempts int
	ticket      *Ticket
	span        trace.Span
	trace       map[string]string // the dispatch span's context, for the worker

	// guarded by Master.mu
	stopWatch func() bool // stops the context watcher; set once the job is admitted
	state     jobState
	attempt   int          // dispatch sequence number; also tells replies of old attempts apart
	spent     int          // attempts counted against maxAttempts (hand-backs are not)
	worker    *workerState // of the current or last attempt
	slot      *workerState // whose capacity the running attempt holds; nil once freed
	lastErr   error
}

// deadline returns the job's deadline, zero if none.
func (j *job) deadline() time.Time {
	d, _ := j.ctx.Deadline()
	return d
}
