package banio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Network locks. banbot's GetNetLock is check-then-set over two messages (two holders
// can both win) with no TTL. Here the server does compare-and-set in one step under
// its store's lock, and every lock has a TTL, so a crashed holder cannot keep it.

const (
	actionLock   = "__lock__"
	actionUnlock = "__unlock__"
	lockPrefix   = "lock_" // the store key of lock k is "lock_"+k, as in banbot
	lockOK       = "ok"
	lockBusy     = "busy"
)

type lockReq struct {
	Key   string `json:"key"`
	Token string `json:"token"`
	TTLMs int64  `json:"ttl_ms,omitempty"`
	Reply string `json:"reply"`
}

// tryLock takes key for token unless someone else holds it (or the store is full).
func (s *ServerIO) tryLock(key, token string, ttl time.Duration) error {
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	now := time.Now()
	e, ok := kv.m[lockPrefix+key]
	if ok && !e.expired(now.UnixNano()) && e.val != token {
		return errLockBusy
	}
	if err := s.roomLocked(lockPrefix+key, token); err != nil { // locks count against the store's bounds
		return err
	}
	kv.put(lockPrefix+key, kvEntry{val: token, expires: now.Add(ttl).UnixNano()})
	return nil
}

var errLockBusy = errors.New("banio: lock held by another token")

// unlock releases key if token holds it.
func (s *ServerIO) unlock(key, token string) bool {
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.m[lockPrefix+key]
	if !ok || e.expired(time.Now().UnixNano()) || e.val != token {
		return false
	}
	kv.del(lockPrefix + key)
	return true
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
	res := lockBusy
	err := s.checkKV(lockPrefix+r.Key, r.Token)
	if err == nil {
		err = s.tryLock(r.Key, r.Token, time.Duration(max(r.TTLMs, 1))*time.Millisecond)
	}
	switch {
	case err == nil:
		res = lockOK
	case !errors.Is(err, errLockBusy):
		c.badLog.log(c.log, slog.LevelWarn, "banio: lock refused (busy)", "key", logKey(r.Key), "err", err)
	}
	_ = c.SendWaitRes(r.Reply, res)
}

func (s *ServerIO) onUnlock(c *BanConn, msg *IOMsgRaw) {
	r, ok := s.parseLockReq(c, msg, "unlock request")
	if !ok {
		return
	}
	res := "not owner"
	if s.unlock(r.Key, r.Token) {
		res = lockOK
	}
	_ = c.SendWaitRes(r.Reply, res)
}

// Lock acquires the server-wide lock key for ttl, retrying with growing pauses until ctx
// ends. It returns the token Unlock needs. The lock expires by itself after ttl.
func (c *ClientIO) Lock(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("banio: Lock %q: ttl must be positive", key)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	token := hex.EncodeToString(raw[:])
	pause := time.Millisecond
	for {
		res, err := c.lockCall(ctx, actionLock, lockReq{Key: key, Token: token, TTLMs: ttl.Milliseconds()})
		if err != nil {
			return "", fmt.Errorf("banio: Lock %q: %w", key, err)
		}
		if res == lockOK {
			return token, nil
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return "", fmt.Errorf("banio: Lock %q: %w", key, ctx.Err())
		case <-timer.C:
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

// Unlock releases a lock taken by Lock. It fails with ErrNotLockOwner when token does
// not hold the lock (it expired, or was never taken with this token).
func (c *ClientIO) Unlock(key, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.writeTimeout)
	defer cancel()
	res, err := c.lockCall(ctx, actionUnlock, lockReq{Key: key, Token: token})
	if err != nil {
		return fmt.Errorf("banio: Unlock %q: %w", key, err)
	}
	if res != lockOK {
		return fmt.Errorf("banio: Unlock %q: %w", key, ErrNotLockOwner)
	}
	return nil
}

func (c *ClientIO) lockCall(ctx context.Context, action string, r lockReq) (string, error) {
	r.Reply = c.SetWait("", 1)
	if err := c.WriteMsg(&IOMsg{Action: action, Data: r}); err != nil {
		c.CloseWaitChan(r.Reply)
		return "", err
	}
	res, err := c.WaitResult(ctx, r.Reply, c.cfg.writeTimeout)
	return string(res), err
}
