package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
)

// Why a job's context was cancelled by the worker itself.
var (
	errHandedBack       = errors.New("worker: draining, job handed back to the master")
	errCanceledByMaster = errors.New("worker: job cancelled by the master")
	errConnectionEnded  = errors.New("worker: connection to the master ended")
)

// runningJob is a job this worker has accepted and not yet answered.
type runningJob struct {
	cancel     context.CancelCauseFunc
	generation int // the connection it came on: register claims those of earlier ones
}

// task is one job this worker took, in one allocation: the handler's Job, what the
// reply needs (the master's wait key), and its record in w.running. A Job, a record and
// the decoded envelope were three allocations per job, each holding the same strings.
type task struct {
	job   Job
	wait  string            // the envelope's Key: the master's wait for this attempt
	trace map[string]string // the envelope's trace context
	run   runningJob
	ctx   context.Context // the job's context and type, for execute: the run pool
	kind  *jobKind        // and the read loop hand it the task alone
	// slotHeld: the job took its capacity slot before it started (it runs on the read
	// loop, which must not wait for one).
	slotHeld bool
}

// Run runs the job on the read loop (banio.ClientIO.RunMovable).
func (t *task) Run() { t.job.worker.execute(t) }

// jobKey names one attempt of a job: a re-dispatched job may come back to the same
// worker while its older attempt still runs.
type jobKey struct {
	id      string
	attempt int
}

func (t *task) key() jobKey { return jobKey{t.job.ID, t.job.Attempt} }

// badEnvelopeLog logs the first malformed job envelope only.
var badEnvelopeLog sync.Once

// onJob runs on the read loop (ListenInlineView): it decodes the envelope and runs the
// job there, movable off it should it run long, or on a pool goroutine (inline.go). msg
// is lent for the call only: the envelope's strings are decoded into strings of their
// own, and the payload is copied, which is the one copy a job's input costs on the
// worker.
func (w *Worker) onJob(msg *banio.IOMsgRaw) {
	// The action names the type: a string banio keeps, which the envelope's type
	// then takes instead of a string of its own.
	typ, _ := strings.CutPrefix(msg.Action, protocol.JobActionPrefix)
	env := protocol.Job{Type: typ}
	if err := protocol.DecodeJobInto(&env, msg.Data); err != nil {
		badEnvelopeLog.Do(func() { w.log.Warn("worker: malformed job envelope dropped", "action", msg.Action, "err", err) })
		return
	}
	t := &task{
		job:   Job{ID: env.ID, Type: env.Type, Payload: bytes.Clone(env.Payload), Attempt: env.Attempt, Deadline: env.Deadline, worker: w},
		wait:  env.Key,
		trace: env.Trace,
	}
	kind := w.handlers[env.Type]
	if kind == nil {
		rep := failed(protocol.CodeNoHandler, "worker has no handler for job type "+env.Type)
		w.reply(w.currentConn(), t, &rep)
		return
	}
	// Registered here, before the job's goroutine starts, so that a cancel that
	// arrives right behind the job finds it.
	ctx, cancel := context.WithCancelCause(context.Background())
	t.run.cancel = cancel
	w.mu.Lock()
	draining, conn := w.draining.Load(), w.conn
	if !draining {
		w.jobs.Add(1)
		t.run.generation = w.generation
		w.running[t.key()] = &t.run
	}
	w.mu.Unlock()
	if draining {
		cancel(nil)
		w.reply(conn, t, &protocol.Reply{Kind: protocol.KindHandedBack})
		return
	}
	t.job.conn = conn
	t.ctx, t.kind = ctx, kind
	if w.inline && !kind.slow.Load() && w.takeSlot() {
		// On the read loop itself (inline.go); it moves off if the job runs long.
		t.slotHeld = true
		if conn.RunMovable(t) {
			kind.slow.Store(true)
		}
		return
	}
	w.pool.run(t)
}

// execute runs one job and answers the master on its connection. The job keeps running
// if the connection drops meanwhile (see register); its reply is what ends its record
// in w.running.
func (w *Worker) execute(t *task) {
	defer w.jobs.Done()
	defer t.run.cancel(nil)
	ctx := t.ctx
	job := &t.job
	if len(t.trace) > 0 {
		ctx = w.propagator.Extract(ctx, propagation.MapCarrier(t.trace))
	}
	ctx, span := w.tracer.Start(ctx, "execute", job.ID, job.Type)
	if span.IsRecording() {
		span.SetAttributes(protocol.AttrAttempt.Int(job.Attempt), protocol.AttrWorkerID.String(w.id))
	}
	if !job.Deadline.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, job.Deadline)
		defer stop()
	}

	rep := w.run(ctx, t, job)
	if rep.Kind != protocol.KindOK {
		span.SetStatus(codes.Error, rep.Message)
		if rep.Kind == protocol.KindHandedBack {
			span.AddEvent("handed_back")
		} else {
			span.RecordError(errors.New(rep.Message))
		}
	}
	span.End() // before the reply: the caller may inspect the trace as soon as it has it
	w.reply(job.conn, t, &rep)
}

