package dispatch

import (
	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel/propagation"
)

// Names of the wire vocabulary that used to be defined here and now live in package
// protocol, kept so that code written against them still builds.

// The job layer's actions, now protocol's.
const (
	// Deprecated: use protocol.JobActionPrefix.
	JobActionPrefix = protocol.JobActionPrefix
	// Deprecated: use protocol.ActionRegister.
	ActionRegister = protocol.ActionRegister
	// Deprecated: use protocol.ActionDrain.
	ActionDrain = protocol.ActionDrain
	// Deprecated: use protocol.ActionCancel.
	ActionCancel = protocol.ActionCancel
	// Deprecated: use protocol.ActionProgress.
	ActionProgress = protocol.ActionProgress
	// Deprecated: use protocol.ActionSubmit.
	ActionSubmit = protocol.ActionSubmit
	// Deprecated: use protocol.ActionBlobGet.
	ActionBlobGet = protocol.ActionBlobGet
	// Deprecated: use protocol.ActionBlobPut.
	ActionBlobPut = protocol.ActionBlobPut
	// Deprecated: use protocol.ActionBlobDelete.
	ActionBlobDelete = protocol.ActionBlobDelete
)

// JobAction is the action that carries jobs of jobType.
//
// Deprecated: use protocol.JobAction.
func JobAction(jobType string) string { return protocol.JobAction(jobType) }

// CancelMsg asks to cancel a job.
//
// Deprecated: use protocol.CancelMsg.
type CancelMsg = protocol.CancelMsg

// ProgressMsg carries a progress report.
//
// Deprecated: use protocol.ProgressMsg.
type ProgressMsg = protocol.ProgressMsg

// BlobRequest asks the master for a blob.
//
// Deprecated: use protocol.BlobRequest.
type BlobRequest = protocol.BlobRequest

// The status bytes of the master's answer to a blob download, now protocol's.
const (
	// Deprecated: use protocol.BlobMissing.
	BlobMissing = protocol.BlobMissing
	// Deprecated: use protocol.BlobFound.
	BlobFound = protocol.BlobFound
	// Deprecated: use protocol.BlobUnsendable.
	BlobUnsendable = protocol.BlobUnsendable
)

// BlobHash is the content address of data: "sha256:" and the hex digest.
//
// Deprecated: use protocol.BlobHash.
func BlobHash(data []byte) string { return protocol.BlobHash(data) }

// ScopeName is the instrumentation scope of banfleet's spans.
//
// Deprecated: use protocol.ScopeName.
const ScopeName = protocol.ScopeName

// Span attribute keys, now protocol's.
const (
	// Deprecated: use protocol.AttrJobID.
	AttrJobID = protocol.AttrJobID
	// Deprecated: use protocol.AttrJobType.
	AttrJobType = protocol.AttrJobType
	// Deprecated: use protocol.AttrAttempt.
	AttrAttempt = protocol.AttrAttempt
	// Deprecated: use protocol.AttrWorkerID.
	AttrWorkerID = protocol.AttrWorkerID
)

// DefaultPropagator is the global propagator, or W3C TraceContext + Baggage when the
// global one propagates nothing.
//
// Deprecated: use protocol.DefaultPropagator.
func DefaultPropagator() propagation.TextMapPropagator { return protocol.DefaultPropagator() }

// NewClientWithOptions is NewClient with banio options given apart.
//
// Deprecated: use NewClient(addr, WithBanIO(bopts...), opts...).
func NewClientWithOptions(addr string, bopts []banio.Option, opts ...Option) (*Client, error) {
	return NewClient(addr, append([]Option{WithBanIO(bopts...)}, opts...)...)
}
