package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// remoteCaller is the master's side of one connection's remote submissions
// (dispatch.Client): it submits on the caller's behalf, forwards progress, and replies
// with the outcome. Jobs of a caller whose connection closes run on for the caller
// grace (WithCallerGrace), for the caller to re-attach to from its next connection;
// those it does not re-attach to are then stopped.
type remoteCaller struct {
	m    *Master
	conn *banio.BanConn // nil for the callers of the jobs a durable master restored
	lim  badInput
	gone bool // the connection has closed; guarded by Master.mu
}

// name identifies the caller in the store's records: its address.
func (r *remoteCaller) name() string {
	if r.conn == nil {
		return "restored"
	}
	return r.conn.GetRemote()
}

// onSubmit takes a remote submission. msg is lent for the call only
// (ListenInlineView): the strings are decoded into their own, and the payload, which
// the job keeps, is copied: the one copy of a job's input the master makes.
func (r *remoteCaller) onSubmit(msg *banio.IOMsgRaw) {
	var s protocol.Submit
	if err := protocol.DecodeSubmitInto(&s, msg.Data); err != nil {
		r.lim.log(r.m.opts.logger, r.conn, "bad submission", err)
		return
	}
	s.Payload = bytes.Clone(s.Payload)
	// The job's context carries only the caller's span: what can stop a remote job
	// (a cancel message, the connection closing, its timeout) stops it directly.
	ctx := r.m.opts.tracing.extract(context.Background(), s.Trace)
	spec := Job{ID: s.ID, Type: s.Type, Timeout: s.Timeout, MaxAttempts: s.MaxAttempts}
	if _, err := r.m.submit(ctx, spec, s.Payload, r, s.Key); err != nil {
		if r.m.opts.afterCommit && errors.Is(err, errStoreFailed) {
			// A replicated store that failed ends this leadership: the node closes
			// the connections next, and the Client re-attaches to the next leader
			// and submits the job there (replicated.go). An answer now would fail
			// its Ticket instead.
			return
		}
		r.reply(s.Key, nil, err, nil)
	}
}

// progress forwards a progress report of a job this caller submitted. It runs on a
// worker connection's read loop, so it never waits on the caller.
func (r *remoteCaller) progress(id string, p Progress) {
	if r.conn == nil {
		return // a restored job's caller has not re-attached
	}
	_ = r.conn.WriteMsgNoBlock(&banio.IOMsg{Action: protocol.ActionProgress, Data: protocol.ProgressMsg{
		ID: id, Attempt: p.Attempt, Done: p.Done, Total: p.Total, Message: p.Message, WorkerID: p.WorkerID}})
}

// onCancel runs on the read loop (see initConn) and leaves the cancellation, which may
// write to a worker, to a goroutine: cancellations are rare.
func (r *remoteCaller) onCancel(msg *banio.IOMsgRaw) {
	var c protocol.CancelMsg
	if err := json.Unmarshal(msg.Data, &c); err != nil {
		r.lim.log(r.m.opts.logger, r.conn, "bad cancel", err)
		return
	}
	go r.m.cancelRemote(r, c.ID)
}

// onAttach answers a reconnected Client's fleet.attach: for each job it names, the
// retained outcome at once, or the job re-pointed to this connection, or the id listed
// as unknown so that the client submits it again.
func (r *remoteCaller) onAttach(msg *banio.IOMsgRaw) {
	var a protocol.AttachMsg
	err := json.Unmarshal(msg.Data, &a)
	if err == nil && (a.Reply == "" || len(a.Jobs) > protocol.MaxAttachJobs) {
		err = fmt.Errorf("reply key missing, or %d jobs (at most %d)", len(a.Jobs), protocol.MaxAttachJobs)
	}
	if err != nil {
		r.lim.log(r.m.opts.logger, r.conn, "bad attach", err)
		return
	}
	var rep protocol.AttachReply
	for _, aj := range a.Jobs {
		if aj.ID == "" || aj.Key == "" || !r.m.attach(r, aj.ID, aj.Key) {
			rep.Unknown = append(rep.Unknown, aj.ID)
		}
	}
	_ = r.conn.SendWaitResNoBlock(a.Reply, rep)
}

// attach re-attaches remote caller r to the job held under id, its outcome to be
// sent under key; false if the master holds no such job.
func (m *Master) attach(r *remoteCaller, id, key string) bool {
	t := newRemoteReply(r, key)
	m.mu.Lock()
	if old := m.jobs[id]; old != nil && !m.closed {
		err := m.takeOverLocked(old, t)
		m.mu.Unlock()
		if err != nil {
			t.resolveRaw(nil, err, nil)
		}
		return true
	}
	out, ok := m.retained.get(id, instantNow())
	m.mu.Unlock()
	if !ok {
		return false
	}
	t.resolveRaw(out.result, out.err, nil)
	return true
}

