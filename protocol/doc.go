// Package protocol is banfleet's wire vocabulary above banio: the binary envelopes of
// jobs, replies and submissions (docs/protocol.md gives them byte by byte). dispatch
// (the master and its Client) and worker both import it, so each side reads what the
// other writes from one definition.
package protocol
