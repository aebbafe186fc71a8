package protocol

import (
	"context"
	"errors"
)

// Reply kinds: what ended a job.
const (
	KindOK         byte = 0 // Payload is the result
	KindRemote     byte = 1 // the handler failed: Code, Message, Retryable
	KindHandedBack byte = 2 // the worker is draining and did not run the job
	KindWorkerLost byte = 3 // (master → client) every attempt lost its worker
	KindQueueFull  byte = 4 // (master → client) the type's queue is full
	KindDeadline   byte = 5 // (master → client) the job's timeout passed
	KindCanceled   byte = 6 // (master → client) the job was cancelled
	KindRejected   byte = 7 // (master → client) refused: malformed, id conflict, closed
)

// The mapping between outcomes and replies, the one every hop uses: a worker answering
// the master, the master reading that answer, the master answering a remote client, and
// the client reading its answer.

// failures are the kinds, and codes, that the sentinel errors stand for, in the order
// ReplyFor tries them. The last is also what any other error becomes.
var failures = [...]struct {
	kind byte
	code string
	err  error
}{
	{KindWorkerLost, "", ErrWorkerLost},
	{KindQueueFull, "", ErrQueueFull},
	{KindRejected, CodeJobTooLarge, ErrJobTooLarge},
	{KindRejected, CodeIDConflict, ErrIDConflict},
	{KindDeadline, "", context.DeadlineExceeded},
	{KindCanceled, "", context.Canceled},
	{KindRejected, "", ErrBadJob},
}

// ReplyFor is the reply that carries an outcome; Reply.Result is its inverse. With a
// nil err it is KindOK with result as its payload. A *RemoteError in err's chain gives
// KindRemote with its fields. Otherwise the first of ErrWorkerLost, ErrQueueFull,
// ErrJobTooLarge, ErrIDConflict, context.DeadlineExceeded and context.Canceled in err's
// chain gives its kind (KindRejected with CodeJobTooLarge for ErrJobTooLarge,
// CodeIDConflict for ErrIDConflict), any other error KindRejected, each with err's text
// as the message. Attempt and WorkerID are the
// RemoteError's, or zero: the sender sets them.
func ReplyFor(result []byte, err error) *Reply {
	if err == nil {
		return &Reply{Kind: KindOK, Payload: result}
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return &Reply{Kind: KindRemote, Attempt: re.Attempt, Retryable: re.Retryable, Code: re.Code, Message: re.Message, WorkerID: re.WorkerID}
	}
	f := failures[len(failures)-1]
	for _, c := range failures {
		if errors.Is(err, c.err) {
			f = c
			break
		}
	}
	return &Reply{Kind: f.kind, Code: f.code, Message: err.Error()}
}

// Result is the outcome a reply carries: the payload of KindOK, the *RemoteError of
// KindRemote (Reply.RemoteError), or else an error with the reply's message that
// matches KindError(r.Kind, r.Code) with errors.Is.
func (r *Reply) Result() ([]byte, error) {
	switch r.Kind {
	case KindOK:
		return r.Payload, nil
	case KindRemote:
		return nil, r.RemoteError()
	}
	return nil, &failure{msg: r.Message, kind: KindError(r.Kind, r.Code)}
}

// RemoteError is the handler's failure a KindRemote reply carries.
func (r *Reply) RemoteError() *RemoteError {
	return &RemoteError{Message: r.Message, Code: r.Code, Retryable: r.Retryable, WorkerID: r.WorkerID, Attempt: r.Attempt}
}

// KindError is the sentinel error that a failure kind, with its code, stands for:
// ErrWorkerLost, ErrQueueFull, context.DeadlineExceeded, context.Canceled, and for
// KindRejected ErrJobTooLarge (CodeJobTooLarge), ErrIDConflict (CodeIDConflict) or
// ErrBadJob. It is nil for KindOK and KindRemote, which stand for no sentinel, and
// ErrBadJob for any other kind (KindHandedBack, which a master never sends a client).
func KindError(kind byte, code string) error {
	if kind == KindOK || kind == KindRemote {
		return nil
	}
	for _, c := range failures {
		if c.kind == kind && (c.code == "" || c.code == code) {
			return c.err
		}
	}
	return ErrBadJob
}
