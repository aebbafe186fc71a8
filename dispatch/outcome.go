package dispatch

import (
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/store"
)

// A job's outcome as the store keeps it (store.Outcome) and as the master hands it to
// callers (a result or an error). Both directions go through protocol.Reply, the one
// mapping between outcomes and errors that every hop uses, so that an outcome read
// back after a restart matches the same sentinel errors (errors.Is) as the original.

// codeQueueFull marks, in a stored outcome, the KindQueueFull reply that ErrorRejected
// alone would not tell from other refusals.
const codeQueueFull = "queue_full"

// storedOutcome is how a job that ended with result or err, its last attempt n on
// worker, is recorded.
func storedOutcome(result []byte, err error, worker string, n int) store.Outcome {
	rep := protocol.ReplyFor(result, err)
	out := store.Outcome{Code: rep.Code, Message: rep.Message, Worker: worker, Attempt: n}
	switch rep.Kind {
	case protocol.KindOK:
		out.Err, out.Result, out.Message = store.ErrorNone, result, ""
	case protocol.KindRemote:
		out.Err, out.Retryable = store.ErrorRemote, rep.Retryable
	case protocol.KindWorkerLost:
		out.Err = store.ErrorWorkerLost
	case protocol.KindDeadline:
		out.Err = store.ErrorDeadline
	case protocol.KindCanceled:
		out.Err = store.ErrorCanceled
	case protocol.KindQueueFull:
		out.Err, out.Code = store.ErrorRejected, codeQueueFull
	case protocol.KindRejected:
		out.Err = store.ErrorRejected
		if rep.Code == protocol.CodeJobTooLarge {
			out.Err = store.ErrorTooLarge
		}
	default:
		out.Err = store.ErrorRejected
	}
	return out
}

// loadedOutcome is the result or error a stored outcome stands for; result is the
// outcome's inline result or the blob its ResultRef names (given by the caller).
func loadedOutcome(o *store.Outcome, result []byte) ([]byte, error) {
	rep := protocol.Reply{Code: o.Code, Message: o.Message, Retryable: o.Retryable, WorkerID: o.Worker, Attempt: o.Attempt}
	switch o.Err {
	case store.ErrorNone:
		rep.Kind, rep.Payload = protocol.KindOK, result
	case store.ErrorRemote:
		rep.Kind = protocol.KindRemote
	case store.ErrorWorkerLost:
		rep.Kind = protocol.KindWorkerLost
	case store.ErrorDeadline:
		rep.Kind = protocol.KindDeadline
	case store.ErrorCanceled:
		rep.Kind = protocol.KindCanceled
	case store.ErrorTooLarge:
		rep.Kind, rep.Code = protocol.KindRejected, protocol.CodeJobTooLarge
	default:
		rep.Kind = protocol.KindRejected
		if o.Code == codeQueueFull {
			rep.Kind, rep.Code = protocol.KindQueueFull, ""
		}
	}
	return rep.Result()
}
