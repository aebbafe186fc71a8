package banio

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// The server's key/value store (docs/protocol.md), shared by all connections. Unlike
// banbot's it is safe for concurrent use, bounded, and handles expiry correctly: a set
// without expiry clears an older expiry, and expired keys are swept.

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
	mu sync.Mutex
	m  map[string]kvEntry
}

// expired reports whether e has expired at now.
func (e kvEntry) expired(now int64) bool { return e.expires != 0 && now >= e.expires }

func (s *ServerIO) checkKV(key, val string) error {
	if len(key) > s.cfg.kvKeyLen || len(val) > s.cfg.kvValueLen {
		return fmt.Errorf("%w: key/value too long (key %d bytes, value %d bytes)", ErrLimit, len(key), len(val))
	}
	return nil
}

// SetVal stores a value (Val "" deletes it). A key or value above the configured
// limits, or a new key beyond the maximum count, is refused and logged.
func (s *ServerIO) SetVal(args *KeyValExpire) {
	if err := s.setVal(args); err != nil {
		s.log.Warn("banio: SetVal refused", "key", args.Key, "err", err)
	}
}

func (s *ServerIO) setVal(args *KeyValExpire) error {
	if err := s.checkKV(args.Key, args.Val); err != nil {
		return err
	}
	kv := &s.kv
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if args.Val == "" {
		delete(kv.m, args.Key)
		return nil
	}
	if _, ok := kv.m[args.Key]; !ok && len(kv.m) >= s.cfg.kvKeys {
		return fmt.Errorf("%w: %d keys", ErrLimit, len(kv.m))
	}
	e := kvEntry{val: args.Val}
	if args.ExpireSecs > 0 {
		e.expires = time.Now().Add(time.Duration(args.ExpireSecs) * time.Second).UnixNano()
	}
	kv.m[args.Key] = e
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
		delete(kv.m, key)
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
			delete(kv.m, k)
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
// server never answers): both work here.
func (s *ServerIO) onGetVal(c *BanConn, msg *IOMsgRaw) {
	key := string(msg.Data)
	var quoted string
	if json.Unmarshal(msg.Data, &quoted) == nil {
		key = quoted
	}
	if err := c.SendWaitRes(key, s.GetVal(key)); err != nil {
		c.log.Debug("banio: onGetVal reply failed", "err", err)
	}
}

// onSetVal stores {"Key","Val","expireSecs"}; fire-and-forget as in banbot.
func (s *ServerIO) onSetVal(c *BanConn, msg *IOMsgRaw) {
	var args KeyValExpire
	if err := json.Unmarshal(msg.Data, &args); err != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: bad onSetVal payload", "err", err)
		return
	}
	if err := s.setVal(&args); err != nil {
		c.badLog.log(c.log, slog.LevelWarn, "banio: onSetVal refused", "key", args.Key, "err", err)
	}
}
