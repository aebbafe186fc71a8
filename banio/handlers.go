package banio

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
)

// handlerTable maps actions to handlers. It is immutable once published: Listen copies
// it, so the read path looks handlers up without a lock.
type handlerTable struct {
	exact   map[string]handler
	lengths []int // the distinct lengths of the registered prefixes, longest first
}

// handler is a registered callback; inline ones run on the read loop (ListenInline).
type handler struct {
	cb     ConnCB
	inline bool
	view   bool // lent the message for the call only (ListenInlineView)
}

// find returns the handler for action: an exact match wins, else the longest
// registered prefix of action (banbot picks a random matching prefix instead). It costs
// one map lookup per distinct prefix length, however many handlers there are (a worker
// registers one per job type).
func (t *handlerTable) find(action string) (handler, bool) {
	if h, ok := t.exact[action]; ok {
		return h, true
	}
	for _, n := range t.lengths {
		if n < len(action) {
			if h, ok := t.exact[action[:n]]; ok {
				return h, true
			}
		}
	}
	return handler{}, false
}

// lookup returns the callback for action, or nil.
func (t *handlerTable) lookup(action string) ConnCB {
	h, _ := t.find(action)
	return h.cb
}

// Listen registers cb for every action equal to or starting with prefix. cb runs on
// the connection's handler goroutine, one message at a time in arrival order. It is
// safe at any time, also while messages arrive. A nil cb removes the registration.
func (c *BanConn) Listen(prefix string, cb ConnCB) { c.listen(prefix, handler{cb: cb}) }

// ListenInline is Listen for callbacks that never block (they decode, record, or start
// a goroutine): cb runs on the read loop itself as each message arrives, saving the
// handoff to the handler goroutine. It runs ahead of messages still waiting for the
// handler goroutine, so use it only for actions whose order relative to others does not
// matter. A blocking cb stalls the whole connection; on a ClientIO, cb may run work that
// might block with RunMovable instead.
func (c *BanConn) ListenInline(prefix string, cb ConnCB) {
	c.listen(prefix, handler{cb: cb, inline: true})
}

// ListenInlineView is ListenInline for callbacks that keep nothing of the message
// they are given: msg, msg.Data and every slice of it are valid only until cb returns,
// since Data may be a view of the connection's read buffer, which the next frame
// overwrites. cb copies what it keeps (a string made from the bytes is a copy). That
// saves the copy of every message's data into memory of its own, which a handler that
// decodes the data into values of its own only throws away.
func (c *BanConn) ListenInlineView(prefix string, cb ConnCB) {
	c.listen(prefix, handler{cb: cb, inline: true, view: true})
}

func (c *BanConn) listen(prefix string, h handler) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	old := c.handlers.Load()
	next := &handlerTable{exact: make(map[string]handler, len(old.exact)+1)}
	for k, v := range old.exact {
		next.exact[k] = v
	}
	if h.cb == nil {
		delete(next.exact, prefix)
	} else {
		next.exact[prefix] = h
	}
	seen := make(map[int]bool, len(old.lengths)+1)
	for k := range next.exact {
		if !seen[len(k)] {
			seen[len(k)] = true
			next.lengths = append(next.lengths, len(k))
		}
	}
	slices.SortFunc(next.lengths, func(a, b int) int { return b - a })
	c.handlers.Store(next)
}

// inbox queues received messages for the connection's handler goroutine, so that the
// read loop never waits for a handler (and `__res__` results are delivered at once)
// while handlers still see messages one at a time in arrival order.
type inbox struct {
	mu      sync.Mutex
	queue   []*IOMsgRaw
	bytes   int
	running bool
	wake    chan struct{} // cap 1
	room    chan struct{} // closed when the queue drains; nil when nobody waits
}

func (q *inbox) init() { q.wake = make(chan struct{}, 1) }

// push queues msg for the handlers. When the queue is past its byte bound it waits for
// the handlers to catch up (which pushes back on the peer through TCP).
func (c *BanConn) push(msg *IOMsgRaw) {
	q := &c.in
	q.mu.Lock()
	for q.bytes > 0 && q.bytes+len(msg.Data) > c.cfg.maxInbox {
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		// The read loop waits: its batch ends first, so that what it deferred does not
		// wait with it (flush.go).
		c.endBatch()
		select {
		case <-room:
		case <-c.done:
			return
		}
		q.mu.Lock()
	}
	q.queue = append(q.queue, msg)
	q.bytes += len(msg.Data)
	if !q.running {
		q.running = true
		c.wg.Add(1)
		go c.handleLoop()
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// handleLoop is the handler goroutine.
func (c *BanConn) handleLoop() {
	defer c.wg.Done()
	q := &c.in
	var batch []*IOMsgRaw
	for {
		select {
		case <-q.wake:
		case <-c.done:
			return
		}
		q.mu.Lock()
		batch, q.queue = q.queue, batch[:0]
		q.bytes = 0
		if q.room != nil {
			close(q.room)
			q.room = nil
		}
		q.mu.Unlock()
		for i, msg := range batch {
			if c.IsClosed() {
				return
			}
			c.dispatch(msg)
			batch[i] = nil
		}
	}
}

// dispatch runs the handler for msg, turning a panic into a log line: one bad handler
// must not take the process down (banbot's do).
func (c *BanConn) dispatch(msg *IOMsgRaw) {
	c.run(msg, c.handlers.Load().lookup(msg.Action))
}

// run calls cb for msg, recovering a panic.
func (c *BanConn) run(msg *IOMsgRaw, cb ConnCB) {
	if cb == nil {
		c.unknownLog.log(c.log, slog.LevelWarn, "banio: no handler for action, message dropped", "action", msg.Action)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("banio: handler panicked", "action", msg.Action, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	cb(msg)
}
