package dispatch

import (
	"errors"

	"github.com/banfleet/banfleet/protocol"
)

// Sentinel errors, for errors.Is. Those that cross the wire (all but ErrClosed, which a
// remote Client sees as ErrBadJob, ErrDuplicateID and ErrMasterLost) are protocol's.
var (
	// ErrQueueFull: no capable worker was free and the job's queue is at one of its
	// bounds: jobs per type, bytes per type, or bytes in all queues. Submit returns it
	// at once, saying which; retry later, or raise WithQueueLimit,
	// WithQueueBytesPerType or WithQueueBytesTotal.
	ErrQueueFull = protocol.ErrQueueFull
	// ErrWorkerLost: every attempt of the job lost its worker (connection cut, missed
	// heartbeats, process killed) and MaxAttempts is spent.
	ErrWorkerLost = protocol.ErrWorkerLost
	// ErrClosed: the Master or Client was closed.
	ErrClosed = errors.New("dispatch: closed")
	// ErrDuplicateID is no longer returned: a job id the master holds is idempotent
	// (Master.Submit attaches to the job), and a conflicting one fails with
	// ErrIDConflict.
	//
	// Deprecated: match ErrIDConflict.
	ErrDuplicateID = errors.New("dispatch: duplicate job id")
	// ErrIDConflict: the job's id is held by the master (unresolved, or resolved and
	// retained: WithResultRetention) for a job of another type or with another
	// payload. The same id with the same type and payload attaches to the held job
	// instead; different work needs a different id. An id made up for its job (an
	// empty Job.ID) is checked against the type only: nobody but its submitter knows it.
	ErrIDConflict = protocol.ErrIDConflict
	// ErrMasterLost: a Client lost its connection to the master and it did not come
	// back within the reconnect budget (WithReconnectBudget). The job may still run,
	// or have run, on the master: submitting the same id again once the master is back
	// collects its outcome while the master retains it.
	ErrMasterLost = errors.New("dispatch: master lost")
	// ErrBadJob: the job is malformed (empty type, unmarshalable payload, bad envelope).
	ErrBadJob = protocol.ErrBadJob
	// ErrBlobStoreFull: the master's blob store has no room for a new blob within its
	// budget (WithBlobStoreLimit, default DefaultBlobStoreBytes). Nothing was stored
	// and nothing held was evicted; delete blobs no job needs any more (DeleteBlob) or
	// raise the budget.
	ErrBlobStoreFull = protocol.ErrBlobStoreFull
	// ErrJobTooLarge: the job's envelope (its payload and a header that grows with
	// trace context) does not fit one banio frame (banio.WithMaxFrameSize), so it
	// cannot be sent. It is never retried: no worker could receive it. Ship large
	// inputs as a blob (PutBlob, and pass its hash) or raise the frame limit on the
	// master, the workers and the clients alike.
	ErrJobTooLarge = protocol.ErrJobTooLarge
)

// CodeResultTooLarge is the RemoteError.Code of a job whose reply does not fit one banio
// frame on its way back (worker → master, or master → remote Client): the result is
// lost and the job fails at once, never retried, since it would come out as large
// again. Return large results by other means (store them, return a reference) or
// raise banio.WithMaxFrameSize on the master, the workers and the clients alike.
const CodeResultTooLarge = protocol.CodeResultTooLarge

// RemoteError is what a handler's error becomes for the caller: the worker ran the job
// and the handler reported failure. It is protocol.RemoteError, the error a reply of
// kind protocol.KindRemote carries.
type RemoteError = protocol.RemoteError
