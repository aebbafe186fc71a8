package banio

import (
	"context"
	"errors"
	"testing"
	"time"
)

// newWaitOnlyConn is a BanConn with nothing but its wait table: enough for SetWait,
// GetWaitChan, CloseWaitChan and WaitResult, with results delivered by hand.
func newWaitOnlyConn() *BanConn {
	c := &BanConn{log: testLogger()}
	c.waits.init(16)
	return c
}

// TestWaiterReuse: a one-result waiter goes back to the pool only when nothing can reach
// it any more, so a reused waiter never hands a caller someone else's result.
func TestWaiterReuse(t *testing.T) {
	ctx := context.Background()

	// Each case registers a wait for size results, does what WaitResult does before
	// its release (readers++) and what may happen meanwhile, then releases it.
	cases := []struct {
		name   string
		size   int
		before func(t *testing.T, c *BanConn, key string, w *waiter)
		reused bool
	}{
		{"after its result", 1, func(t *testing.T, c *BanConn, key string, w *waiter) {
			c.waits.deliver(key, []byte("a"), false)
			<-w.ch
		}, true},
		{"not with a duplicate answer buffered", 1, func(t *testing.T, c *BanConn, key string, w *waiter) {
			c.waits.deliver(key, []byte("a"), false)
			<-w.ch
			c.waits.deliver(key, []byte("duplicate"), false) // after the take, before the release
		}, false},
		{"not once its channel was handed out", 1, func(t *testing.T, c *BanConn, key string, w *waiter) {
			if _, ok := c.GetWaitChan(key); !ok {
				t.Fatal("GetWaitChan found no wait")
			}
		}, false},
		{"not once closed", 1, func(t *testing.T, c *BanConn, key string, w *waiter) { c.CloseWaitChan(key) }, false},
		{"never with room for several results", 4, func(*testing.T, *BanConn, string, *waiter) {}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newWaitOnlyConn()
			key := c.SetWait("k", tc.size)
			w := c.waits.m[key]
			w.readers++
			tc.before(t, c, key, w)
			if got := c.waits.release(key, w); got != tc.reused {
				t.Fatalf("reused = %v, want %v", got, tc.reused)
			}
		})
	}

	t.Run("not while another WaitResult holds it", func(t *testing.T) {
		c := newWaitOnlyConn()
		key := c.SetWait("k", 1)
		w := c.waits.m[key]
		w.readers += 2
		if c.waits.release(key, w) {
			t.Fatal("reused while a second WaitResult still waits on it")
		}
		if !c.waits.release(key, w) {
			t.Fatal("not reused once the last WaitResult let go")
		}
	})

	t.Run("reused waiters carry only their own results", func(t *testing.T) {
		c := newWaitOnlyConn()
		for i := range 200 {
			key := c.SetWait("", 1)
			want := []byte{byte(i)}
			if i%3 == 0 {
				c.waits.deliver(key, want, false)
			} else {
				go c.waits.deliver(key, want, false)
			}
			got, err := c.WaitResult(ctx, key, time.Second)
			if err != nil || len(got) != 1 || got[0] != want[0] {
				t.Fatalf("round %d: %v %v, want %v", i, got, err, want)
			}
			if i%10 == 0 { // a wait that ends without its result leaves nothing behind
				key := c.SetWait("", 1)
				short, cancel := context.WithCancel(ctx)
				cancel()
				if _, err := c.WaitResult(short, key, 0); !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled wait: %v", err)
				}
			}
		}
	})
}
