package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
	"go.opentelemetry.io/otel/trace"
)

// Client submits jobs to a remote Master over banio: caller → master → worker → master
// → caller. It rides through the loss of its connection and of the master itself:
// banio reconnects by itself, and the Client keeps every unresolved call, submission
// and payload included. Once reconnected it re-attaches to its jobs by id
// (fleet.attach): the master answers with the outcome it retained, or sends the outcome
// of a job still queued or running to the new connection when it ends, or says it does
// not know the job (a master that restarted), and then the Client submits it again
// (ids are idempotent, so that is safe). A master that predates fleet.attach gets the
// jobs submitted again once WithAttachTimeout passes without an answer.
//
// Given the addresses of a cluster's masters ("a:1,b:2,c:3"), the Client connects to
// the leader: a follower answers with where the leader is (banio.ErrNotLeader), and the
// Client goes there. After a failover it re-attaches to the new leader exactly as after
// a restart.
//
// While the master is unreachable, calls and new submissions wait, bounded by their
// context and by the reconnect budget (WithReconnectBudget, default
// DefaultReconnectBudget); past the budget they fail with an error that wraps
// ErrMasterLost and names every address tried. The budget is the whole outage's: every
// round over a cluster's addresses, and every hop from a follower to the leader, is
// spent from it, and it ends only once a leader has answered the re-attach. Cancelling a call's context cancels its job on the master at once, and
// Close cancels every job still unresolved.
type Client struct {
	io   *banio.ClientIO
	opts options

	// mu protects the following fields.
	mu        sync.Mutex
	calls     map[string]*call    // unresolved calls by job id
	down      bool                // the connection is lost and not back yet
	lost      bool                // the reconnect budget of the current outage is spent
	lostTimer *time.Timer         // spends the budget of the current outage
	losses    uint64              // connection losses seen, so a late reattach cannot end a newer outage
	back      chan struct{}       // closed when the current outage ends, one way or the other
	asks      map[string]struct{} // wait keys of blob requests in flight (blob_wire.go)
	closed    bool

	runDone chan struct{}

	// reattachMu makes reattach runs one at a time, so that the calls a failed run
	// leaves detached are seen by the run of the next reconnect (reattach).
	reattachMu sync.Mutex
}

// call is one unresolved submission of a Client, kept until it resolves so that it can
// be re-attached or submitted again after a reconnect.
type call struct {
	c      *Client
	ticket Ticket          // allocated with the call: one allocation per job, not two
	sub    protocol.Submit // the submission: its header and its Payload
	span   trace.Span

	// guarded by Client.mu
	more     *callMore // nil until the call has some
	detached bool      // its wait failed with the connection: re-attach it
	done     bool
}

// callMore is what only some calls have, kept apart so that a call without it (a
// Call's: no context watch, no later submissions) is 32 bytes smaller. Guarded by
// Client.mu.
type callMore struct {
	stop      func() bool // stops watching the caller's context (Submit's)
	followers []*Ticket   // later submissions of the same id on this Client
}

// moreLocked is cl.more, made on first use. Client.mu must be held.
func (cl *call) moreLocked() *callMore {
	if cl.more == nil {
		cl.more = new(callMore)
	}
	return cl.more
}

// followersLocked is the later submissions of the call's id. Client.mu must be held.
func (cl *call) followersLocked() []*Ticket {
	if cl.more == nil {
		return nil
	}
	return cl.more.followers
}

