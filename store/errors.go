package store

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is.
//
// Records the state machine refuses wrap ErrInvalid and one of the more precise
// sentinels below it (ErrUnknownJob, ErrDuplicateJob, ErrWrongPhase, ErrUnknownBlob,
// ErrBadRecord): errors.Is(err, ErrInvalid) asks "was it the records' fault?".
var (
	// ErrClosed: the store was closed; nothing more is applied.
	ErrClosed = errors.New("store: closed")
	// ErrFailed: a commit failed (a write or fsync error, or damage found while
	// writing). After a failed fsync the file's contents are uncertain, so the store
	// applies nothing more; close it and reopen it, which checks the file.
	ErrFailed = errors.New("store: failed")
	// ErrFenced: the store no longer takes this owner's records because another
	// owner holds the job state now: a replicated store (package cluster) whose
	// member lost its leadership. Not a failure: the master that gets it is being
	// replaced, and its callers' jobs ride through to the next one.
	ErrFenced = errors.New("store: fenced: another master owns the job state")

	// ErrInvalid: a record the state machine refuses. Apply applied none of the
	// records of that call.
	ErrInvalid = errors.New("store: invalid record")
	// ErrUnknownJob: a record for a job the store does not hold.
	ErrUnknownJob error = &invalidError{"store: unknown job"}
	// ErrDuplicateJob: a Submitted record for a job id the store already holds
	// (queued, running, or resolved and not yet collected). The master answers an
	// idempotent resubmission from Lookup instead.
	ErrDuplicateJob error = &invalidError{"store: job id already held"}
	// ErrWrongPhase: a record the job's phase does not allow (an attempt for a job
	// that is not queued, a second resolution, collecting an unresolved job, an
	// attempt number that is not the current one or goes backwards).
	ErrWrongPhase error = &invalidError{"store: record not allowed in the job's phase"}
	// ErrUnknownBlob: a reference to a blob the store does not hold, or deleting
	// one it does not hold.
	ErrUnknownBlob error = &invalidError{"store: unknown blob"}
	// ErrBadRecord: a record whose fields are wrong for its kind (no id, no type,
	// a hash that is not its data's, an unknown error kind…).
	ErrBadRecord error = &invalidError{"store: bad record"}

	// ErrMalformed: bytes that are not a valid encoding (of a record, a batch, a
	// snapshot or a row of the file).
	ErrMalformed = errors.New("store: malformed encoding")

	// ErrCorrupt: the store's file is damaged (truncated, overwritten, not a
	// banfleet store). The error names the file and what to do: restore it from a
	// backup, or move it aside to start with an empty store.
	ErrCorrupt = errors.New("store: file damaged")
	// ErrFormatVersion: the file was written in a format version this build does
	// not read (by a newer banfleet).
	ErrFormatVersion = errors.New("store: unknown format version")
	// ErrLocked: another process holds the file open (bbolt's flock), most likely
	// another master on the same data directory.
	ErrLocked = errors.New("store: file locked by another process")
)

// invalidError is a sentinel that is also ErrInvalid for errors.Is.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

// Is makes every invalidError match ErrInvalid.
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// badRecord is an ErrBadRecord saying what is wrong.
func badRecord(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRecord, fmt.Sprintf(format, args...))
}

// malformed is an ErrMalformed saying what is wrong.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// remedy is what an operator does about a damaged file.
const remedy = "restore it from a backup, or move it aside to start with an empty store (every job it holds is then lost)"

// corruptFile is an ErrCorrupt naming the file, what is wrong with it and what to do.
func corruptFile(path string, cause error) error {
	return fmt.Errorf("%w: %s: %w; %s", ErrCorrupt, path, cause, remedy)
}
