package worker

import (
	"encoding/json"
	"sync/atomic"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/protocol"
)

// Losing the master and finding it again. A lost connection cancels nothing: jobs keep
// running, and their replies are held (reply.go). banio reconnects by itself and calls
// register, which tells the master (the same one after a blip, one that restarted and
// rebuilt its jobs from its store, or the new leader of a cluster of masters, which
// banio found through the followers' answers) what the worker still holds: the jobs of earlier
// connections still running, and the held replies, which follow the registration on
// the connection. The master re-adopts what it still waits for and cancels the running
// attempts it does not want (ActionCancel with their attempt, handled by onCancel).

// connLost is banio's OnConnLost: from now on replies are held, not sent, and the
// replies sent within the linger window are held too, as any of them may not have
// reached the master. It runs on the read goroutine and does not block.
func (w *Worker) connLost(err error) {
	now := w.now()
	w.mu.Lock()
	w.link.lost()
	w.recent.drain(now, w.holdLocked)
	held := w.held.len()
	w.mu.Unlock()
	w.log.Info("worker: connection to the master lost; jobs keep running, replies are held", "err", err, "held", held)
}

// register announces the worker and subscribes to its job types (banio restores the
// subscriptions after a reconnect; the announcement is repeated by ReInitConn). After
// a reconnect the announcement lists what the worker holds (protocol.WorkerInfo.Held)
// and the held replies follow it. It sends fleet.drain again if the worker is
// draining.
func (w *Worker) register() {
	// One at a time, and at most one waiting: banio starts a registration per
	// reconnect, and a master that keeps dropping the connection (or a proxy in front
	// of a master that is gone) must not pile them up. The waiting one reads the state
	// when it runs, so it registers for the latest connection.
	if !w.regQueued.CompareAndSwap(false, true) {
		return
	}
	w.regMu.Lock()
	defer w.regMu.Unlock()
	w.regQueued.Store(false)
	types := make([]string, 0, len(w.handlers))
	actions := make([]string, 0, len(w.handlers))
	for typ := range w.handlers {
		types = append(types, typ)
		actions = append(actions, protocol.JobAction(typ))
	}
	info := protocol.WorkerInfo{ID: w.id, Name: w.name, Capacity: w.capacity, Labels: w.labels, Types: types, Version: protocol.BuildVersion()}
	w.mu.Lock()
	conn, draining := w.conn, w.draining.Load()
	losses, _ := w.link.load()
	w.generation++
	replies, dropped := w.claimsLocked(&info)
	w.flushing = true
	w.mu.Unlock()
	if dropped > 0 {
		w.log.Warn("worker: more attempts held than a registration lists; dropping the replies past the bound, which the master runs again",
			"dropped", dropped, "max", protocol.MaxHeldAttempts)
	}
	data, _ := json.Marshal(info)
	if err := conn.Subscribe(actions...); err != nil {
		w.log.Warn("worker: subscribe failed", "err", err)
	}
	if err := conn.WriteMsg(&banio.IOMsg{Action: protocol.ActionRegister, Data: data}); err != nil {
		w.log.Warn("worker: register failed", "err", err)
	}
	if draining {
		_ = conn.WriteMsg(&banio.IOMsg{Action: protocol.ActionDrain})
	}
	if len(info.Held) > 0 {
		w.log.Info("worker: registered again, claiming held attempts", "held", len(info.Held), "replies", len(replies))
	}
	w.flushHeld(conn, replies, losses)
}

// claimsLocked lists in info.Held the jobs still running that came on an earlier
// connection and the held replies, at most protocol.MaxHeldAttempts, and takes the
// held replies it listed, for flushHeld to send. It returns them and how many it had
// to drop. w.mu must be held, and w.generation be the new connection's.
func (w *Worker) claimsLocked(info *protocol.WorkerInfo) (replies []heldReply, dropped int) {
	for key, rj := range w.running {
		if rj.generation < w.generation && len(info.Held) < protocol.MaxHeldAttempts {
			info.Held = append(info.Held, protocol.HeldAttempt{ID: key.id, Attempt: key.attempt})
		}
	}
	replies = w.held.take()
	if room := protocol.MaxHeldAttempts - len(info.Held); len(replies) > room {
		dropped = len(replies) - room
		clear(replies[room:])
		replies = replies[:room]
	}
	for _, r := range replies {
		info.Held = append(info.Held, protocol.HeldAttempt{ID: r.key.id, Attempt: r.key.attempt, Done: true})
	}
	return replies, dropped
}

// flushHeld sends the replies behind the registration, then those held meanwhile (of
// attempts the registration listed as running, or that came on the new connection),
// until none is left: only then does it let replies go straight out again (w.link),
// so that none overtakes the registration. losses is w.link's count when the registration
// began: if the connection is lost again meanwhile, what is not known to be sent
// stays held for the next registration.
func (w *Worker) flushHeld(conn *banio.ClientIO, replies []heldReply, losses int64) {
	defer func() {
		w.mu.Lock()
		w.flushing = false
		w.mu.Unlock()
		select { // for a drain waiting for the replies to be delivered
		case w.delivered <- struct{}{}:
		default:
		}
	}()
	for {
		for i := range replies {
			// On the key a restarted master waits on for an attempt it re-adopts (the
			// envelope's Key, from a master of this protocol).
			replies[i].wait = protocol.AttemptKey(replies[i].key.id, replies[i].key.attempt)
			err := w.send(conn, &replies[i])
			w.mu.Lock()
			if err != nil || w.lossesLocked() != losses {
				for _, r := range replies[i:] {
					w.holdLocked(r)
				}
				if w.lossesLocked() == losses {
					// A write that failed without a loss (yet): the rest waits for the
					// next registration, like a reply whose send failed; others go
					// straight out meanwhile.
					w.link.up()
				}
				w.mu.Unlock()
				return
			}
			replies[i].at = w.now()
			w.recent.push(replies[i])
			w.mu.Unlock()
		}
		w.mu.Lock()
		if w.lossesLocked() != losses {
			w.mu.Unlock()
			return
		}
		replies = w.held.take()
		if len(replies) == 0 {
			w.link.up()
			w.held.warned = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// linkState is the connection as replies see it: how many times it was lost, and
// whether it is down (lost, and not registered again yet). It is written under w.mu
// and read without it on the reply path, which so takes w.mu once per reply. Losing
// sets down and counts the loss in one step: a reply that saw the count before a loss
// and down unset finds the count moved when it checks after sending.
type linkState struct{ v atomic.Int64 } // losses<<1 | down

func (l *linkState) load() (losses int64, down bool) {
	v := l.v.Load()
	return v >> 1, v&1 != 0
}

// lost records a loss; w.mu must be held.
func (l *linkState) lost() { l.v.Store((l.v.Load()>>1+1)<<1 | 1) }

// up lets replies go straight out again; w.mu must be held.
func (l *linkState) up() { l.v.Store(l.v.Load() &^ 1) }

// lossesLocked is the count of losses; w.mu must be held to act on it.
func (w *Worker) lossesLocked() int64 {
	n, _ := w.link.load()
	return n
}
