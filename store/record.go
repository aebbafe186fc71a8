package store

import (
	"fmt"
	"time"
)

// Kind says what a Record changes.
type Kind uint8

// Record kinds. The values are part of the encoding: never renumber them.
const (
	// KindSubmitted: a job was accepted (Spec). unknown → queued.
	KindSubmitted Kind = 1
	// KindAttemptStarted: attempt Attempt of job ID was sent to Worker.
	// queued → running.
	KindAttemptStarted Kind = 2
	// KindAttemptEnded: the current attempt Attempt of job ID ended without ending
	// the job (its worker was lost, it failed retryably, it was handed back, or it
	// was an orphan no worker claimed); Spent says whether it counts against
	// MaxAttempts, Reason why it ended. running → queued. A job backing off before
	// its next attempt is queued as far as the store is concerned: after a restart
	// it is simply queued again.
	KindAttemptEnded Kind = 3
	// KindResolved: job ID ended with Outcome at At. queued or running → resolved.
	// The job's payload is released: it never runs again.
	KindResolved Kind = 4
	// KindCollected: the resolved job ID is forgotten (its caller collected the
	// outcome, or its retention ran out). resolved → unknown.
	KindCollected Kind = 5
	// KindBlobPut: the owner stored blob Data under Hash (dispatch's PutBlob). It is
	// held until KindBlobDeleted and, after that, while a job still refers to it.
	KindBlobPut Kind = 6
	// KindBlobDeleted: the owner no longer needs blob Hash (dispatch's DeleteBlob).
	KindBlobDeleted Kind = 7

	maxKind = KindBlobDeleted
)

var kindNames = [...]string{
	KindSubmitted:      "Submitted",
	KindAttemptStarted: "AttemptStarted",
	KindAttemptEnded:   "AttemptEnded",
	KindResolved:       "Resolved",
	KindCollected:      "Collected",
	KindBlobPut:        "BlobPut",
	KindBlobDeleted:    "BlobDeleted",
}

