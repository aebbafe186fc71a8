package banio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Request/response by key (docs/protocol.md): SetWait registers a channel under a key,
// the peer answers with SendWaitRes(key, …) (action "__res__"+key), the read loop offers
// the result to the channel without blocking, and WaitResult takes it. Unlike banbot,
// a wait fails at once when its connection (for a client: its socket) is lost, and the
// read loop never sends on a closed channel.

// waitTable holds a connection's pending waits.
type waitTable struct {
	mu sync.Mutex
	m  map[string]*waiter // channel waits (SetWait)
	// fns holds the callback waits (SetWaitFunc) by value: one is a callback and a
	// channel, and a struct of their own per wait was an allocation per request.
	fns   map[string]funcWait
	down  chan struct{} // closed when the current socket is lost; new waits get a fresh one
	limit int
	log   logLimiter
}

// funcWait is one pending callback wait: fn receives the result, or why none came.
type funcWait struct {
	fn   Waiter
	down chan struct{} // the table's down channel when it was registered
	view bool          // fn is lent the result for the call only (SetWaitFuncView)
}

// waiter is one pending channel wait: a channel that WaitResult takes the result from.
type waiter struct {
	ch   chan []byte
	down chan struct{}
	err  error // why ch was closed (ErrWaitOverflow, ErrNoWait); set under the table lock

	// For reuse (see waiterPool); under the table lock.
	reusable bool // a one-result wait whose channel never left banio
	readers  int  // WaitResult calls holding w
}

// waiterPool reuses one-result waiters, channel included: the waiter and its channel
// were three of a round trip's allocations. A waiter goes back to the pool only when
// nothing can reach it any more: out of the table, no WaitResult on it, its channel
// empty and open, never handed out by GetWaitChan.
var waiterPool sync.Pool

// newChanWaiter returns a waiter whose channel holds size results.
func newChanWaiter(size int) *waiter {
	if size > 1 {
		return &waiter{ch: make(chan []byte, size)}
	}
	if w, ok := waiterPool.Get().(*waiter); ok {
		return w
	}
	return &waiter{ch: make(chan []byte, 1), reusable: true}
}

// closeLocked closes w's channel for reason, once. The table lock must be held.
func (w *waiter) closeLocked(reason error) {
	if w.err == nil {
		w.err = reason
		close(w.ch)
	}
}

func (t *waitTable) init(limit int) {
	t.m = make(map[string]*waiter)
	t.fns = make(map[string]funcWait)
	t.down = make(chan struct{})
	t.limit = limit
}

// errNilWaiter: a callback wait needs a callback.
var errNilWaiter = errors.New("banio: a callback wait needs a non-nil callback")

// Why a wait ended without a result, when something other than its socket ended it.
var (
	errWaitReplaced = fmt.Errorf("%w: replaced by a new SetWait", ErrNoWait)
	errWaitClosed   = fmt.Errorf("%w: closed by CloseWaitChan", ErrNoWait)
)

// removeLocked takes the wait under key out of the table, if there is one, ending it
// with reason: a channel wait is closed here; a callback wait's fn is returned, to be
// called with reason once the lock is released. The table lock must be held.
func (t *waitTable) removeLocked(key string, reason error) (fn Waiter) {
	if fw, ok := t.fns[key]; ok {
		delete(t.fns, key)
		return fw.fn
	}
	if w := t.m[key]; w != nil {
		w.closeLocked(reason)
		delete(t.m, key)
	}
	return nil
}

// hasLocked reports whether a wait is registered under key. The table lock must be
// held.
func (t *waitTable) hasLocked(key string) bool {
	if _, ok := t.fns[key]; ok {
		return true
	}
	return t.m[key] != nil
}