// NewClient connects to the master at addr. addr may list a cluster's masters
// separated by commas: they are dialed in turn, and a follower's answer leads to the
// leader (banio.NewClientIO); NewClient fails only if none took the connection.
// Options configure the Client (WithReconnectBudget, WithAttachTimeout, WithLogger,
// WithTracerProvider, WithPropagator) and its connection (WithBanIO: token, AES key,
// TLS…); tracing follows the global configuration unless they say otherwise. Unless
// the banio options say otherwise (banio.WithReconnectBackoff), the Client redials a
// lost master within a tenth of its reconnect budget, at most every second or so.
func NewClient(addr string, opts ...Option) (*Client, error) {
	o := buildOptions(opts)
	// The caller's banio options come after the default policy, so theirs wins.
	bopts := append([]banio.Option{banio.WithReconnectBackoff(clientReconnect(o.reconnectBudget))}, o.banio...)
	io, err := banio.NewClientIO(addr, bopts...)
	if err != nil {
		return nil, err
	}
	c := &Client{io: io, opts: o, calls: make(map[string]*call), runDone: make(chan struct{})}
	// On the read loop (onProgress never blocks), so that reports reach a ticket
	// before the reply that follows them resolves it.
	io.ListenInline(protocol.ActionProgress, c.onProgress)
	io.OnConnLost = func(error) { c.connLost() }
	io.ReInitConn = c.reattach
	go func() {
		defer close(c.runDone)
		_ = io.RunForever()
		c.failRefused()
	}()
	return c, nil
}

// failRefused fails every unresolved call, and wakes what waits for the master, once
// the connection closed for good by itself (the master refused this client's token,
// say): no reconnect will come for them, and they fail with that cause.
func (c *Client) failRefused() {
	if c.io.Err() == nil {
		return // Close, which fails the calls itself
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.outageOverLocked()
	calls := make([]*call, 0, len(c.calls))
	for _, cl := range c.calls {
		calls = append(calls, cl)
	}
	c.mu.Unlock()
	for _, cl := range calls {
		c.finish(cl, nil, c.withCloseCause(fmt.Errorf("%w: job %s: the connection to the master is closed", ErrClosed, cl.sub.ID)))
	}
}

// Submit sends a job to the master and returns its Ticket. Cancelling ctx cancels the
// job on the master and its worker. Job ids are idempotent (see Master.Submit): a
// second submission of an id this Client or the master holds attaches to that job.
func (c *Client) Submit(ctx context.Context, job Job) (*Ticket, error) {
	cl, t, err := c.submit(ctx, job, nil)
	if err != nil {
		return nil, err
	}
	if cl != nil && ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { cl.cancel(ctx) })
		c.mu.Lock()
		if cl.done {
			c.mu.Unlock()
			stop()
		} else {
			cl.moreLocked().stop = stop
			c.mu.Unlock()
		}
	}
	return t, nil
}

// submit sends a job to the master and returns its Ticket, and the call that owns the
// job (nil when the Ticket attached to a call pending under the same id), whose
// cancellation the caller arranges. With notify, the Ticket has no Done channel and
// tells notify instead (Ticket.initNotify).
func (c *Client) submit(ctx context.Context, job Job, notify chan struct{}) (*call, *Ticket, error) {
	if job.Type == "" {
		return nil, nil, fmt.Errorf("%w: empty job type", ErrBadJob)
	}
	payload, err := EncodePayload(job.Payload)
	if err != nil {
		return nil, nil, err
	}
	key := banio.NewKey()
	if job.ID == "" {
		job.ID = key // unique too: one string for both
	}
	ctx, span := c.opts.tracing.submit.Start(ctx, "submit", job.ID, job.Type)
	cl := &call{c: c, span: span, sub: protocol.Submit{
		ID: job.ID, Type: job.Type, Key: key, Timeout: job.Timeout, MaxAttempts: job.MaxAttempts,
		Trace: c.opts.tracing.inject(ctx), Payload: payload,
	}}
	var t *Ticket
	if notify != nil {
		t = cl.ticket.initNotify(job.ID, notify)
	} else {
		t = cl.ticket.init(job.ID)
	}
	c.mu.Lock()
	switch prev := c.calls[job.ID]; {
	case c.closed:
		err = fmt.Errorf("%w: job %s: the client is closed", ErrClosed, job.ID)
	case c.lost:
		err = c.lostError(job.ID)
	case prev != nil:
		// Submitted before on this Client and unresolved: attach to it here.
		if prev.sub.Type != job.Type || !bytes.Equal(prev.sub.Payload, payload) {
			err = fmt.Errorf("%w: job %s is pending on this client as a job of type %q with its own payload; give different work a different id", ErrIDConflict, job.ID, prev.sub.Type)
		} else if len(prev.followersLocked()) >= maxFollowers {
			err = fmt.Errorf("%w: job %s already has %d submissions attached to it", ErrBadJob, job.ID, maxFollowers)
		} else {
			more := prev.moreLocked()
			more.followers = append(more.followers, t)
			c.mu.Unlock()
			span.AddEvent("attached to the job already pending under its id")
			endSpan(span, nil)
			return nil, t, nil
		}
	default:
		c.calls[job.ID] = cl
	}
	c.mu.Unlock()
	if err != nil {
		endSpan(span, err)
		return nil, nil, err
	}
	if _, err := c.io.SetWaiterView(key, cl); err != nil { // cl.WaitDone: no method value to allocate
		if c.io.IsClosed() {
			err = c.withCloseCause(fmt.Errorf("%w: job %s: the client is closed", ErrClosed, job.ID))
		} else {
			err = fmt.Errorf("dispatch: submit: %w", err)
		}
		c.finish(cl, nil, err)
		return nil, nil, err
	}
	if err := c.write(cl); err != nil {
		c.io.CloseWaitChan(key)
		c.finish(cl, nil, err)
		return nil, nil, err
	}
	return cl, t, nil
}

