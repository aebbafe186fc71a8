package banio

import (
	"fmt"
	"sync"
)

// dataStore is a connection's own key/value map (banbot's BanConn.Data). Subscriptions
// live in it too, as tag → true, exactly as in banbot, so Broadcast finds subscribers
// with GetData(action).
type dataStore struct {
	mu sync.RWMutex
	m  map[string]any
	// keyBytes is the total length of the keys in m: what the peer's subscriptions are
	// budgeted by (WithSubscriptionBudget), like their count is by len(m).
	keyBytes int
}

// DataStats is what a connection's data map holds: its subscriptions and the keys
// stored with SetData.
type DataStats struct {
	Keys     int // entries; subscriptions stop at the WithLimits bound
	KeyBytes int // bytes of their keys; subscriptions stop at WithSubscriptionBudget's
}

// DataStats reports what the connection's data map holds.
func (c *BanConn) DataStats() DataStats {
	c.data.mu.RLock()
	defer c.data.mu.RUnlock()
	return DataStats{Keys: len(c.data.m), KeyBytes: c.data.keyBytes}
}

// SetData stores val under each tag on this connection (local only; nothing is sent).
func (c *BanConn) SetData(val any, tags ...string) {
	c.data.mu.Lock()
	defer c.data.mu.Unlock()
	if c.data.m == nil {
		c.data.m = make(map[string]any, len(tags))
	}
	for _, t := range tags {
		c.data.setLocked(t, val)
	}
}

// GetData returns the value stored under key on this connection.
func (c *BanConn) GetData(key string) (any, bool) {
	c.data.mu.RLock()
	defer c.data.mu.RUnlock()
	v, ok := c.data.m[key]
	return v, ok
}

// PopData returns and removes the value stored under key.
func (c *BanConn) PopData(key string) (any, bool) {
	c.data.mu.Lock()
	defer c.data.mu.Unlock()
	v, ok := c.data.m[key]
	c.data.deleteLocked(key)
	return v, ok
}

// DeleteData removes the given keys.
func (c *BanConn) DeleteData(tags ...string) {
	c.data.mu.Lock()
	defer c.data.mu.Unlock()
	for _, t := range tags {
		c.data.deleteLocked(t)
	}
}

// setLocked stores val under key, keeping keyBytes. d.mu must be held and d.m made.
func (d *dataStore) setLocked(key string, val any) {
	if _, ok := d.m[key]; !ok {
		d.keyBytes += len(key)
	}
	d.m[key] = val
}

// deleteLocked removes key, keeping keyBytes. d.mu must be held.
func (d *dataStore) deleteLocked(key string) {
	if _, ok := d.m[key]; ok {
		d.keyBytes -= len(key)
		delete(d.m, key)
	}
}

// subscribeRoom is how many bytes of new tags the connection may still subscribe to.
func (c *BanConn) subscribeRoom() int {
	c.data.mu.RLock()
	defer c.data.mu.RUnlock()
	return max(c.cfg.budgets.subBytes-c.data.keyBytes, 0)
}

// subscribe marks tags as subscribed. A new tag that is too long, or that would take
// the connection past its count or byte bound, is refused; refused counts them and why
// says what the first refusal was.
func (c *BanConn) subscribe(tags []string) (refused int, why error) {
	b := &c.cfg.budgets
	c.data.mu.Lock()
	defer c.data.mu.Unlock()
	if c.data.m == nil {
		c.data.m = make(map[string]any, len(tags))
	}
	for _, t := range tags {
		if _, ok := c.data.m[t]; !ok {
			var err error
			switch {
			case len(t) > b.tagLen:
				err = fmt.Errorf("%w: a %d-byte tag, tags are limited to %d bytes (WithSubscriptionBudget)", ErrLimit, len(t), b.tagLen)
			case len(c.data.m) >= c.cfg.maxSubs:
				err = fmt.Errorf("%w: the connection holds %d subscriptions, the limit (WithLimits)", ErrLimit, len(c.data.m))
			case c.data.keyBytes+len(t) > b.subBytes:
				err = fmt.Errorf("%w: the connection's tags hold %d of %d bytes, a %d-byte tag does not fit (WithSubscriptionBudget)", ErrLimit, c.data.keyBytes, b.subBytes, len(t))
			}
			if err != nil {
				refused++
				if why == nil {
					why = err
				}
				continue
			}
		}
		c.data.setLocked(t, true)
	}
	return refused, why
}
