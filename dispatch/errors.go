package dispatch

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is.
var (
	// ErrQueueFull: no capable worker was free and the job's queue is at one of its
	// bounds: jobs per type, bytes per type, or bytes in all queues. Submit returns it
	// at once, saying which; retry later, or raise WithQueueLimit,
	// WithQueueBytesPerType or WithQueueBytesTotal.
	ErrQueueFull = errors.New("dispatch: queue full")
	// ErrWorkerLost: every attempt of the job lost its worker (connection cut, missed
	// heartbeats, process killed) and MaxAttempts is spent.
	ErrWorkerLost = errors.New("dispatch: worker lost")
	// ErrClosed: the Master or Client was closed.
	ErrClosed = errors.New("dispatch: closed")
	// ErrDuplicateID: a job with the same ID is still unresolved.
	ErrDuplicateID = errors.New("dispatch: duplicate job id")
	// ErrBadJob: the job is malformed (empty type, unmarshalable payload, bad envelope).
	ErrBadJob = errors.New("dispatch: bad job")
)

// RemoteError is what a handler's error becomes for the caller: the worker ran the job
// and the handler reported failure.
type RemoteError struct {
	Message   string // the handler's error text
	Code      string // an application error code, if the handler gave one
	Retryable bool   // the handler marked the failure as worth retrying
	WorkerID  string // the worker that ran the failing attempt
	Attempt   int    // which attempt failed
}

// Error implements error.
func (e *RemoteError) Error() string {
	code := ""
	if e.Code != "" {
		code = " [" + e.Code + "]"
	}
	return fmt.Sprintf("dispatch: remote error%s on worker %s (attempt %d): %s", code, e.WorkerID, e.Attempt, e.Message)
}
