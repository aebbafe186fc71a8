package banio

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

func TestKVRemote(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, _ := startServer(t, WithLimits(0, 0, 3, 8, 16))
	c := dialClient(t, addr)

	get := func(key string) string {
		t.Helper()
		v, err := c.GetVal(key, 5)
		if err != nil {
			t.Fatalf("GetVal(%q): %v", key, err)
		}
		return v
	}
	if err := c.SetVal(&KeyValExpire{Key: "k", Val: "v"}); err != nil {
		t.Fatal(err)
	}
	if v := get("k"); v != "v" { // SetVal then GetVal on one connection: handled in order
		t.Fatalf("GetVal = %q", v)
	}
	if v := srv.GetVal("k"); v != "v" {
		t.Fatalf("server GetVal = %q", v)
	}
	srv.SetVal(&KeyValExpire{Key: "k", Val: "server"})
	if v := get("k"); v != "server" {
		t.Fatalf("GetVal after server SetVal = %q", v)
	}
	_ = c.SetVal(&KeyValExpire{Key: "k", Val: ""})
	if v := get("k"); v != "" {
		t.Fatalf("deleted key reads %q", v)
	}
	if v := get("never-set"); v != "" {
		t.Fatalf("missing key reads %q", v)
	}
	// Limits: key length 8, value length 16, 3 keys.
	_ = c.SetVal(&KeyValExpire{Key: "toolongkey", Val: "v"})
	_ = c.SetVal(&KeyValExpire{Key: "k1", Val: strings.Repeat("x", 17)})
	if get("toolongkey") != "" || get("k1") != "" {
		t.Fatal("over-long key or value stored")
	}
	for i := range 4 {
		_ = c.SetVal(&KeyValExpire{Key: "n" + strconv.Itoa(i), Val: "v"})
	}
	if get("n2") != "v" || get("n3") != "" {
		t.Fatalf("key count limit: n2=%q n3=%q, want the 4th key refused", get("n2"), get("n3"))
	}
	_ = c.SetVal(&KeyValExpire{Key: "n0", Val: "updated"}) // updating is fine at the limit
	if get("n0") != "updated" {
		t.Fatal("update at the key limit refused")
	}
}

// TestKVExpiry runs on synctest's fake clock: expiry, the stale-expiry bug banbot has,
// and the sweep.
func TestKVExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewBanServer("", "kv")
		srv.SetVal(&KeyValExpire{Key: "a", Val: "1", ExpireSecs: 2})
		srv.SetVal(&KeyValExpire{Key: "b", Val: "2", ExpireSecs: 2})
		srv.SetVal(&KeyValExpire{Key: "b", Val: "3"}) // re-set without expiry clears it
		srv.SetVal(&KeyValExpire{Key: "c", Val: "4", ExpireSecs: 1})
		time.Sleep(1999 * time.Millisecond)
		if srv.GetVal("a") != "1" {
			t.Fatal("expired early")
		}
		time.Sleep(time.Millisecond)
		if v := srv.GetVal("a"); v != "" {
			t.Fatalf("expired key reads %q", v)
		}
		if v := srv.GetVal("b"); v != "3" {
			t.Fatalf("re-set key inherited the old expiry: %q", v)
		}
		srv.kv.sweep(time.Now())
		srv.kv.mu.Lock()
		_, cLeft := srv.kv.m["c"]
		n := len(srv.kv.m)
		srv.kv.mu.Unlock()
		if cLeft || n != 1 {
			t.Fatalf("sweep left %d keys (c kept: %v)", n, cLeft)
		}
	})
}

// TestLockContention: goroutines on several clients increment a counter in the
// server's store (read, add, write) under the lock; none of the increments is lost.
func TestLockContention(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, _ := startServer(t)
	clients := []*ClientIO{dialClient(t, addr), dialClient(t, addr), dialClient(t, addr)}
	const workers, iters = 6, 8
	concurrently(t, workers, func(w int) error {
		c := clients[w%len(clients)]
		for range iters {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			token, err := c.Lock(ctx, "counter", 10*time.Second)
			cancel()
			if err != nil {
				return err
			}
			v, err := c.GetVal("counter", 5)
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(v)
			_ = c.SetVal(&KeyValExpire{Key: "counter", Val: strconv.Itoa(n + 1)})
			if err := c.Unlock("counter", token); err != nil {
				return err
			}
		}
		return nil
	})
	if got := srv.GetVal("counter"); got != strconv.Itoa(workers*iters) {
		t.Fatalf("counter = %s, want %d", got, workers*iters)
	}
}

func TestLockTTLAndOwnership(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t)
	a, b := dialClient(t, addr), dialClient(t, addr)
	ctx := context.Background()

	tokA, err := a.Lock(ctx, "k", 600*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock("k", "not-the-token"); !errors.Is(err, ErrNotLockOwner) {
		t.Fatalf("Unlock with a wrong token: %v, want ErrNotLockOwner", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = b.Lock(short, "k", time.Second)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock on a held lock: %v, want the context's deadline", err)
	}
	start := time.Now()
	tokB, err := b.Lock(ctx, "k", time.Minute) // gets in once A's TTL runs out
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("TTL expiry took too long")
	}
	if err := a.Unlock("k", tokA); !errors.Is(err, ErrNotLockOwner) {
		t.Fatalf("Unlock of an expired, re-taken lock: %v, want ErrNotLockOwner", err)
	}
	if err := b.Unlock("k", tokB); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock("k", tokB); !errors.Is(err, ErrNotLockOwner) {
		t.Fatalf("second Unlock: %v, want ErrNotLockOwner", err)
	}
	if _, err := a.Lock(ctx, "k", 0); err == nil {
		t.Fatal("Lock with ttl 0 accepted")
	}
}

// TestLockKeyLimit: locks are entries of the store and count against its key bound.
func TestLockKeyLimit(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t, WithLimits(0, 0, 2, 0, 0))
	c := dialClient(t, addr)
	for _, k := range []string{"a", "b"} {
		if _, err := c.Lock(context.Background(), k, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(ctx, "c", time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third lock in a 2-key store: %v, want refused until the deadline", err)
	}
}
