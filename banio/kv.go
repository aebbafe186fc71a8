package banio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The server's key/value store (docs/protocol.md), shared by all connections. Unlike
// banbot's it is safe for concurrent use, bounded in keys and in bytes, and handles
// expiry correctly: a set without expiry clears an older expiry, and expired keys are
// swept.

// KeyValExpire is a key/value pair with an optional lifetime. Val "" deletes the key.
// The JSON names are banbot's: "Key", "Val", "expireSecs".
type KeyValExpire struct {
	Key        string // the key
	Val        string // the value; "" deletes the key
	ExpireSecs int    `json:"expireSecs"` // lifetime in seconds; 0 = no expiry
}

type kvEntry struct {
	val     string
	expires int64 // unix nanoseconds; 0 = never
}

type kvStore struct {
	mu    sync.Mutex
	m     map[string]kvEntry
	bytes int        // bytes of the keys and values in m
	locks lockQueues // Lock requests waiting for a lock held by another token
}

// KVStats is a snapshot of what a server's key/value store holds.
type KVStats struct {
	Keys int // entries, locks included; expired ones until read or swept
	// Bytes is what the store's budget (WithMaxKVBytes) counts: the bytes of keys and
	// values, plus the key, token and reply key of every queued Lock request.
	Bytes       int
	LockWaiters int // Lock requests queued for a lock another token holds
}

// KVStats reports what the server's key/value store holds.
func (s *ServerIO) KVStats() KVStats {
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return KVStats{Keys: len(kv.m), Bytes: kv.held(), LockWaiters: kv.locks.n}
}

// maxLifetime caps key and lock lifetimes: now plus more than this would overflow the
// int64 nanoseconds expiries are kept in (and expire at once, or at a wrapped time).
const maxLifetime = 100 * 365 * 24 * time.Hour

// secondsDuration is n seconds, saturating instead of overflowing.
func secondsDuration(n int) time.Duration {
	if n > int(maxLifetime/time.Second) {
		return maxLifetime
	}
	return time.Duration(n) * time.Second
}

// expiryAt is when something living d from now expires, d capped at maxLifetime.
func expiryAt(now time.Time, d time.Duration) int64 {
	return now.Add(min(d, maxLifetime)).UnixNano()
}

// expired reports whether e has expired at now.
func (e kvEntry) expired(now int64) bool { return e.expires != 0 && now >= e.expires }

// held is what the byte budget counts. kv.mu must be held.
func (kv *kvStore) held() int { return kv.bytes + kv.locks.bytes }

// put stores e under key, keeping the byte count. kv.mu must be held.
func (kv *kvStore) put(key string, e kvEntry) {
	if old, ok := kv.m[key]; ok {
		kv.bytes -= len(key) + len(old.val)
	}
	kv.m[key] = e
	kv.bytes += len(key) + len(e.val)
}

// del removes key, keeping the byte count. kv.mu must be held.
func (kv *kvStore) del(key string) {
	if old, ok := kv.m[key]; ok {
		kv.bytes -= len(key) + len(old.val)
		delete(kv.m, key)
	}
}

func (s *ServerIO) checkKV(key, val string) error {
	if len(key) > s.cfg.kvKeyLen || len(val) > s.cfg.kvValueLen {
		return fmt.Errorf("%w: key/value too long (key %d bytes, value %d bytes; limits %d and %d, WithLimits)",
			ErrLimit, len(key), len(val), s.cfg.kvKeyLen, s.cfg.kvValueLen)
	}
	return nil
}

// roomLocked says whether val may be stored under key without taking the store past
// its key count or its byte budget. kv.mu must be held.
func (s *ServerIO) roomLocked(key, val string) error {
	kv := &s.kv
	old, had := kv.m[key]
	if !had && len(kv.m) >= s.cfg.kvKeys {
		return fmt.Errorf("%w: the store holds %d keys, its limit (WithLimits); delete keys or raise the limit", ErrLimit, len(kv.m))
	}
	grow := len(val) - len(old.val)
	if !had {
		grow += len(key)
	}
	if held := kv.held(); grow > 0 && held+grow > s.cfg.budgets.kvBytes {
		return fmt.Errorf("%w: the store holds %d of its %d bytes, %d more do not fit (WithMaxKVBytes); delete keys or raise the budget",
			ErrLimit, held, s.cfg.budgets.kvBytes, grow)
	}
	return nil
}

