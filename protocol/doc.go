// Package protocol is banfleet's wire vocabulary above banio: everything a master, a
// worker and a remote client say to each other, defined once. dispatch (the master and
// its Client) and worker both import it, and neither imports the other; docs/protocol.md
// gives the same contract byte by byte.
//
// It is public, not internal, because people other than dispatch and worker speak it:
// a worker written in another language, or a tool that inspects traffic, needs the
// action names, the envelopes and the reply kinds as the Go code defines them; and the
// types dispatch's API hands its callers (WorkerInfo from Master.Workers, RemoteError
// from a failed job) are wire types, so their definitions must be readable where they
// live. dispatch keeps its names for the errors and types its callers match on
// (dispatch.RemoteError, dispatch.ErrQueueFull, dispatch.WorkerInfo, …) as aliases of
// these; its older names for the purely wire-level ones are deprecated.
//
// Files, one concern each:
//
//   - actions.go: the banio action names of the job layer.
//   - envelope.go: the binary Job, Reply and Submit envelopes and their codec; the
//     Append…Header functions let a sender put a payload behind its header
//     (banio.Parts) without copying it.
//   - control.go: the JSON control messages: WorkerInfo, CancelMsg, ProgressMsg.
//   - blob.go: content addressing (BlobHash), blob downloads and uploads.
//   - errors.go: the errors that cross the wire, RemoteError and the error codes.
//   - reply.go: the reply kinds and their mapping to and from errors (ReplyFor,
//     Reply.Result), used by every hop.
//   - trace.go: the spans' scope and attribute names, and the propagator that writes
//     trace context into envelopes.
package protocol
