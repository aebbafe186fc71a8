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
// rest back, and closes the connection (which flushes the replies).
func (w *Worker) drain(conn *banio.ClientIO) {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	_ = conn.WriteMsg(&banio.IOMsg{Action: protocol.ActionDrain})
	w.log.Info("worker: draining", "grace", w.grace)

	finished := make(chan struct{})
	go func() {
		w.jobs.Wait()
		close(finished)
	}()
	grace := time.NewTimer(w.grace)
	defer grace.Stop()
	select {
	case <-finished:
	case <-grace.C:
		w.cancelAllWith(errHandedBack)
		hard := time.NewTimer(drainHardLimit)
		defer hard.Stop()
		select {
		case <-finished:
		case <-hard.C:
			w.log.Warn("worker: handlers ignore cancellation; closing anyway")
		}
	}
	_ = conn.Close()
}
