// Package dispatch is the master side of banfleet's job routing, built on banio.
//
// A Master sits on a banio.ServerIO. Workers (package worker) connect to it, announce
// their id, capacity and labels, and subscribe to "job:<type>" for each job type they
// handle. Callers submit jobs in-process (Master.Submit, Master.Call) or from another
// program through a Client; either way the dispatch path is:
//
//	Submit → least-loaded capable worker, or the type's bounded FIFO (route.go, queue.go)
//	       → SetWait(id#attempt) → WriteMsg("job:<type>", envelope) → WaitResult (attempt.go)
//	       → the worker's handler → SendWaitRes(id#attempt, reply)
//	       → the Ticket resolves, or the job is queued again.
//
// Delivery: execution is at-least-once (a job whose worker is lost mid-job runs again
// elsewhere, with the next attempt number), resolution is exactly-once (every Ticket
// resolves once; replies from superseded attempts are dropped). Handler errors come back
// as *RemoteError and are retried only when the handler marked them retryable. A job's
// timeout and its caller's cancellation cancel the handler's context on the worker.
//
// Tracing: the master opens "dispatch <type>" spans (children of the caller's span, or
// of a remote Client's "submit <type>" span) and workers open "execute <type>" spans as
// their children; the W3C trace context travels in the job envelope.
//
// The wire vocabulary that master, workers and clients share (actions, envelopes,
// control messages, reply kinds and the errors they stand for) is package protocol's;
// the errors and types callers of dispatch match on keep their names here.
//
// docs/dispatch.md explains routing, guarantees, failure handling and tracing;
// docs/protocol.md gives the envelope byte by byte.
package dispatch
