package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// Job is one job as a handler sees it.
type Job struct {
	ID       string
	Type     string
	Payload  []byte // as the caller sent it: []byte/string raw, anything else JSON
	Attempt  int    // 1 for the first dispatch; higher after a lost worker or a retry
	Deadline time.Time

	conn   *banio.ClientIO
	worker *Worker
}

// Handler runs a job. Its result travels raw when it is []byte or string, else as
// JSON. An error becomes a *dispatch.RemoteError for the caller; wrap it with
// Retryable to have the master try again elsewhere, or return an *Error for a code.
// ctx ends at the job's deadline, on cancellation by the caller, and when a draining
// worker's grace period is over. A handler may block as long as it needs: a short job
// runs on the connection's read loop, and one still running after 200 µs hands the
// reading to another goroutine (WithInlineJobs). A []byte result is the worker's once
// returned (it may be sent again after a reconnect): do not modify it afterwards.
type Handler func(ctx context.Context, job *Job) (any, error)

// Progress reports how far the job got. It never blocks the handler for long: reports
// are fire-and-forget, and a master or caller that reads them slowly drops old ones.
func (j *Job) Progress(done, total int64, msg string) {
	_ = j.conn.WriteMsg(&banio.IOMsg{Action: protocol.ActionProgress, Data: protocol.ProgressMsg{
		ID: j.ID, Attempt: j.Attempt, Done: done, Total: total, Message: msg, WorkerID: j.worker.id}})
}

// Decode unmarshals a JSON payload into v.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("worker: job %s payload: %w", j.ID, err)
	}
	return nil
}

// Error is a handler error with an application code and a retry hint.
type Error struct {
	Code      string
	Retryable bool
	Err       error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Code != "" {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable marks err as worth retrying on another attempt.
func Retryable(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Code: e.Code, Retryable: true, Err: e.Err}
	}
	return &Error{Retryable: true, Err: err}
}