// failAll fails every pending wait (their socket is gone). Waits registered afterwards
// belong to the next socket, unless final: then they fail at once too.
func (t *waitTable) failAll(final bool) {
	t.mu.Lock()
	if t.down == closedChan {
		t.mu.Unlock()
		return
	}
	// Callback waits of the lost socket are told here; channel waits see down close.
	var lost []Waiter
	for key, fw := range t.fns {
		if fw.down == t.down {
			lost = append(lost, fw.fn)
			delete(t.fns, key)
		}
	}
	close(t.down)
	if final {
		t.down = closedChan
	} else {
		t.down = make(chan struct{})
	}
	t.mu.Unlock()
	for _, fn := range lost {
		fn.WaitDone(nil, ErrConnClosed)
	}
}

// closedChan is the "down" channel of a connection closed for good.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// deliver offers a result to the wait registered under key. A wait whose buffer is full
// is closed and fails with ErrWaitOverflow; a result for an unknown key is dropped.
// lent says data is a view of the read buffer (decodeDataView): only a view wait gets
// it as it is, any other a copy.
func (t *waitTable) deliver(key string, data []byte, lent bool) {
	t.mu.Lock()
	if fw, ok := t.fns[key]; ok {
		delete(t.fns, key)
		t.mu.Unlock()
		if lent && !fw.view {
			data = append([]byte(nil), data...)
		}
		fw.fn.WaitDone(data, nil)
		return
	}
	w := t.m[key]
	defer t.mu.Unlock()
	if w == nil || w.err != nil {
		return
	}
	if lent {
		data = append([]byte(nil), data...)
	}
	select {
	case w.ch <- data:
	default:
		w.closeLocked(ErrWaitOverflow)
	}
}

// SetWait registers a wait under key with room for size results (at least 1) and
// returns the key. key "" makes a new unique key (UUID-shaped). Registering a key that
// is already waiting replaces it; the older waiter fails with ErrNoWait.
func (c *BanConn) SetWait(key string, size int) string {
	if key == "" {
		key = newWaitKey()
	}
	_ = c.waits.add(c.log, key, newChanWaiter(size), funcWait{})
	return key
}

// SetWaitFunc registers a wait under key (a new unique key when key is "") whose
// result is handed to fn rather than to WaitResult, and returns the key. fn runs exactly
// once: on the read loop with the first result for key, or with an error when the wait
// ends without one (ErrConnClosed as soon as the socket drops, on the goroutine that
// notices; ErrNoWait when CloseWaitChan removes the wait or SetWait replaces it). fn
// must not block, since the messages behind it wait for it. A caller with many requests
// in flight saves the goroutine each WaitResult would park. SetWaitFunc fails, without
// calling fn, on a closed connection or past the pending-waits limit.
func (c *BanConn) SetWaitFunc(key string, fn func(data []byte, err error)) (string, error) {
	if key == "" {
		key = newWaitKey()
	}
	if fn == nil {
		return key, errNilWaiter
	}
	return key, c.waits.add(c.log, key, nil, funcWait{fn: WaitFunc(fn)})
}

// SetWaitFuncView is SetWaitFunc for a callback that keeps nothing of the result: data
// and every slice of it are valid only until fn returns, since it may be a view of the
// connection's read buffer. fn copies what it keeps. That saves copying every result
// into memory of its own, which a callback that decodes it only throws away.
func (c *BanConn) SetWaitFuncView(key string, fn func(data []byte, err error)) (string, error) {
	if fn == nil {
		return key, errNilWaiter
	}
	return c.SetWaiterView(key, WaitFunc(fn))
}

// A Waiter receives the result of a callback wait (SetWaiterView), or why none came.
type Waiter interface {
	WaitDone(data []byte, err error)
}

// WaitFunc is a func as a Waiter.
type WaitFunc func(data []byte, err error)

// WaitDone calls f.
func (f WaitFunc) WaitDone(data []byte, err error) { f(data, err) }

