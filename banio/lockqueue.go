package banio

import (
	"fmt"
	"time"
)

// The server's queue of Lock requests. A request that asks to wait (lockReq.WaitMs) for
// a lock another token holds is queued per key, first come first served, and answered
// when the lock is handed to it: on Unlock, on a delete through onSetVal, or when the
// holder's TTL runs out (one timer per key with a queue). Polling clients were served
// by luck: under contention some waited for seconds while the median waited for
// microseconds.
//
// A request still queued when its wait runs out is answered "retry" and keeps its place
// for a write timeout, long enough for its client to ask again. A lock handed to it in
// that moment is granted without an answer: the re-ask finds the lock held by its own
// token and is answered "ok" (a client that gave up instead withdraws, which releases
// it). Queued requests of a closed connection are dropped. Everything here runs
// under the store's lock (kv.mu), so a handover is atomic with the store; the answers
// are collected and sent once that lock is released.

// lockQueues holds the queued Lock requests of a server.
type lockQueues struct {
	lines  map[string]*lockLine                  // by lock key (without lockPrefix)
	byConn map[*BanConn]map[*lockWaiter]struct{} // to drop a closed connection's requests
	n      int                                   // queued requests
	bytes  int                                   // what they hold, counted in the store's budget

	queued func(key, token string, reask bool) // test hook: a request (re)joined a queue; under kv.mu
}

// lockLine is the queue of one lock key, a doubly linked list in arrival order.
type lockLine struct {
	key, storeKey string // the lock's key, and its key in the store
	head, tail    *lockWaiter
	byToken       map[string]*lockWaiter
	expiry        *time.Timer // hands the lock over when its holder's TTL ends
	dead          bool        // out of lines: a late timer must do nothing
}

// lockWaiter is one queued request.
type lockWaiter struct {
	line       *lockLine // nil once out of its queue
	prev, next *lockWaiter
	token      string
	ttl        time.Duration // of the lock once granted
	conn       *BanConn
	reply      string      // the wait key to answer; "" while the server awaits a re-ask
	due        time.Time   // when timer's work is due: answer "retry", or drop
	timer      *time.Timer // answers "retry" at the end of the wait, drops after the grace
	bytes      int         // held, counted in lockQueues.bytes
}

// lockAnswer is an answer decided under kv.mu and sent after it is released. For a
// grant, key and token say which lock to hand on if the answer cannot be sent.
type lockAnswer struct {
	conn       *BanConn
	reply, res string
	key, token string
}

// waiterBytes is what a queued request holds: at least what its lock will take in the
// store once granted, so a grant never takes the store past its budget.
func waiterBytes(key, token, reply string) int {
	return len(lockPrefix) + len(key) + len(token) + len(reply)
}

// queueLocked queues the request r of connection c behind the holder of its lock, or
// gives an earlier request of the same token its new reply key (a re-ask keeps its
// place). It returns why the request cannot be queued. kv.mu must be held.
func (s *ServerIO) queueLocked(c *BanConn, r *lockReq, ttl, wait time.Duration, now time.Time) error {
	kv, q, b := &s.kv, &s.kv.locks, &s.cfg.budgets
	l := q.lines[r.Key]
	if w := l.find(r.Token); w != nil {
		grow := len(r.Reply) - len(w.reply)
		if grow > 0 && kv.held()+grow > b.kvBytes {
			q.removeLocked(w)
			return s.kvFull(grow)
		}
		w.bytes += grow
		q.bytes += grow
		w.reply, w.ttl = r.Reply, ttl
		if w.conn != c {
			q.untrackConn(w)
			s.trackConnLocked(w, c)
		}
		w.due = now.Add(wait)
		w.timer.Reset(wait)
		if q.queued != nil {
			q.queued(r.Key, r.Token, true)
		}
		return nil
	}
	if c.IsClosed() {
		return ErrConnClosed // nobody to answer
	}
	if l != nil && len(l.byToken) >= b.waitersPerKey {
		return fmt.Errorf("%w: %d requests are queued for this lock, the limit per key (WithLockWaiters)", ErrLimit, len(l.byToken))
	}
	if n := len(q.byConn[c]); n >= b.waitersPerCon {
		return fmt.Errorf("%w: this connection has %d lock requests queued, the limit per connection (WithLockWaitersPerConn)", ErrLimit, n)
	}
	if q.n >= b.waiters {
		return fmt.Errorf("%w: %d lock requests are queued on the server, the limit (WithLockWaiters)", ErrLimit, q.n)
	}
	size := waiterBytes(r.Key, r.Token, r.Reply)
	if kv.held()+size > b.kvBytes {
		return s.kvFull(size)
	}
	if l == nil {
		l = &lockLine{key: r.Key, storeKey: lockPrefix + r.Key, byToken: make(map[string]*lockWaiter)}
		if q.lines == nil {
			q.lines = make(map[string]*lockLine)
		}
		q.lines[r.Key] = l
	}
	w := &lockWaiter{line: l, prev: l.tail, token: r.Token, ttl: ttl, reply: r.Reply, due: now.Add(wait), bytes: size}
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.byToken[r.Token] = w
	q.n++
	q.bytes += size
	s.trackConnLocked(w, c)
	w.timer = time.AfterFunc(wait, func() { s.lockWaiterDue(w) })
	if q.queued != nil {
		q.queued(r.Key, r.Token, false)
	}
	return nil
}

// kvFull is the error for grow bytes that do not fit the store's budget.
func (s *ServerIO) kvFull(grow int) error {
	return fmt.Errorf("%w: the store holds %d of its %d bytes, %d more do not fit (WithMaxKVBytes)",
		ErrLimit, s.kv.held(), s.cfg.budgets.kvBytes, grow)
}

