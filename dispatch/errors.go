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
	// ErrBlobStoreFull: the master's blob store has no room for a new blob within its
	// budget (WithBlobStoreLimit, default DefaultBlobStoreBytes). Nothing was stored
	// and nothing held was evicted; delete blobs no job needs any more (DeleteBlob) or
	// raise the budget.
	ErrBlobStoreFull = errors.New("dispatch: blob store full")
	// ErrJobTooLarge: the job's envelope (its payload and a header that grows with
	// trace context) does not fit one banio frame (banio.WithMaxFrameSize), so it
	// cannot be sent. It is never retried: no worker could receive it. Ship large
	// inputs as a blob (PutBlob, and pass its hash) or raise the frame limit on the
	// master, the workers and the clients alike.
	ErrJobTooLarge = errors.New("dispatch: job too large")
)

// CodeResultTooLarge is the RemoteError.Code of a job whose reply does not fit one banio
// frame on its way back (worker → master, or master → remote Client): the result is
// lost and the job fails at once, never retried, since it would come out as large
// again. Return large results by other means (store them, return a reference) or
// raise banio.WithMaxFrameSize on the master, the workers and the clients alike.
const CodeResultTooLarge = "result_too_large"

// RemoteError is what a handler's error becomes for the caller: the worker ran the job
// and the handler reported failure.
type RemoteError struct {
	Message   string // the handler's error text
	Code      string // an application error code, if the handler gave one
	Retryable bool   // the handler marked the failure as worth retrying
	WorkerID  string // the worker that ran the failing attempt; "" when the master made the error
	Attempt   int    // which attempt failed
}

// Error implements error.
func (e *RemoteError) Error() string {
	code := ""
	if e.Code != "" {
		code = " [" + e.Code + "]"
	}
	if e.WorkerID == "" {
		// Made by the master (CodeResultTooLarge on the way to a Client): no worker
		// failed.
		return fmt.Sprintf("dispatch: remote error%s: %s", code, e.Message)
	}
	return fmt.Sprintf("dispatch: remote error%s on worker %s (attempt %d): %s", code, e.WorkerID, e.Attempt, e.Message)
}