// Call runs a job on the fleet and returns its result. Ending ctx cancels the job.
// Call watches ctx itself while it waits, rather than through a context.AfterFunc as
// Submit must: that saves a job its registration with ctx (and the contention of many
// callers registering with one parent context). Its Ticket, which nobody else sees,
// tells it of the outcome on a pooled channel rather than by closing one of its own.
func (c *Client) Call(ctx context.Context, jobType string, payload any) ([]byte, error) {
	notify := getNotifier()
	cl, t, err := c.submit(ctx, Job{Type: jobType, Payload: payload}, notify)
	if err != nil {
		return nil, err // notify is dropped: a failed submission may have resolved its ticket
	}
	switch {
	case cl == nil:
		<-notify // attached to a call pending under the same id: its owner's ctx governs it
	default:
		select {
		case <-notify:
		case <-ctx.Done():
			// Off this goroutine, as an AfterFunc would: the cancel message may wait
			// for room in the write queue, and the call resolves before that.
			go cl.cancel(ctx)
			<-notify
		}
	}
	result, err := t.result, t.err
	putNotifier(t)
	return result, err
}

// write sends the call's submission. A write that failed only because the connection
// dropped under it is no failure: the call is detached with its wait and submitted again
// after the reconnect.
func (c *Client) write(cl *call) error {
	hb := getHead()
	head := protocol.AppendSubmitHeader(*hb, &cl.sub)
	var err error
	if len(cl.sub.Payload) <= smallPayload {
		// Copied behind the header and sent as one slice: Parts in WriteMsg's
		// interface argument would be an allocation per job, which costs more than
		// copying a small payload. The frame's bytes are the same.
		head = append(head, cl.sub.Payload...)
		err = c.io.Write(&banio.IOMsgRaw{Action: protocol.ActionSubmit, Data: head})
	} else {
		err = c.io.WriteMsg(&banio.IOMsg{Action: protocol.ActionSubmit, Data: banio.Parts{Head: head, Body: cl.sub.Payload}})
	}
	putHead(hb, head)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, banio.ErrFrameTooLarge):
		return fmt.Errorf("%w: job %s of type %q: its %d-byte payload and submission header do not fit a frame (%w); ship large inputs as a blob (PutBlob, pass its hash) or raise banio.WithMaxFrameSize on client, master and workers",
			ErrJobTooLarge, cl.sub.ID, cl.sub.Type, len(cl.sub.Payload), err)
	case errors.Is(err, banio.ErrConnClosed) && !c.io.IsClosed():
		return nil
	case c.io.IsClosed():
		return c.withCloseCause(fmt.Errorf("%w: job %s: the client is closed", ErrClosed, cl.sub.ID))
	}
	return fmt.Errorf("dispatch: submit: %w", err)
}