// takeOverLocked makes the re-attaching caller of t the job's caller: its reply,
// progress and cancellation go to t's connection from now on. A re-attach comes from a
// Client whose connection dropped, but the master may not have seen that connection
// close yet (the new one can be quicker than the old one's end): so the caller it
// replaces, unless gone already, is kept as a follower rather than dropped, and hears
// the outcome too if it is still there. Without a remote caller to replace (a job
// submitted in process, or restored by a durable master without one), t follows. m.mu
// must be held.
func (m *Master) takeOverLocked(old *job, t *remoteReply) error {
	ot, _ := old.caller.(*remoteReply)
	if ot == nil {
		return m.followLocked(old, t)
	}
	prev, prevKey := ot.target()
	r, key := t.target()
	if prev == nil || prev == r {
		return m.followLocked(old, t)
	}
	ot.repoint(r, key)
	if prev.gone || prev.conn == nil || len(old.followers) >= maxFollowers {
		return nil
	}
	old.followers = append(old.followers, newRemoteReply(prev, prevKey))
	return nil
}

// connClosed marks the caller gone and, after the caller grace, stops every job it
// submitted that no later connection took over. Marking the caller gone under the
// master's lock makes a submission racing the close either be counted here or be
// refused by admitLocked. Finding the jobs takes a pass over all unresolved jobs, once
// per closed caller connection, when its grace ends: one timer per connection, none
// per job.
func (r *remoteCaller) connClosed() {
	m := r.m
	grace := m.opts.callerGrace
	m.mu.Lock()
	r.gone = true
	if grace > 0 {
		m.afterGraceLocked(grace, func() {
			r.stopJobs(fmt.Errorf("%w: its caller (%s) went away and did not re-attach within %v", errJobCanceled, r.conn.GetRemote(), grace))
		})
	}
	m.mu.Unlock()
	if grace <= 0 {
		r.stopJobs(errJobCanceled)
	}
}

// afterGraceLocked runs stop once a caller's grace period d has passed, unless the
// master closes first: Close stops the timer, which would otherwise keep the closed
// Master, and all it held, from being collected until it fired (30 s by default; a
// process that opens and closes masters, as tests and benchmarks do, held several at
// once). m.mu must be held.
func (m *Master) afterGraceLocked(d time.Duration, stop func()) {
	if m.closed {
		return // Close has ended the jobs already
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		m.mu.Lock()
		delete(m.graceTimers, t)
		m.mu.Unlock()
		stop()
	})
	if m.graceTimers == nil {
		m.graceTimers = make(map[*time.Timer]struct{})
	}
	m.graceTimers[t] = struct{}{}
}

// stopJobs stops the unresolved jobs that are still this caller's.
func (r *remoteCaller) stopJobs(reason error) {
	m := r.m
	var jobs []*job
	m.mu.Lock()
	for _, j := range m.jobs {
		if j.remote() == r {
			jobs = append(jobs, j)
		}
	}
	m.mu.Unlock()
	for _, j := range jobs {
		m.stop(j, reason)
	}
}

// reply sends a job's outcome to the remote caller: raw as it is when it is given (the
// worker's encoded reply, which carries this outcome), else the reply encoded here. It
// often runs on a worker connection's read loop (the attempt's wait callback), so it
// never waits on a caller that stopped reading: such a caller is cut as a slow
// consumer instead.
func (r *remoteCaller) reply(key string, result []byte, err error, raw []byte) {
	if r.conn == nil {
		return // a restored job's caller has not re-attached: its outcome is retained
	}
	head, body := raw, []byte(nil)
	if raw == nil {
		p := replyParts(protocol.ReplyFor(result, err))
		head, body = p.Head, p.Body
	}
	if serr := r.conn.SendWaitResPartsNoBlock(key, head, body); errors.Is(serr, banio.ErrFrameTooLarge) {
		rep := protocol.ReplyFor(result, err)
		// The reply that reached the master does not fit a frame to the caller (its
		// header is not the worker's): without an answer the caller would wait
		// forever. It gets why instead, in a reply that fits.
		_ = r.conn.SendWaitResNoBlock(key, replyParts(replyTooLarge(rep, serr)))
	}
}

// replyTooLarge is the CodeResultTooLarge error that replaces a reply to a remote caller
// that failed to send with sendErr.
func replyTooLarge(rep *protocol.Reply, sendErr error) *protocol.Reply {
	return protocol.ReplyFor(nil, &RemoteError{Code: CodeResultTooLarge, Message: fmt.Sprintf(
		"the master cannot forward the job's reply (%d-byte result, %d-byte message) to this client: %v; return large results by other means (store them, return a reference) or raise banio.WithMaxFrameSize on master, workers and clients",
		len(rep.Payload), len(rep.Message), sendErr)})
}

// replyParts is a reply's header and payload, to be sent as one message without copying
// the payload behind the header.
func replyParts(rep *protocol.Reply) banio.Parts {
	return banio.Parts{Head: protocol.ReplyHeader(rep), Body: rep.Payload}
}
