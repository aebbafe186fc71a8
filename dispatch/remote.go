package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// remoteCaller is the master's side of one connection's remote submissions
// (dispatch.Client): it submits on the caller's behalf, forwards progress, and replies
// with the outcome. Jobs of a caller whose connection closes are stopped.
type remoteCaller struct {
	m    *Master
	conn *banio.BanConn
	lim  badInput
	gone bool // the connection has closed; guarded by Master.mu
}

func (r *remoteCaller) onSubmit(msg *banio.IOMsgRaw) {
	s, err := protocol.DecodeSubmit(msg.Data)
	if err != nil {
		r.lim.log(r.m.opts.logger, r.conn, "bad submission", err)
		return
	}
	// Counted until reply, so that the outcomes of concurrent submissions leave in
	// batches rather than one write each.
	r.conn.AddServing(1)
	// The job's context carries only the caller's span: what can stop a remote job
	// (a cancel message, the connection closing, its timeout) stops it directly.
	ctx := r.m.opts.tracing.extract(context.Background(), s.Trace)
	spec := Job{ID: s.ID, Type: s.Type, Timeout: s.Timeout, MaxAttempts: s.MaxAttempts}
	if _, err := r.m.submit(ctx, spec, s.Payload, r, s.Key); err != nil {
		r.reply(s.Key, nil, err)
	}
}

// resolved sends the outcome of a job this caller submitted (Ticket.resolve).
func (r *remoteCaller) resolved(t *Ticket, result []byte, err error) {
	r.reply(t.replyKey, result, err)
}

// progress forwards a progress report of a job this caller submitted. It runs on a
// worker connection's read loop, so it never waits on the caller.
func (r *remoteCaller) progress(t *Ticket, p Progress) {
	_ = r.conn.WriteMsgNoBlock(&banio.IOMsg{Action: protocol.ActionProgress, Data: protocol.ProgressMsg{
		ID: t.id, Attempt: p.Attempt, Done: p.Done, Total: p.Total, Message: p.Message, WorkerID: p.WorkerID}})
}

func (r *remoteCaller) onCancel(msg *banio.IOMsgRaw) {
	var c protocol.CancelMsg
	if err := json.Unmarshal(msg.Data, &c); err != nil {
		r.lim.log(r.m.opts.logger, r.conn, "bad cancel", err)
		return
	}
	r.m.cancelRemote(r, c.ID)
}

// connClosed stops every job this connection submitted. Marking the caller gone under
// the master's lock makes a submission racing the close either be stopped here or be
// refused by admitLocked. Finding the jobs takes a pass over all unresolved jobs, once
// per closed caller connection.
func (r *remoteCaller) connClosed() {
	m := r.m
	var jobs []*job
	m.mu.Lock()
	r.gone = true
	for _, j := range m.jobs {
		if j.ticket.remote == r {
			jobs = append(jobs, j)
		}
	}
	m.mu.Unlock()
	for _, j := range jobs {
		m.stop(j, errJobCanceled)
	}
}

// reply sends a job's outcome to the remote caller. It often runs on a worker
// connection's read loop (the attempt's wait callback), so it never waits on a caller
// that stopped reading: such a caller is cut as a slow consumer instead.
func (r *remoteCaller) reply(key string, result []byte, err error) {
	rep := protocol.ReplyFor(result, err)
	if serr := r.conn.SendWaitResNoBlock(key, replyParts(rep)); errors.Is(serr, banio.ErrFrameTooLarge) {
		// The reply that reached the master does not fit a frame to the caller (its
		// header is not the worker's): without an answer the caller would wait
		// forever. It gets why instead, in a reply that fits.
		_ = r.conn.SendWaitResNoBlock(key, replyParts(replyTooLarge(rep, serr)))
	}
	r.conn.AddServing(-1)
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