// SetWaiterView is SetWaitFuncView for a value that receives the result itself, with
// the same rules (w.WaitDone runs exactly once, on a view of the data). A pointer
// given as a Waiter costs nothing, where a method value given as a func is an
// allocation: a caller with a struct per request (a dispatch call, an attempt) passes
// the struct.
func (c *BanConn) SetWaiterView(key string, w Waiter) (string, error) {
	if key == "" {
		key = newWaitKey()
	}
	if w == nil {
		return key, errNilWaiter
	}
	return key, c.waits.add(c.log, key, nil, funcWait{fn: w, view: true})
}

// add registers under key the channel wait w, or else the callback wait fw, replacing
// (and failing) an older wait. A callback wait fails on a table closed for good.
func (t *waitTable) add(log *slog.Logger, key string, w *waiter, fw funcWait) error {
	t.mu.Lock()
	if fw.fn != nil && t.down == closedChan {
		t.mu.Unlock()
		return ErrConnClosed
	}
	// A new key (the common case) needs no removal: the look for an older wait is
	// the one probe of each map before the insert.
	var old Waiter
	if t.hasLocked(key) {
		old = t.removeLocked(key, errWaitReplaced)
	} else if len(t.m)+len(t.fns) >= t.limit {
		t.mu.Unlock()
		t.log.log(log, slog.LevelWarn, "banio: too many pending waits, SetWait refused", "limit", t.limit)
		return fmt.Errorf("%w: %d pending waits", ErrLimit, t.limit)
	}
	if fw.fn != nil {
		fw.down = t.down
		t.fns[key] = fw
	} else {
		w.down = t.down
		t.m[key] = w
	}
	t.mu.Unlock()
	if old != nil {
		old.WaitDone(nil, errWaitReplaced)
	}
	return nil
}

// GetWaitChan returns the channel results for key arrive on.
func (c *BanConn) GetWaitChan(key string) (chan []byte, bool) {
	c.waits.mu.Lock()
	defer c.waits.mu.Unlock()
	if w := c.waits.m[key]; w != nil {
		w.reusable = false // the caller may hold the channel for as long as it likes
		return w.ch, true
	}
	return nil, false
}

// CloseWaitChan removes the wait for key; a WaitResult blocked on it fails with
// ErrNoWait.
// A SetWaitFunc callback still pending is called with ErrNoWait.
func (c *BanConn) CloseWaitChan(key string) {
	t := &c.waits
	t.mu.Lock()
	fn := t.removeLocked(key, errWaitClosed)
	t.mu.Unlock()
	if fn != nil {
		fn.WaitDone(nil, errWaitClosed)
	}
}

// SendWaitRes answers the peer's wait key with data (marshalled like IOMsg.Data).
func (c *BanConn) SendWaitRes(key string, data any) error {
	var buf [96]byte
	return c.sendData(resAction(&buf, key), data, false, writeQueued)
}

// resAction is the action "__res__"+key, built in buf (on the caller's stack: send
// does not keep it).
func resAction(buf *[96]byte, key string) string {
	a := append(append(buf[:0], resPrefix...), key...)
	return unsafe.String(unsafe.SliceData(a), len(a))
}

// SendWaitResNoBlock is SendWaitRes for callers that must not wait, such as a
// SetWaitFunc callback or a ListenInline handler: it never waits for room in a full
// write queue, so the read loop it runs on is not held up by a peer that stopped
// reading. A goroutine of its own waits instead; if the queue stays full for the whole
// write timeout, or more than the queue's bound waits that way, the peer is cut as a
// slow consumer. A ClientIO is never cut (it reconnects): there the frame fails with
// ErrLimit, or is dropped and logged. The frame is never written by the caller: it
// leaves with the read batch's other deliveries when the batch ends (WriteMsgNoBlock).
func (c *BanConn) SendWaitResNoBlock(key string, data any) error {
	var buf [96]byte
	return c.sendData(resAction(&buf, key), data, false, writeDefer|writeSpill)
}

