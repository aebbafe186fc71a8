package dispatch

import "context"

// Submitter is what submits jobs: a *Master in-process, or a *Client of a remote
// master. Code that needs no more than Submit (package sweep, a caller's own fan-out)
// takes one, so it runs the same against either.
type Submitter interface {
	Submit(ctx context.Context, job Job) (*Ticket, error)
}

var (
	_ Submitter = (*Master)(nil)
	_ Submitter = (*Client)(nil)
)
