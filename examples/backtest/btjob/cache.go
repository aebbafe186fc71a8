package btjob

import (
	"context"
	"sync"

	"github.com/banfleet/banfleet/examples/backtest/engine"
)

// barsCache keeps decoded bar series by blob hash, so that a worker decodes a data
// set once and not once per job. It holds at most max series and drops the oldest
// first; concurrent requests for a series not yet decoded share one decode; a
// failed decode is not kept, so the next job tries again.
type barsCache struct {
	max int

	// mu protects the following fields.
	mu      sync.Mutex
	entries map[string]*barsEntry
	order   []string // hashes, oldest first
}

// barsEntry is one data set; ready is closed once bars or err is set.
type barsEntry struct {
	ready chan struct{}
	bars  []engine.Bar
	err   error
}

func newBarsCache(max int) *barsCache {
	return &barsCache{max: max, entries: make(map[string]*barsEntry)}
}

// get returns the bars for hash, calling decode if no job has yet.
func (c *barsCache) get(ctx context.Context, hash string, decode func() ([]engine.Bar, error)) ([]engine.Bar, error) {
	c.mu.Lock()
	e, ok := c.entries[hash]
	if !ok {
		e = &barsEntry{ready: make(chan struct{})}
		c.entries[hash] = e
		c.order = append(c.order, hash)
		for len(c.order) > c.max {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	if !ok {
		e.bars, e.err = decode()
		if e.err != nil {
			c.forget(hash, e)
		}
		close(e.ready)
	}
	select {
	case <-e.ready:
		return e.bars, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// forget drops hash's entry if it is still e.
func (c *barsCache) forget(hash string, e *barsEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[hash] != e {
		return
	}
	delete(c.entries, hash)
	for i, h := range c.order {
		if h == hash {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
}

// len reports how many series are cached (for tests).
func (c *barsCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