// withCloseCause adds to err, for a call that found the connection closed for good,
// why it closed when banio knows (the master refused the token, say): without it the
// caller reads only that the connection or client is closed.
func (c *Client) withCloseCause(err error) error {
	if cause := c.io.Err(); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// WaitDone is the call's wait callback (banio.Waiter): the master's reply, or why none
// will come on this connection. It runs on the read loop or where the wait failed, and
// never blocks. data is lent for the call only (SetWaiterView): the result is copied
// for the caller.
func (cl *call) WaitDone(data []byte, err error) {
	c := cl.c
	switch {
	case err == nil:
		result, rerr := protocol.DecodeResult(data)
		if errors.Is(rerr, protocol.ErrMalformed) {
			c.finish(cl, nil, fmt.Errorf("%w: reply from master: %v", ErrBadJob, rerr))
			return
		}
		c.finish(cl, bytes.Clone(result), rerr)
	case errors.Is(err, banio.ErrConnClosed):
		if c.io.IsClosed() {
			c.finish(cl, nil, c.withCloseCause(fmt.Errorf("%w: job %s: the client was closed", ErrClosed, cl.sub.ID)))
			return
		}
		c.mu.Lock()
		if !cl.done {
			cl.detached = true
		}
		c.noteDownLocked()
		c.mu.Unlock()
	default:
		// ErrNoWait: the call ended otherwise (cancelled, master lost) and removed it.
	}
}

// cancel ends the call because its context ended, and cancels the job on the master.
func (cl *call) cancel(ctx context.Context) {
	c := cl.c
	if !c.finish(cl, nil, fmt.Errorf("dispatch: job %s: %w", cl.sub.ID, ctx.Err())) {
		return
	}
	c.io.CloseWaitChan(cl.sub.Key)
	_ = c.io.WriteMsg(&banio.IOMsg{Action: protocol.ActionCancel, Data: protocol.CancelMsg{ID: cl.sub.ID}})
}

// finish resolves the call, once; it reports whether this was the time.
func (c *Client) finish(cl *call, result []byte, err error) bool {
	c.mu.Lock()
	if cl.done {
		c.mu.Unlock()
		return false
	}
	cl.done = true
	if c.calls[cl.sub.ID] == cl {
		delete(c.calls, cl.sub.ID)
	}
	var stop func() bool
	var fs []*Ticket
	if m := cl.more; m != nil {
		stop, fs = m.stop, m.followers
		m.followers = nil
	}
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	endSpan(cl.span, err)
	cl.ticket.resolve(result, err)
	for _, t := range fs {
		t.resolve(result, err)
	}
	return true
}

// connLost is banio's word that the connection dropped.
func (c *Client) connLost() {
	c.mu.Lock()
	c.noteDownLocked()
	c.mu.Unlock()
}

// noteDownLocked starts the reconnect budget of an outage, once. c.mu must be held.
func (c *Client) noteDownLocked() {
	c.losses++
	if c.down || c.closed {
		return
	}
	c.down = true
	c.lostTimer = time.AfterFunc(c.opts.reconnectBudget, c.budgetSpent)
}

// budgetSpent fails every unresolved call: the master stayed away for the whole
// reconnect budget. Until the connection is back, new submissions fail as well.
func (c *Client) budgetSpent() {
	c.mu.Lock()
	if !c.down || c.closed || c.lost {
		c.mu.Unlock()
		return
	}
	c.lost = true
	calls := make([]*call, 0, len(c.calls))
	for _, cl := range c.calls {
		calls = append(calls, cl)
	}
	asks := make([]string, 0, len(c.asks))
	for key := range c.asks {
		asks = append(asks, key)
	}
	c.outageOverLocked()
	c.mu.Unlock()
	for _, key := range asks {
		c.io.CloseWaitChan(key) // the request asks again, and finds the master lost
	}
	for _, cl := range calls {
		if c.finish(cl, nil, c.lostError(cl.sub.ID)) {
			c.io.CloseWaitChan(cl.sub.Key)
		}
	}
}

// lostError is the error of a call that outlived the reconnect budget.
func (c *Client) lostError(id string) error {
	return fmt.Errorf("%w: %s for %v (the reconnect budget, WithReconnectBudget); job %s may still be queued or running there, and the master keeps its outcome for its retention period: once the master is back, submit the job again with the same Job.ID to collect that outcome rather than run it twice",
		ErrMasterLost, c.unreachable(), c.opts.reconnectBudget, id)
}

// unreachable says which masters the Client could not reach: the one it was given, or
// every address of a cluster it tried, and the leader it was sent to last if that is
// none of them.
func (c *Client) unreachable() string {
	addrs := c.io.Addrs()
	if cur := c.io.CurrentAddr(); cur != "" && !slices.Contains(addrs, cur) {
		addrs = append(addrs, cur)
	}
	if len(addrs) == 1 {
		return "the master at " + addrs[0] + " was unreachable"
	}
	return "none of the masters at " + strings.Join(addrs, ", ") + " could be reached as the leader"
}

// reattach runs after every reconnect (banio's ReInitConn, on its own goroutine): it
// re-attaches the calls whose waits the lost connection failed, submitting again those
// the master does not know, and ends the outage once the master has answered on the new
// connection. Not before: a socket can reach a dying master's listener and die at once,
// and an outage ended on the strength of it would leave the calls waiting with no
// budget running.
func (c *Client) reattach() {
	c.reattachMu.Lock()
	defer c.reattachMu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	losses := c.losses
	var todo []*call
	for _, cl := range c.calls {
		if cl.detached {
			cl.detached = false
			todo = append(todo, cl)
		}
	}
	c.mu.Unlock()
	// Each call waits on its old key, now on the new connection.
	live := todo[:0]
	for _, cl := range todo {
		if _, err := c.io.SetWaiterView(cl.sub.Key, cl); err != nil {
			if !c.io.IsClosed() {
				c.finish(cl, nil, fmt.Errorf("dispatch: job %s: re-attaching after a reconnect: %w", cl.sub.ID, err))
			}
			continue
		}
		live = append(live, cl)
	}
	// With no call to re-attach, an empty attach is the round trip that shows the
	// master is there.
	first := true
	for first || len(live) > 0 {
		chunk := live[:min(len(live), protocol.MaxAttachJobs)]
		live = live[len(chunk):]
		resubmit, ok := c.attach(chunk)
		if !ok {
			// The connection dropped again: the next reconnect takes over, and must
			// see these calls as detached. Their waits do not tell it when they were
			// set after the socket was lost (banio keeps such a wait for the next
			// connection rather than failing it): unmarked, they would wait there for
			// a reply the master never sends, since nobody re-attached them.
			c.redetach(chunk)
			c.redetach(live)
			return
		}
		if first {
			first = false
			c.connectionBack(losses)
		}
		for _, cl := range resubmit {
			c.mu.Lock()
			done := cl.done
			c.mu.Unlock()
			if done {
				continue
			}
			if err := c.write(cl); err != nil {
				c.io.CloseWaitChan(cl.sub.Key)
				c.finish(cl, nil, err)
			}
		}
	}
}

// redetach marks the unresolved calls of cls detached, for the next reattach.
func (c *Client) redetach(cls []*call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range cls {
		if !cl.done {
			cl.detached = true
		}
	}
}

// connectionBack ends the outage: the master answered on the connection that the
// reconnect made after losses losses. A loss since then is a newer outage, which keeps
// its budget running.
func (c *Client) connectionBack(losses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.losses != losses {
		return
	}
	if c.lostTimer != nil {
		c.lostTimer.Stop()
		c.lostTimer = nil
	}
	c.down, c.lost = false, false
	c.outageOverLocked()
}

// outageOverLocked wakes what waits for the current outage to end (awaitMaster).
// c.mu must be held.
func (c *Client) outageOverLocked() {
	if c.back != nil {
		close(c.back)
		c.back = nil
	}
}

// awaitMaster returns once the connection to the master is up, or fails: with an error
// wrapping ErrMasterLost once the reconnect budget is spent, ErrClosed after Close, or
// ctx's error.
func (c *Client) awaitMaster(ctx context.Context) error {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return fmt.Errorf("%w: the client is closed", ErrClosed)
		case c.io.IsClosed():
			// Closed for good without Close: the master refused this client.
			c.mu.Unlock()
			return c.withCloseCause(fmt.Errorf("%w: the connection to the master is closed", ErrClosed))
		case c.lost:
			c.mu.Unlock()
			return fmt.Errorf("%w: %s for %v (the reconnect budget, WithReconnectBudget)",
				ErrMasterLost, c.unreachable(), c.opts.reconnectBudget)
		case !c.down:
			c.mu.Unlock()
			return nil
		}
		if c.back == nil {
			c.back = make(chan struct{})
		}
		back := c.back
		c.mu.Unlock()
		select {
		case <-back:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// attach asks the master about chunk and returns the calls it does not know, all of
// them when it gives no answer within the attach timeout (a master that predates
// fleet.attach); ok is false when the connection dropped meanwhile.
func (c *Client) attach(chunk []*call) (resubmit []*call, ok bool) {
	msg := protocol.AttachMsg{Reply: banio.NewKey(), Jobs: make([]protocol.AttachJob, len(chunk))}
	for i, cl := range chunk {
		msg.Jobs[i] = protocol.AttachJob{ID: cl.sub.ID, Key: cl.sub.Key}
	}
	c.io.SetWait(msg.Reply, 1)
	if err := c.io.WriteMsg(&banio.IOMsg{Action: protocol.ActionAttach, Data: msg}); err != nil {
		c.io.CloseWaitChan(msg.Reply)
		return nil, false
	}
	data, err := c.io.WaitResult(context.Background(), msg.Reply, c.opts.attachTimeout)
	c.io.CloseWaitChan(msg.Reply)
	var rep protocol.AttachReply
	switch {
	case err == nil && json.Unmarshal(data, &rep) == nil:
	case err == nil, errors.Is(err, banio.ErrTimeout):
		c.opts.logger.Info("dispatch: the master did not answer fleet.attach; submitting the jobs again", "master", c.io.CurrentAddr(), "jobs", len(chunk), "err", err)
		return chunk, true
	default:
		return nil, false
	}
	unknown := make(map[string]bool, len(rep.Unknown))
	for _, id := range rep.Unknown {
		unknown[id] = true
	}
	for _, cl := range chunk {
		if unknown[cl.sub.ID] {
			resubmit = append(resubmit, cl)
		}
	}
	return resubmit, true
}

func (c *Client) onProgress(msg *banio.IOMsgRaw) {
	var p protocol.ProgressMsg
	if json.Unmarshal(msg.Data, &p) != nil {
		return
	}
	c.mu.Lock()
	cl := c.calls[p.ID]
	var fs []*Ticket
	if cl != nil {
		fs = cl.followersLocked()
	}
	c.mu.Unlock()
	if cl != nil {
		rep := Progress{Done: p.Done, Total: p.Total, Message: p.Message, Attempt: p.Attempt, WorkerID: p.WorkerID}
		cl.ticket.report(p.ID, rep)
		for _, t := range fs {
			t.report(p.ID, rep)
		}
	}
}

// Close cancels the jobs still unresolved on the master (a caller that closes is not
// coming back for them), closes the connection, and fails their calls with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	if c.lostTimer != nil {
		c.lostTimer.Stop()
	}
	c.outageOverLocked()
	down := c.down
	calls := make([]*call, 0, len(c.calls))
	for _, cl := range c.calls {
		calls = append(calls, cl)
	}
	c.mu.Unlock()
	if first && !down {
		for _, cl := range calls {
			_ = c.io.WriteMsg(&banio.IOMsg{Action: protocol.ActionCancel, Data: protocol.CancelMsg{ID: cl.sub.ID}})
		}
	}
	err := c.io.Close()
	<-c.runDone
	for _, cl := range calls {
		c.finish(cl, nil, fmt.Errorf("%w: job %s: the client was closed", ErrClosed, cl.sub.ID))
	}
	return err
}