// String returns the kind's name.
func (k Kind) String() string {
	if k >= 1 && k <= maxKind {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Record is one change of the store's state: every change of a job's state, and every
// blob put or deleted, is one Record. It is one small type with a kind rather than a
// type per change, so that one encoding (AppendRecord) serves the bolt file, raft log
// entries and tests alike, and a batch of mixed records is a plain slice.
//
// Which fields a kind uses is listed by each Kind; the others are ignored and not
// encoded. Build records with the constructors (Submitted, AttemptStarted, …), which set
// exactly those fields. Byte slices are retained by the store, not copied: do not modify
// them after Apply.
type Record struct {
	Kind    Kind
	ID      string    // the job: every job kind
	Attempt int       // AttemptStarted, AttemptEnded: the attempt's number, 1 for the first
	Worker  string    // AttemptStarted: the worker the attempt was sent to
	Spent   bool      // AttemptEnded: the attempt counts against MaxAttempts
	Reason  string    // AttemptEnded: why the attempt ended, for the job's final error
	Spec    *Spec     // Submitted
	Outcome *Outcome  // Resolved
	At      time.Time // Resolved: when (retention counts from it)
	Hash    string    // BlobPut, BlobDeleted
	Data    []byte    // BlobPut

	// hashed says Hash (and the Spec's PayloadRef, the Outcome's ResultRef) were
	// computed from the data in this process (BlobPut, prepare), so the state machine
	// need not hash megabytes again on the committer. Decoded records never have it.
	hashed bool
}

// Spec is what a Submitted record says about a job: everything needed to run it again
// after a restart.
type Spec struct {
	ID   string
	Type string
	// Payload is the job's payload when it is held inline. A payload at or above the
	// store's blob threshold (WithBlobThreshold) is held once as a blob instead:
	// Apply sets PayloadRef to its hash, and the state keeps the reference only.
	Payload []byte
	// PayloadRef is the hash (BlobHash) of a payload held as a blob. In a Submitted
	// record with Payload set too, the blob is stored if the store lacks it; with
	// Payload nil, the blob must be held already (a payload many jobs share travels
	// once).
	PayloadRef  string
	Deadline    time.Time         // absolute: the earlier of the caller's deadline and the timeout; zero if none
	Timeout     time.Duration     // as submitted (0: the master's default applied, or none)
	MaxAttempts int               // attempts counted before the job fails
	Caller      string            // a remote caller's identity, "" for an in-process caller
	Trace       map[string]string // W3C trace context of the dispatch span
	SubmittedAt time.Time         // for queue ages after a restart
}

// ErrorKind says how a job failed, or ErrorNone when it succeeded.
type ErrorKind uint8

// Error kinds of an Outcome. The values are part of the encoding.
const (
	ErrorNone       ErrorKind = 0 // success: Result or ResultRef
	ErrorRemote     ErrorKind = 1 // the handler failed (Code, Message, Retryable)
	ErrorWorkerLost ErrorKind = 2 // every attempt lost its worker
	ErrorDeadline   ErrorKind = 3 // the job's timeout passed
	ErrorCanceled   ErrorKind = 4 // the job was cancelled
	ErrorTooLarge   ErrorKind = 5 // the job or its result did not fit a frame
	ErrorRejected   ErrorKind = 6 // the master refused or abandoned the job for another reason
	maxErrorKind              = ErrorRejected
)

// Outcome is how a job ended.
type Outcome struct {
	Err       ErrorKind
	Result    []byte // the handler's result, inline (ErrorNone only)
	ResultRef string // the result held as a blob (BlobHash), at or above the threshold
	Code      string // an application error code (ErrorRemote)
	Message   string // the error's text
	Retryable bool   // the handler marked the failure retryable
	Worker    string // the worker of the attempt that ended the job; "" if none ran it
	Attempt   int    // that attempt's number; 0 if none ran
}

// OK reports whether the job succeeded.
func (o *Outcome) OK() bool { return o.Err == ErrorNone }

// Submitted records that a job was accepted. spec is copied; its byte slices and
// trace map are retained.
func Submitted(spec Spec) Record {
	return Record{Kind: KindSubmitted, ID: spec.ID, Spec: &spec}
}

// AttemptStarted records that attempt n of job id was sent to worker.
func AttemptStarted(id string, n int, worker string) Record {
	return Record{Kind: KindAttemptStarted, ID: id, Attempt: n, Worker: worker}
}

// AttemptEnded records that attempt n of job id ended and the job is queued again:
// spent says whether it counts against the job's MaxAttempts (a lost worker or a
// retryable failure does; a hand-back on drain or an orphan no worker claimed after a
// master restart does not), reason why it ended.
func AttemptEnded(id string, n int, spent bool, reason string) Record {
	return Record{Kind: KindAttemptEnded, ID: id, Attempt: n, Spent: spent, Reason: reason}
}

// Resolved records that job id ended with out at at. out is copied.
func Resolved(id string, out Outcome, at time.Time) Record {
	return Record{Kind: KindResolved, ID: id, Outcome: &out, At: at}
}

// Collected records that resolved job id is forgotten.
func Collected(id string) Record {
	return Record{Kind: KindCollected, ID: id}
}

// BlobPut records that the owner stores data as a blob; its hash is BlobHash(data).
func BlobPut(data []byte) Record {
	return Record{Kind: KindBlobPut, Hash: BlobHash(data), Data: data, hashed: true}
}

// BlobPutHashed is BlobPut for a caller that has hashed data already (the master, to
// answer with the hash): hash must be BlobHash(data), which is not computed again.
func BlobPutHashed(hash string, data []byte) Record {
	return Record{Kind: KindBlobPut, Hash: hash, Data: data, hashed: true}
}

// BlobDeleted records that the owner no longer needs blob hash.
func BlobDeleted(hash string) Record {
	return Record{Kind: KindBlobDeleted, Hash: hash}
}

// String describes the record for errors and logs, without its data.
func (r Record) String() string {
	switch r.Kind {
	case KindBlobPut:
		return fmt.Sprintf("%s %s (%d bytes)", r.Kind, r.Hash, len(r.Data))
	case KindBlobDeleted:
		return fmt.Sprintf("%s %s", r.Kind, r.Hash)
	case KindAttemptStarted, KindAttemptEnded:
		return fmt.Sprintf("%s %q #%d", r.Kind, r.ID, r.Attempt)
	}
	return fmt.Sprintf("%s %q", r.Kind, r.ID)
}

// Validate checks that r's fields are right for its kind, without looking at any state:
// what DecodeRecord checks after decoding and Apply checks before applying. Errors wrap
// ErrBadRecord.
func (r *Record) Validate() error {
	switch r.Kind {
	case KindSubmitted:
		if r.Spec == nil {
			return badRecord("%s without a spec", r.Kind)
		}
		if r.Spec.ID != r.ID {
			return badRecord("%s: record id %q, spec id %q", r.Kind, r.ID, r.Spec.ID)
		}
		return r.Spec.validate()
	case KindAttemptStarted:
		if err := validID(r.ID); err != nil {
			return err
		}
		if err := validAttempt(r.Attempt); err != nil {
			return err
		}
		if r.Worker == "" {
			return badRecord("%s %q without a worker", r.Kind, r.ID)
		}
	case KindAttemptEnded:
		if err := validID(r.ID); err != nil {
			return err
		}
		return validAttempt(r.Attempt)
	case KindResolved:
		if err := validID(r.ID); err != nil {
			return err
		}
		if r.Outcome == nil {
			return badRecord("%s %q without an outcome", r.Kind, r.ID)
		}
		if r.At.IsZero() {
			return badRecord("%s %q without a resolution time", r.Kind, r.ID)
		}
		return r.Outcome.validate()
	case KindCollected:
		return validID(r.ID)
	case KindBlobPut, KindBlobDeleted:
		return validHash(r.Hash)
	default:
		return badRecord("unknown record kind %d", uint8(r.Kind))
	}
	return nil
}

func (s *Spec) validate() error {
	if err := validID(s.ID); err != nil {
		return err
	}
	if s.Type == "" {
		return badRecord("job %q without a type", s.ID)
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > maxInt {
		return badRecord("job %q: max attempts %d out of range", s.ID, s.MaxAttempts)
	}
	if s.Timeout < 0 {
		return badRecord("job %q: negative timeout", s.ID)
	}
	if len(s.Trace) > maxTraceEntries {
		return badRecord("job %q: %d trace entries, at most %d", s.ID, len(s.Trace), maxTraceEntries)
	}
	if s.PayloadRef != "" {
		return validHash(s.PayloadRef)
	}
	return nil
}

func (o *Outcome) validate() error {
	if o.Err > maxErrorKind {
		return badRecord("unknown error kind %d", uint8(o.Err))
	}
	if o.Err != ErrorNone && (o.Result != nil || o.ResultRef != "") {
		return badRecord("a failed outcome with a result")
	}
	if o.Attempt < 0 || o.Attempt > maxInt {
		return badRecord("outcome attempt %d out of range", o.Attempt)
	}
	if o.ResultRef != "" {
		return validHash(o.ResultRef)
	}
	return nil
}

// maxInt bounds attempt numbers and counts: they fit an int32 everywhere.
const maxInt = 1<<31 - 1

// maxTraceEntries bounds a spec's trace context, as the job envelope does.
const maxTraceEntries = 32

func validID(id string) error {
	if id == "" {
		return badRecord("empty job id")
	}
	return nil
}

func validAttempt(n int) error {
	if n < 1 || n > maxInt {
		return badRecord("attempt number %d out of range", n)
	}
	return nil
}
