package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel/trace"
)

// Client submits jobs to a remote Master over banio: caller → master → worker → master
// → caller. It reconnects by itself; calls in flight when the connection drops fail with
// an error wrapping banio.ErrConnClosed (the master cancels their jobs).
type Client struct {
	io   *banio.ClientIO
	opts options

	// mu protects tickets: submitted jobs that may receive progress reports.
	mu      sync.Mutex
	tickets map[string]*Ticket

	runDone chan struct{}
}

// NewClient connects to the master at addr with banio options (token, AES key, TLS…)
// and the global tracing configuration.
func NewClient(addr string, opts ...banio.Option) (*Client, error) {
	return NewClientWithOptions(addr, opts)
}

// NewClientWithOptions is NewClient with dispatch options as well (WithTracerProvider,
// WithPropagator, WithLogger).
func NewClientWithOptions(addr string, bopts []banio.Option, opts ...Option) (*Client, error) {
	io, err := banio.NewClientIO(addr, bopts...)
	if err != nil {
		return nil, err
	}
	c := &Client{io: io, opts: buildOptions(opts), tickets: make(map[string]*Ticket), runDone: make(chan struct{})}
	// On the read loop (onProgress never blocks), so that reports reach a ticket
	// before the reply that follows them resolves it.
	io.ListenInline(protocol.ActionProgress, c.onProgress)
	go func() {
		defer close(c.runDone)
		_ = io.RunForever()
	}()
	return c, nil
}

// Submit sends a job to the master and returns its Ticket. Cancelling ctx cancels the
// job on the master and its worker.
func (c *Client) Submit(ctx context.Context, job Job) (*Ticket, error) {
	if job.ID == "" {
		job.ID = banio.NewKey()
	}
	// Registered before sending: the first progress report may beat Submit's return.
	t := newTicket(job.ID)
	c.mu.Lock()
	c.tickets[job.ID] = t
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.tickets, job.ID)
		c.mu.Unlock()
	}
	ctx, span, key, err := c.send(ctx, &job)
	if err != nil {
		forget()
		return nil, err
	}
	go func() {
		result, err := c.await(ctx, span, job.ID, key)
		forget()
		t.resolve(result, err)
	}()
	return t, nil
}

// Call runs a job on the fleet and returns its result.
func (c *Client) Call(ctx context.Context, jobType string, payload any) ([]byte, error) {
	job := Job{Type: jobType, Payload: payload}
	ctx, span, key, err := c.send(ctx, &job)
	if err != nil {
		return nil, err
	}
	return c.await(ctx, span, job.ID, key)
}

// send opens the "submit" span and writes the submission.
func (c *Client) send(ctx context.Context, job *Job) (context.Context, trace.Span, string, error) {
	if job.Type == "" {
		return ctx, nil, "", fmt.Errorf("%w: empty job type", ErrBadJob)
	}
	payload, err := marshalPayload(job.Payload)
	if err != nil {
		return ctx, nil, "", err
	}
	key := c.io.SetWait("", 1)
	if job.ID == "" {
		job.ID = key // unique too: one string for both
	}
	ctx, span := c.opts.tracing.submit.Start(ctx, "submit", job.ID, job.Type)
	head := protocol.AppendSubmitHeader(make([]byte, 0, protocol.HeaderRoom), &protocol.Submit{
		ID: job.ID, Type: job.Type, Key: key, Timeout: job.Timeout, MaxAttempts: job.MaxAttempts,
		Trace: c.opts.tracing.inject(ctx),
	})
	if err := c.io.WriteMsg(&banio.IOMsg{Action: protocol.ActionSubmit, Data: banio.Parts{Head: head, Body: payload}}); err != nil {
		c.io.CloseWaitChan(key)
		if errors.Is(err, banio.ErrFrameTooLarge) {
			err = fmt.Errorf("%w: job %s of type %q: its %d-byte payload and submission header do not fit a frame (%w); ship large inputs as a blob (PutBlob, pass its hash) or raise banio.WithMaxFrameSize on client, master and workers",
				ErrJobTooLarge, job.ID, job.Type, len(payload), err)
		} else {
			err = fmt.Errorf("dispatch: submit: %w", err)
		}
		endSpan(span, err)
		return ctx, nil, "", err
	}
	return ctx, span, key, nil
}

// await waits for the master's reply; when ctx ends first it cancels the job remotely.
func (c *Client) await(ctx context.Context, span trace.Span, id, key string) ([]byte, error) {
	data, err := c.io.WaitResult(ctx, key, 0)
	if err != nil {
		if ctx.Err() != nil {
			_ = c.io.WriteMsg(&banio.IOMsg{Action: protocol.ActionCancel, Data: protocol.CancelMsg{ID: id}})
			err = fmt.Errorf("dispatch: job %s: %w", id, ctx.Err())
		} else {
			err = fmt.Errorf("dispatch: job %s: %w", id, err)
		}
		endSpan(span, err)
		return nil, err
	}
	rep, err := protocol.DecodeReply(data)
	if err != nil {
		err = fmt.Errorf("%w: reply from master: %v", ErrBadJob, err)
		endSpan(span, err)
		return nil, err
	}
	result, err := rep.Result()
	endSpan(span, err)
	return result, err
}

func (c *Client) onProgress(msg *banio.IOMsgRaw) {
	var p protocol.ProgressMsg
	if json.Unmarshal(msg.Data, &p) != nil {
		return
	}
	c.mu.Lock()
	t := c.tickets[p.ID]
	c.mu.Unlock()
	if t != nil {
		t.report(Progress{Done: p.Done, Total: p.Total, Message: p.Message, Attempt: p.Attempt, WorkerID: p.WorkerID})
	}
}

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error {
	err := c.io.Close()
	<-c.runDone
	return err
}
