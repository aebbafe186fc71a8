package dispatch

import (
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// initConn adds the master's handlers to a new connection, which may be a worker, a
// remote Client, or both.
func (m *Master) initConn(c *banio.BanConn) {
	var lim, refused badInput
	// On the read loop: the replies a re-registering worker held follow its
	// registration and must find the waits it sets up (orphan.go). Registering
	// never blocks.
	c.ListenInline(protocol.ActionRegister, func(msg *banio.IOMsgRaw) {
		var info WorkerInfo
		if err := json.Unmarshal(msg.Data, &info); err != nil || info.ID == "" {
			lim.log(m.opts.logger, c, "bad worker registration", err)
			return
		}
		// Its own limiter: a refusal is what an operator must see, even after some
		// other malformed message from the same connection was logged.
		if err := m.register(c, info); err != nil {
			refused.log(m.opts.logger, c, "worker registration refused", err)
		}
	})
	c.Listen(protocol.ActionDrain, func(*banio.IOMsgRaw) { m.drain(c) })
	// On the read loop, like the attempt's reply (a wait callback): a worker's
	// reports then reach the ticket before the result that follows them.
	c.ListenInline(protocol.ActionProgress, func(msg *banio.IOMsgRaw) {
		var p protocol.ProgressMsg
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			lim.log(m.opts.logger, c, "bad progress report", err)
			return
		}
		m.progress(c, p)
	})
	c.Listen(protocol.ActionBlobGet, func(msg *banio.IOMsgRaw) { m.onBlobGet(c, &lim, msg) })
	c.Listen(protocol.ActionBlobPut, func(msg *banio.IOMsgRaw) { m.onBlobPut(c, msg) })
	c.Listen(protocol.ActionBlobDelete, func(msg *banio.IOMsgRaw) { m.onBlobDelete(c, msg) })
	r := &remoteCaller{m: m, conn: c}
	// Submissions are taken on the read loop: admitting a job never blocks (a job
	// is sent by a goroutine of its own, outcomes by SendWaitResNoBlock). Lent the
	// message: onSubmit copies the payload it keeps.
	c.ListenInlineView(protocol.ActionSubmit, r.onSubmit)
	// Cancellations are read on the read loop too, so that one sent just before the
	// caller closes (Client.Close cancels its jobs) is not dropped with the handlers'
	// queue when the connection closes; acting on them may block, so it does not.
	c.ListenInline(protocol.ActionCancel, r.onCancel)
	c.Listen(protocol.ActionAttach, r.onAttach)
	c.OnClose(func() {
		m.forgetWorker(c)
		r.connClosed()
	})
}

// progress forwards a worker's report to the job's ticket, if the report comes from the
// worker running the job's current attempt.
func (m *Master) progress(c *banio.BanConn, p protocol.ProgressMsg) {
	m.mu.Lock()
	j := m.jobs[p.ID]
	ok := j != nil && j.state == stateRunning && j.attempt == p.Attempt && j.worker != nil && j.worker.conn == c
	var workerID string
	var fs []observer
	if ok {
		workerID, fs = j.worker.info.ID, j.followers
	}
	m.mu.Unlock()
	if ok {
		rep := Progress{Done: p.Done, Total: p.Total, Message: p.Message, Attempt: p.Attempt, WorkerID: workerID}
		j.caller.report(p.ID, rep)
		for _, t := range fs {
			t.report(p.ID, rep)
		}
	}
}

// badInput logs malformed control messages at most once per connection.
type badInput struct{ once sync.Once }

func (b *badInput) log(l *slog.Logger, c *banio.BanConn, what string, err error) {
	b.once.Do(func() {
		l.Warn("dispatch: "+what+" (further ones from this connection are not logged)", "remote", c.GetRemote(), "err", err)
	})
}