// SetVal stores a value (Val "" deletes it). A key or value above the configured
// limits, a new key beyond the maximum count, or a value past the store's byte budget
// is refused and logged.
func (s *ServerIO) SetVal(args *KeyValExpire) {
	if err := s.setVal(args); err != nil {
		s.log.Warn("banio: SetVal refused", "key", logKey(args.Key), "err", err)
	}
}

func (s *ServerIO) setVal(args *KeyValExpire) error {
	if err := s.checkKV(args.Key, args.Val); err != nil {
		return err
	}
	var grants []lockAnswer
	defer func() { s.sendLockAnswers(grants) }() // after kv.mu is released
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if args.Val == "" {
		kv.del(args.Key)
	} else {
		if err := s.roomLocked(args.Key, args.Val); err != nil {
			return err
		}
		e := kvEntry{val: args.Val}
		if args.ExpireSecs > 0 {
			e.expires = expiryAt(time.Now(), secondsDuration(args.ExpireSecs))
		}
		kv.put(args.Key, e)
	}
	// A lock set or deleted as a plain value (as banbot's GetNetLock and DelNetLock
	// do): its queue must see the change.
	if lockKey, ok := strings.CutPrefix(args.Key, lockPrefix); ok && len(kv.locks.lines) > 0 {
		if l := kv.locks.lines[lockKey]; l != nil {
			s.settleLocked(l, time.Now(), &grants)
		}
	}
	return nil
}

// GetVal returns the value of key, or "" when it is missing or expired.
func (s *ServerIO) GetVal(key string) string {
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.m[key]
	if !ok {
		return ""
	}
	if e.expired(time.Now().UnixNano()) {
		kv.del(key) // an expired lock with waiters is handed over by its queue's timer
		return ""
	}
	return e.val
}

// sweep drops expired keys.
func (kv *kvStore) sweep(now time.Time) {
	n := now.UnixNano()
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for k, e := range kv.m {
		if e.expired(n) {
			kv.del(k)
		}
	}
}

// Built-in server actions for banbot clients.
const (
	actionGetVal = "onGetVal"
	actionSetVal = "onSetVal"
)

// onGetVal answers `__res__<key>` with the raw value. The key may come JSON-quoted (as
// banbot's server expects) or raw (as banbot's own client sends it, which banbot's
// server never answers): both work here. A key longer than any stored key can be,
// even JSON-quoted, is dropped unanswered: the answer would carry it back as its action.
func (s *ServerIO) onGetVal(c *BanConn, msg *IOMsgRaw) {
	if limit := jsonStringMax(s.cfg.kvKeyLen); len(msg.Data) > limit {
		c.badLog.log(c.log, slog.LevelWarn, "banio: onGetVal refused unparsed: key longer than the key length limit allows",
			"bytes", len(msg.Data), "limit", limit)
		return
	}
	key := string(msg.Data)
	var quoted string
	// Only a JSON string is a quoted key: Unmarshal also accepts null (into ""),
	// and a raw key may well be the word null.
	if t := bytes.TrimSpace(msg.Data); len(t) > 0 && t[0] == '"' && json.Unmarshal(t, &quoted) == nil {
		key = quoted
	}
	if err := c.SendWaitRes(key, s.GetVal(key)); err != nil {
		c.log.Debug("banio: onGetVal reply failed", "err", err)
	}
}

// onSetVal stores {"Key","Val","expireSecs"}; fire-and-forget as in banbot. A payload
// longer than the key and value limits allow, even JSON-escaped, is refused unparsed.
func (s *ServerIO) onSetVal(c *BanConn, msg *IOMsgRaw) {
	if limit := s.cfg.setValPayloadMax(); len(msg.Data) > limit {
		c.badLog.log(c.log, slog.LevelWarn, "banio: onSetVal refused unparsed: larger than the key/value length limits allow",
			"bytes", len(msg.Data), "limit", limit, "hint", "raise WithLimits' key/value lengths")
		return
	}
	var args KeyValExpire
	if err := json.Unmarshal(msg.Data, &args); err != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: bad onSetVal payload", "err", err)
		return
	}
	if err := s.setVal(&args); err != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: onSetVal refused", "key", logKey(args.Key), "err", err)
	}
}

// logKey shortens a key for a log line: a refused key may be megabytes long.
func logKey(key string) string {
	const n = 64
	if len(key) <= n {
		return key
	}
	return fmt.Sprintf("%s… (%d bytes)", key[:n], len(key))
}
