package banio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Network locks. banbot's GetNetLock is check-then-set over two messages (two holders
// can both win) with no TTL. Here the server does compare-and-set in one step under
// its store's lock, and every lock has a TTL, so a crashed holder cannot keep it. A
// request may ask to wait: then the server queues it and answers when the lock is
// handed to it (lockqueue.go), so waiters are served in order of arrival.

const (
	actionLock   = "__lock__"
	actionUnlock = "__unlock__"
	lockPrefix   = "lock_" // the store key of lock k is "lock_"+k, as in banbot

	// Answers to __lock__ and __unlock__.
	lockOK        = "ok"
	lockBusy      = "busy"      // held by another token; the request was not queued
	lockNotOwner  = "not owner" // __unlock__ of a token that holds nothing
	lockRetry     = "retry"     // queued, but the wait ran out: ask again to keep the place
	lockWithdrawn = "withdrawn" // __unlock__ of a token that was queued, not holding
	lockRefused   = "refused: " // prefix: a waiting request the server will not queue, and why
)

// lockReq is the Data of __lock__ and __unlock__. A __lock__ without WaitMs (as older
// banfleet clients send it) gets an answer at once: ok or busy.
type lockReq struct {
	Key    string `json:"key"`
	Token  string `json:"token"`
	TTLMs  int64  `json:"ttl_ms,omitempty"`
	WaitMs int64  `json:"wait_ms,omitempty"` // queue for up to this long if the lock is held
	Reply  string `json:"reply"`
}

// parseLockReq decodes a __lock__ or __unlock__ payload, refusing unparsed one larger
// than the key, value and reply-key limits allow.
func (s *ServerIO) parseLockReq(c *BanConn, msg *IOMsgRaw, what string) (lockReq, bool) {
	var r lockReq
	if limit := s.cfg.lockPayloadMax(); len(msg.Data) > limit {
		c.badLog.log(c.log, slog.LevelWarn, "banio: "+what+" refused unparsed: larger than the key/value length limits allow",
			"bytes", len(msg.Data), "limit", limit)
		return r, false
	}
	if err := json.Unmarshal(msg.Data, &r); err != nil || r.Reply == "" {
		c.badLog.log(c.log, slog.LevelWarn, "banio: bad "+what, "err", err)
		return r, false
	}
	return r, true
}

func (s *ServerIO) onLock(c *BanConn, msg *IOMsgRaw) {
	r, ok := s.parseLockReq(c, msg, "lock request")
	if !ok {
		return
	}
	if r.Key == "" || r.Token == "" {
		c.badLog.log(c.log, slog.LevelWarn, "banio: bad lock request", "err", "no key or no token")
		return
	}
	res, grants, why := s.lock(c, &r, time.Now())
	if why != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: lock request refused", "key", logKey(r.Key), "err", why)
	}
	s.sendLockAnswers(grants)
	if res != "" { // "" = queued: the answer comes when the lock is handed over
		_ = c.SendWaitRes(r.Reply, res)
	}
}

func (s *ServerIO) onUnlock(c *BanConn, msg *IOMsgRaw) {
	r, ok := s.parseLockReq(c, msg, "unlock request")
	if !ok {
		return
	}
	res, grants := s.unlock(r.Key, r.Token, time.Now())
	s.sendLockAnswers(grants) // the next holder first: it has waited longest
	_ = c.SendWaitRes(r.Reply, res)
}

// lock takes r's lock for its token unless another token holds it (or the store is
// full); a held lock queues a waiting request. It returns the answer ("" when queued),
// the grants that settling an expired holder made, and why a request was refused.
func (s *ServerIO) lock(c *BanConn, r *lockReq, now time.Time) (res string, grants []lockAnswer, why error) {
	ttl := time.Duration(min(max(r.TTLMs, 1), maxLifetime.Milliseconds())) * time.Millisecond
	wait := min(time.Duration(max(r.WaitMs, 0))*time.Millisecond, s.cfg.budgets.lockWait)
	err := s.checkKV(lockPrefix+r.Key, r.Token)
	if err == nil && len(r.Reply) > s.cfg.kvKeyLen {
		err = fmt.Errorf("%w: a %d-byte reply key, limit %d", ErrLimit, len(r.Reply), s.cfg.kvKeyLen)
	}
	if err != nil {
		return refuseLock(wait, err), nil, err
	}
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	l := kv.locks.lines[r.Key]
	if l != nil {
		s.settleLocked(l, now, &grants) // an expired holder goes to the queue first
	}
	e, held := kv.m[lockPrefix+r.Key]
	if !held || e.expired(now.UnixNano()) || e.val == r.Token {
		if w := l.find(r.Token); w != nil { // a re-ask that finds the lock free
			kv.locks.removeLocked(w)
		}
		if err := s.roomLocked(lockPrefix+r.Key, r.Token); err != nil {
			return lockBusy, grants, err // the store is full: busy, as when it is held
		}
		e = kvEntry{val: r.Token, expires: expiryAt(now, ttl)}
		kv.put(lockPrefix+r.Key, e)
		if l != nil && !l.dead {
			s.armLocked(l, e, now)
		}
		return lockOK, grants, nil
	}
	if wait <= 0 {
		return lockBusy, grants, nil
	}
	if err := s.queueLocked(c, r, ttl, wait, now); err != nil {
		if errors.Is(err, ErrConnClosed) {
			return "", grants, nil
		}
		return refuseLock(wait, err), grants, err
	}
	s.armLocked(kv.locks.lines[r.Key], e, now)
	return "", grants, nil
}

