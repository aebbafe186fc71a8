package protocol

import (
	"errors"
	"fmt"
)

// The errors that cross the wire: what a reply's kind and code (reply.go), or a refused
// blob upload (blob.go), stand for. dispatch returns them to its callers under its own
// names (dispatch.ErrQueueFull is ErrQueueFull), which is why their text says
// "dispatch:".
var (
	// ErrWorkerLost (KindWorkerLost): every attempt of the job lost its worker and its
	// attempts are spent.
	ErrWorkerLost = errors.New("dispatch: worker lost")
	// ErrQueueFull (KindQueueFull): no capable worker was free and the job's queue is
	// at one of its bounds.
	ErrQueueFull = errors.New("dispatch: queue full")
	// ErrBadJob (KindRejected): the job was refused: malformed, or, for a remote
	// client, a closed master.
	ErrBadJob = errors.New("dispatch: bad job")
	// ErrJobTooLarge (KindRejected with CodeJobTooLarge): the job's envelope does not
	// fit one banio frame, so it cannot be sent.
	ErrJobTooLarge = errors.New("dispatch: job too large")
	// ErrIDConflict (KindRejected with CodeIDConflict): the job's id is held by the
	// master (unresolved, or resolved and retained) for a job of another type or with
	// another payload.
	ErrIDConflict = errors.New("dispatch: job id conflict")
	// ErrBlobStoreFull (a refused ActionBlobPut with CodeBlobStoreFull): the master's
	// blob store has no room for the blob within its budget.
	ErrBlobStoreFull = errors.New("dispatch: blob store full")
)

// Error codes: a RemoteError's Code when the worker or master made the error rather
// than the handler, the code of a KindRejected reply, and that of a refused upload.
const (
	// CodeResultTooLarge: the job's reply does not fit one banio frame on its way back
	// (worker → master, or master → remote client); the result is lost and the job
	// fails, never retried.
	CodeResultTooLarge = "result_too_large"
	// CodeNoHandler: the worker has no handler for the job's type.
	CodeNoHandler = "no_handler"
	// CodePanic: the handler panicked.
	CodePanic = "panic"
	// CodeBadResult: the handler's result could not be marshalled.
	CodeBadResult = "bad_result"
	// CodeJobTooLarge: the code of a KindRejected reply that stands for ErrJobTooLarge.
	CodeJobTooLarge = "job_too_large"
	// CodeIDConflict: the code of a KindRejected reply that stands for ErrIDConflict.
	CodeIDConflict = "id_conflict"
	// CodeBlobStoreFull: the code of a refused upload that stands for ErrBlobStoreFull.
	CodeBlobStoreFull = "blob_store_full"
)

// RemoteError is what a handler's error becomes for the caller (KindRemote): the worker
// ran the job and the handler reported failure. dispatch.RemoteError is this type.
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

// failure is an error that crossed the wire: it keeps the sender's message and matches
// the sentinel it stood for with errors.Is.
type failure struct {
	msg  string
	kind error
}

func (e *failure) Error() string { return e.msg }
func (e *failure) Unwrap() error { return e.kind }