// SendWaitResParts is SendWaitRes with data in two pieces, sent as their
// concatenation (see Parts). It saves the allocation that Parts (or a []byte) in an
// interface costs, which a peer answering one wait per request pays per request.
func (c *BanConn) SendWaitResParts(key string, head, body []byte) error {
	var buf [96]byte
	return c.send(resAction(&buf, key), head, body, true, false, writeQueued)
}

// SendWaitResPartsNoBlock is SendWaitResNoBlock with data in two pieces (see
// SendWaitResParts).
func (c *BanConn) SendWaitResPartsNoBlock(key string, head, body []byte) error {
	var buf [96]byte
	return c.send(resAction(&buf, key), head, body, true, false, writeDefer|writeSpill)
}

// WaitResult waits for the result registered under key and removes the wait. It ends
// with the result, or an error: ctx's error, ErrTimeout after timeout (0 = no timeout
// beyond ctx), ErrConnClosed as soon as the connection drops, ErrNoWait for an unknown
// key, ErrWaitOverflow when more results came than the wait could hold.
func (c *BanConn) WaitResult(ctx context.Context, key string, timeout time.Duration) ([]byte, error) {
	t := &c.waits
	t.mu.Lock()
	w := t.m[key]
	if w != nil {
		w.readers++
	}
	t.mu.Unlock()
	if w == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoWait, key)
	}
	defer t.release(key, w)
	var timeoutC <-chan time.Time
	if timeout > 0 {
		timer := getTimer(timeout)
		defer putTimer(timer)
		timeoutC = timer.C
	}
	select {
	case data := <-w.ch:
		return t.resultOf(key, w, data)
	case <-w.down:
		select { // a result that raced with the loss still counts
		case data := <-w.ch:
			return t.resultOf(key, w, data)
		default:
		}
		return nil, fmt.Errorf("%w: waiting for %q", ErrConnClosed, key)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeoutC:
		return nil, fmt.Errorf("%w: waiting for %q after %v", ErrTimeout, key, timeout)
	}
}

// resultOf is what WaitResult returns after receiving data from w.ch: a wait that was
// closed meanwhile (overflow, CloseWaitChan, replaced) reports why, even if a result
// was still buffered, so a caller never mistakes a partial answer for the whole one.
func (t *waitTable) resultOf(key string, w *waiter, data []byte) ([]byte, error) {
	t.mu.Lock()
	err := w.err
	t.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %q", err, key)
	}
	return data, nil
}

// timers pools WaitResult's timers (a Timer is two allocations). Since Go 1.23 a
// stopped timer delivers no stale value, so a pooled one can simply be Reset.
var timers sync.Pool

func getTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func putTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}

// release ends a WaitResult on w: the wait is removed, and w is reused if nothing can
// reach it any more. A result delivered after the one taken (a duplicate answer) or a
// close rules reuse out, as does another WaitResult still on w.
func (t *waitTable) release(key string, w *waiter) (reused bool) {
	t.mu.Lock()
	if t.m[key] == w {
		delete(t.m, key)
	}
	w.readers--
	reuse := w.reusable && w.readers == 0 && w.err == nil && len(w.ch) == 0
	t.mu.Unlock()
	if reuse {
		w.down = nil
		waiterPool.Put(w)
	}
	return reuse
}

// Wait keys: UUID-shaped strings made from a random per-process prefix and a counter.
// Unique like a UUID v4 for this process's lifetime, without a crypto/rand read and a
// UUID formatting per request.
var (
	waitKeyPrefix [10]byte
	waitKeySeq    atomic.Uint64
)

func init() { _, _ = rand.Read(waitKeyPrefix[:]) }

// NewKey returns a new unique key, UUID-shaped: the kind SetWait makes for key "".
// It is unique among the keys of this process (a random per-process prefix and a
// counter), which makes a cheap request or job ID.
func NewKey() string { return newWaitKey() }

func newWaitKey() string {
	var b [16]byte
	copy(b[:10], waitKeyPrefix[:])
	n := waitKeySeq.Add(1)
	for i := 15; i >= 10; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