// refuseLock is the answer to a refused request: busy to one that does not wait (what
// older clients expect), the reason to one that does.
func refuseLock(wait time.Duration, err error) string {
	if wait <= 0 {
		return lockBusy
	}
	return lockRefused + err.Error()
}

// unlock releases key if token holds it, and withdraws token's queued request if it has
// one; a lock released goes to the next in line. It returns the answer and the grants.
func (s *ServerIO) unlock(key, token string, now time.Time) (res string, grants []lockAnswer) {
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	res = lockNotOwner
	l := kv.locks.lines[key]
	if w := l.find(token); w != nil {
		kv.locks.removeLocked(w)
		res = lockWithdrawn
	}
	if e, ok := kv.m[lockPrefix+key]; ok && !e.expired(now.UnixNano()) && e.val == token {
		kv.del(lockPrefix + key)
		res = lockOK
	}
	if l != nil {
		s.settleLocked(l, now, &grants)
	}
	return res, grants
}

// Lock acquires the server-wide lock key for ttl, waiting until ctx ends. It returns
// the token Unlock needs. The lock expires by itself after ttl.
//
// The server queues the request and answers when the lock is handed to it, so waiters
// are served in order of arrival. One request waits at most WithMaxLockWait (and no
// longer than ctx allows); then Lock asks again and keeps its place. When Lock fails
// (ctx ended, the connection was lost) it withdraws the request, so that a grant that
// crossed its giving up is released at once instead of held until ttl by a token
// nobody has. A server that does not queue (an older banfleet) answers at once; Lock
// then retries with growing pauses up to 200 ms. A server that refuses to queue (too
// many waiters) makes Lock fail with an error wrapping ErrLimit.
func (c *ClientIO) Lock(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("banio: Lock %q: ttl must be positive", key)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	token := hex.EncodeToString(raw[:])
	asked := false
	fail := func(err error) (string, error) {
		if asked {
			c.withdrawLock(key, token)
		}
		return "", fmt.Errorf("banio: Lock %q: %w", key, err)
	}
	pause := time.Millisecond
	for {
		wait := c.cfg.budgets.lockWait
		if deadline, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(deadline))
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if wait <= 0 {
			return fail(context.DeadlineExceeded)
		}
		req := lockReq{Key: key, Token: token, TTLMs: ttl.Milliseconds(), WaitMs: max(wait.Milliseconds(), 1)}
		res, err := c.lockCall(ctx, actionLock, req, wait+c.cfg.writeTimeout)
		asked = true
		switch {
		case err != nil:
			return fail(err)
		case res == lockOK:
			return token, nil
		case res == lockRetry: // still queued: ask again at once, keeping the place
			continue
		case strings.HasPrefix(res, lockRefused):
			return "", fmt.Errorf("banio: Lock %q: %w: the server refused to queue the request: %s", key, ErrLimit, strings.TrimPrefix(res, lockRefused))
		}
		// busy: not queued (an older server, or the store is full): ask again later.
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fail(ctx.Err())
		case <-timer.C:
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

// withdrawLock tells the server that token no longer wants key: its queued request
// leaves the queue, and a grant that crossed the giving up is released. It does not
// wait for the answer (sent to a wait key nobody registered, which the read loop
// drops): the server handles it before anything this client sends later.
func (c *ClientIO) withdrawLock(key, token string) {
	_ = c.WriteMsgNoBlock(&IOMsg{Action: actionUnlock, Data: lockReq{Key: key, Token: token, Reply: newWaitKey()}})
}

// Unlock releases a lock taken by Lock. It fails with ErrNotLockOwner when token does
// not hold the lock (it expired, or was never taken with this token).
func (c *ClientIO) Unlock(key, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.writeTimeout)
	defer cancel()
	res, err := c.lockCall(ctx, actionUnlock, lockReq{Key: key, Token: token}, c.cfg.writeTimeout)
	if err != nil {
		return fmt.Errorf("banio: Unlock %q: %w", key, err)
	}
	if res != lockOK {
		return fmt.Errorf("banio: Unlock %q: %w", key, ErrNotLockOwner)
	}
	return nil
}

// lockCall sends one lock request and waits up to timeout for its answer.
func (c *ClientIO) lockCall(ctx context.Context, action string, r lockReq, timeout time.Duration) (string, error) {
	r.Reply = c.SetWait("", 1)
	if err := c.WriteMsg(&IOMsg{Action: action, Data: r}); err != nil {
		c.CloseWaitChan(r.Reply)
		return "", err
	}
	res, err := c.WaitResult(ctx, r.Reply, timeout)
	return string(res), err
}