// run calls the handler once a slot is free and turns its outcome (or panic) into a
// reply. The reply is a value: it lives on execute's stack until reply has encoded it.
func (w *Worker) run(ctx context.Context, t *task, job *Job) (rep protocol.Reply) {
	if !t.slotHeld && !w.takeSlot() {
		// No slot free: wait for one, or for the job's end. Only here is ctx.Done
		// asked for, which makes the context allocate its channel.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return replyForContext(ctx)
		}
	}
	defer func() { <-w.slots }()
	if w.isDraining() && ctx.Err() == nil && context.Cause(ctx) == nil {
		// Accepted before the drain began but never started: hand it back now.
		return protocol.Reply{Kind: protocol.KindHandedBack}
	}
	start := w.metrics.processStart()
	defer func() { w.metrics.processed(job.Type, &rep, start) }() // after the recover below
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("worker: handler panicked", "type", job.Type, "job", job.ID, "panic", r, "stack", string(debug.Stack()))
			rep = failed(protocol.CodePanic, fmt.Sprintf("handler panicked: %v", r))
		}
	}()
	result, err := t.kind.runTimed(ctx, job, !t.slotHeld)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return replyForContext(ctx)
		}
		return *protocol.ReplyFor(nil, handlerError(err))
	}
	payload, err := marshalResult(result)
	if err != nil {
		return failed(protocol.CodeBadResult, err.Error())
	}
	return protocol.Reply{Kind: protocol.KindOK, Payload: payload}
}

// replyForContext explains a job whose context ended before it could finish.
func replyForContext(ctx context.Context) protocol.Reply {
	cause := context.Cause(ctx)
	if errors.Is(cause, errHandedBack) {
		return protocol.Reply{Kind: protocol.KindHandedBack}
	}
	// The context's error says what ended it (its deadline, or a cancellation), and
	// so the kind; its cause says why.
	rep := *protocol.ReplyFor(nil, ctx.Err())
	rep.Message = cause.Error()
	return rep
}

// handlerError is the RemoteError a handler's error becomes: its text, with the code
// and retry hint of an *Error in its chain.
func handlerError(err error) *protocol.RemoteError {
	re := &protocol.RemoteError{Message: err.Error()}
	var e *Error
	if errors.As(err, &e) {
		re.Code, re.Retryable = e.Code, e.Retryable
		if e.Err != nil && e == err {
			re.Message = e.Err.Error() // the code travels in its own field
		}
	}
	return re
}

// failed is the reply of a job the worker fails itself (no handler, a panic, a result
// it cannot marshal or send): a RemoteError with code, not retryable.
func failed(code, message string) protocol.Reply {
	return *protocol.ReplyFor(nil, &protocol.RemoteError{Code: code, Message: message})
}

func marshalResult(v any) ([]byte, error) {
	switch r := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return r, nil
	case string:
		return []byte(r), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("worker: marshal result %T: %w", v, err)
	}
	return b, nil
}

// currentConn is the connection to the master.
func (w *Worker) currentConn() *banio.ClientIO {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn
}

// onCancel cancels a running job at the master's request.
func (w *Worker) onCancel(msg *banio.IOMsgRaw) {
	var c protocol.CancelMsg
	if json.Unmarshal(msg.Data, &c) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, rj := range w.running {
		if key.id == c.ID && (c.Attempt == 0 || c.Attempt == key.attempt) {
			rj.cancel(errCanceledByMaster)
		}
	}
}

// cancelAllWith cancels every running job with cause.
func (w *Worker) cancelAllWith(cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, rj := range w.running {
		rj.cancel(cause)
	}
}

func (w *Worker) cancelAll() { w.cancelAllWith(errConnectionEnded) }

// isDraining reports whether drain has begun. It takes no lock: every job asks, and
// the worker's mu is the one its job goroutines contend for.
func (w *Worker) isDraining() bool { return w.draining.Load() }