// find returns the queued request of token; l may be nil.
func (l *lockLine) find(token string) *lockWaiter {
	if l == nil {
		return nil
	}
	return l.byToken[token]
}

// removeLocked takes w out of its queue, dropping the queue once empty. kv.mu must be
// held.
func (q *lockQueues) removeLocked(w *lockWaiter) {
	l := w.line
	if l == nil {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next, w.line = nil, nil, nil
	delete(l.byToken, w.token)
	q.n--
	q.bytes -= w.bytes
	w.timer.Stop()
	q.untrackConn(w)
	if l.head == nil {
		l.dead = true
		if l.expiry != nil {
			l.expiry.Stop()
		}
		delete(q.lines, l.key)
	}
}

// trackConnLocked records that w belongs to c, so that c's close drops it. The close
// hook is registered once per connection, the first time it queues a request.
func (s *ServerIO) trackConnLocked(w *lockWaiter, c *BanConn) {
	q := &s.kv.locks
	set := q.byConn[c]
	if set == nil {
		if q.byConn == nil {
			q.byConn = make(map[*BanConn]map[*lockWaiter]struct{})
		}
		set = make(map[*lockWaiter]struct{})
		q.byConn[c] = set
		c.OnClose(func() { s.dropLockWaiters(c) })
	}
	set[w] = struct{}{}
	w.conn = c
}

// untrackConn forgets that w belongs to its connection.
func (q *lockQueues) untrackConn(w *lockWaiter) {
	if set := q.byConn[w.conn]; set != nil {
		delete(set, w)
	}
}

// dropLockWaiters drops the queued requests of a closed connection.
func (s *ServerIO) dropLockWaiters(c *BanConn) {
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for w := range kv.locks.byConn[c] {
		kv.locks.removeLocked(w)
	}
	delete(kv.locks.byConn, c)
}

// settleLocked hands the lock of l to the first request in line, for as long as the
// lock is free (missing or expired), and otherwise sets l's timer for the holder's
// expiry. Grants are appended to out, except to a request awaiting its re-ask, which
// the re-ask answers. kv.mu must be held.
func (s *ServerIO) settleLocked(l *lockLine, now time.Time, out *[]lockAnswer) {
	kv := &s.kv
	for !l.dead {
		e, held := kv.m[l.storeKey]
		if held && !e.expired(now.UnixNano()) {
			s.armLocked(l, e, now)
			return
		}
		w := l.head
		if !held && len(kv.m) >= s.cfg.kvKeys {
			// No room in the store: the request is answered "retry" when its wait
			// ends, and its re-ask finds out.
			if l.expiry != nil {
				l.expiry.Stop()
			}
			return
		}
		kv.locks.removeLocked(w) // frees at least what the grant takes (waiterBytes)
		kv.put(l.storeKey, kvEntry{val: w.token, expires: expiryAt(now, w.ttl)})
		if w.reply != "" {
			*out = append(*out, lockAnswer{conn: w.conn, reply: w.reply, res: lockOK, key: l.key, token: w.token})
		}
	}
}

// armLocked sets l's timer for the expiry of its holder's entry e. kv.mu must be held.
func (s *ServerIO) armLocked(l *lockLine, e kvEntry, now time.Time) {
	if e.expires == 0 { // set through onSetVal without expiry: only a delete frees it
		if l.expiry != nil {
			l.expiry.Stop()
		}
		return
	}
	d := time.Duration(e.expires - now.UnixNano())
	if l.expiry == nil {
		l.expiry = time.AfterFunc(d, func() { s.lockLineDue(l) })
		return
	}
	l.expiry.Reset(d)
}

// lockLineDue runs when the holder of l's lock may have expired.
func (s *ServerIO) lockLineDue(l *lockLine) {
	var out []lockAnswer
	s.kv.mu.Lock()
	s.settleLocked(l, time.Now(), &out)
	s.kv.mu.Unlock()
	s.sendLockAnswers(out)
}

// lockWaiterDue runs when w's wait has run out (it is answered "retry" and awaits its
// re-ask) or when its re-ask did not come within the grace (it is dropped).
func (s *ServerIO) lockWaiterDue(w *lockWaiter) {
	var out []lockAnswer
	kv := &s.kv
	kv.mu.Lock()
	now := time.Now()
	switch {
	case w.line == nil || now.Before(w.due): // granted, withdrawn or re-asked meanwhile
	case w.reply != "":
		out = append(out, lockAnswer{conn: w.conn, reply: w.reply, res: lockRetry})
		w.bytes -= len(w.reply)
		kv.locks.bytes -= len(w.reply)
		w.reply = ""
		grace := s.cfg.writeTimeout
		if grace <= 0 {
			grace = DefaultWriteTimeout
		}
		w.due = now.Add(grace)
		w.timer.Reset(grace)
	default:
		kv.locks.removeLocked(w)
	}
	kv.mu.Unlock()
	s.sendLockAnswers(out)
}

// sendLockAnswers sends answers decided under kv.mu, never waiting for a connection
// that stopped reading. A grant that cannot be sent (its connection is gone) is undone
// and the lock handed to the next in line, rather than left to its TTL.
func (s *ServerIO) sendLockAnswers(out []lockAnswer) {
	for i := 0; i < len(out); i++ {
		a := out[i]
		if err := a.conn.SendWaitResNoBlock(a.reply, a.res); err != nil && a.res == lockOK {
			_, more := s.unlock(a.key, a.token, time.Now())
			out = append(out, more...)
		}
	}
}
