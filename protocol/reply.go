package protocol

// Reply kinds: what ended a job.
const (
	KindOK         byte = 0 // Payload is the result
	KindRemote     byte = 1 // the handler failed: Code, Message, Retryable
	KindHandedBack byte = 2 // the worker is draining and did not run the job
	KindWorkerLost byte = 3 // (master → client) every attempt lost its worker
	KindQueueFull  byte = 4 // (master → client) the type's queue is full
	KindDeadline   byte = 5 // (master → client) the job's timeout passed
	KindCanceled   byte = 6 // (master → client) the job was cancelled
	KindRejected   byte = 7 // (master → client) refused: malformed, duplicate id, closed
)
