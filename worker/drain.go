package worker

import (
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// drainHardLimit bounds the wait for handlers that ignore their cancelled context after
// the grace period.
const drainHardLimit = 5 * time.Second

// drain stops taking jobs, lets running ones finish within the grace period, hands the
// rest back, and closes the connection (which flushes the replies). Replies held while
// the connection is down get the rest of the grace period to be delivered by a
// registration (which repeats fleet.drain); those still held then are lost, and the
// master runs their jobs again.
func (w *Worker) drain(conn *banio.ClientIO) {
	w.mu.Lock()
	w.draining.Store(true)
	w.mu.Unlock()
	_ = conn.WriteMsg(&banio.IOMsg{Action: protocol.ActionDrain})
	w.log.Info("worker: draining", "grace", w.grace)
	defer func() { _ = conn.Close() }()

	finished := make(chan struct{})
	go func() {
		w.jobs.Wait()
		close(finished)
	}()
	grace := time.NewTimer(w.grace)
	defer grace.Stop()
	left := grace.C // what is left of the time to deliver held replies
	select {
	case <-finished:
	case <-grace.C:
		w.cancelAllWith(errHandedBack)
		hard := time.NewTimer(drainHardLimit)
		defer hard.Stop()
		select {
		case <-finished:
			left = hard.C // for the hand-backs, if the connection is down
		case <-hard.C:
			w.log.Warn("worker: handlers ignore cancellation; closing anyway")
			return
		}
	}
	for !w.allDelivered() {
		select {
		case <-w.delivered:
		case <-left:
			w.log.Warn("worker: closing with replies the master has not had; it runs those jobs again")
			return
		}
	}
}

// allDelivered reports whether no reply waits for a registration or is being sent by
// one. (Once the jobs have finished, a connection that is down holds nothing else.)
func (w *Worker) allDelivered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held.len() == 0 && !w.flushing
}
