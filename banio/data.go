package banio

import "sync"

// dataStore is a connection's own key/value map (banbot's BanConn.Data). Subscriptions
// live in it too, as tag → true, exactly as in banbot, so Broadcast finds subscribers
// with GetData(action).
type dataStore struct {
	mu sync.RWMutex
	m  map[string]any
}

// SetData stores val under each tag on this connection (local only; nothing is sent).
func (c *BanConn) SetData(val any, tags ...string) {
	c.data.mu.Lock()
	defer c.data.mu.Unlock()
	if c.data.m == nil {
		c.data.m = make(map[string]any, len(tags))
	}
	for _, t := range tags {
		c.data.m[t] = val
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
	delete(c.data.m, key)
	return v, ok
}

// DeleteData removes the given keys.
func (c *BanConn) DeleteData(tags ...string) {
	c.data.mu.Lock()
	defer c.data.mu.Unlock()
	for _, t := range tags {
		delete(c.data.m, t)
	}
}

// subscribe marks tags as subscribed, refusing to grow past limit entries.
func (c *BanConn) subscribe(tags []string, limit int) (added int, refused int) {
	c.data.mu.Lock()
	defer c.data.mu.Unlock()
	if c.data.m == nil {
		c.data.m = make(map[string]any, len(tags))
	}
	for _, t := range tags {
		if _, ok := c.data.m[t]; !ok && len(c.data.m) >= limit {
			refused++
			continue
		}
		c.data.m[t] = true
		added++
	}
	return added, refused
}
