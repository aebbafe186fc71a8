package banio

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// lockRecorder records, through the server's test hook, the tokens of the Lock
// requests the server queues, in the order it queues them.
type lockRecorder struct {
	mu     sync.Mutex
	tokens []string
	events chan string // every newly queued token, buffered
	reasks chan string // every re-ask that kept its place, buffered
}

// recordLockQueue makes a served server whose queued Lock requests are recorded.
func recordLockQueue(t testing.TB, events int, opts ...Option) (*ServerIO, string, *lockRecorder) {
	t.Helper()
	rec := &lockRecorder{events: make(chan string, events), reasks: make(chan string, events)}
	srv := newServer(opts...)
	srv.kv.locks.queued = func(_, token string, reask bool) { // under the store's lock: never blocks
		if reask {
			select {
			case rec.reasks <- token:
			default:
			}
			return
		}
		rec.mu.Lock()
		rec.tokens = append(rec.tokens, token)
		rec.mu.Unlock()
		select {
		case rec.events <- token:
		default:
		}
	}
	return srv, serve(t, srv), rec
}

func (r *lockRecorder) queued() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// TestLockFIFO (finding 11): 50 goroutines on 5 clients contend for one key. Every
// Lock request the server queues is granted in the order it was queued, and none is
// left waiting (the polling clients starved some waiters for more than 10 s).
func TestLockFIFO(t *testing.T) {
	leakcheck.Check(t)
	const workers, iters = 50, 4
	srv, addr, rec := recordLockQueue(t, workers*iters)
	var clients []*ClientIO
	for range 5 {
		clients = append(clients, dialClient(t, addr))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// Hold the lock until all 50 have queued, so that the queue is long from the start.
	first, err := clients[0].Lock(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var granted []string // in grant order: appended by the holder, before it unlocks
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := clients[w%len(clients)]
			for range iters {
				token, err := c.Lock(ctx, "k", time.Minute)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				granted = append(granted, token)
				mu.Unlock()
				if err := c.Unlock("k", token); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for range workers {
		recv(t, rec.events, 10*time.Second, "a queued Lock request")
	}
	if err := clients[0].Unlock("k", first); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	queued := rec.queued()
	wasQueued := make(map[string]bool, len(queued))
	for _, tok := range queued {
		wasQueued[tok] = true
	}
	var grantedQueued []string
	for _, tok := range granted {
		if wasQueued[tok] {
			grantedQueued = append(grantedQueued, tok)
		}
	}
	if len(granted) != workers*iters || len(queued) < workers {
		t.Fatalf("%d grants, %d queued requests; want %d grants and at least %d queued", len(granted), len(queued), workers*iters, workers)
	}
	if len(grantedQueued) != len(queued) {
		t.Fatalf("%d queued requests, %d of them granted", len(queued), len(grantedQueued))
	}
	for i := range queued {
		if grantedQueued[i] != queued[i] {
			t.Fatalf("grant %d went to the request queued as %d", i, indexOf(queued, grantedQueued[i]))
		}
	}
	if st := srv.KVStats(); st.LockWaiters != 0 || st.Keys != 0 || st.Bytes != 0 {
		t.Fatalf("after the last Unlock KVStats = %+v, want empty", st)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// gatedConn holds what it reads until the gate opens: a client whose reads are
// delayed, for a grant that crosses the client's giving up.
type gatedConn struct {
	net.Conn
	gate *gate
}

func (g gatedConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	g.gate.wait()
	return n, err
}

type gate struct {
	mu   sync.Mutex
	open chan struct{} // nil while open
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open == nil {
		g.open = make(chan struct{})
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
}

func (g *gate) wait() {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

func (g *gate) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return gatedConn{nc, g}, nil
}

// TestLockCancelWithdraws (finding 11): a Lock whose context ends withdraws its
// request. Queued, it leaves the queue; granted while giving up (the grant was on its
// way), the lock is released at once rather than held until its TTL by a token that
// nobody has.
func TestLockCancelWithdraws(t *testing.T) {
	for _, lateGrant := range []bool{false, true} {
		name := "queued"
		if lateGrant {
			name = "late grant"
		}
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t)
			srv, addr, rec := recordLockQueue(t, 4)
			holder := dialClient(t, addr)
			var g gate
			t.Cleanup(g.release)
			waiter := dialClient(t, addr, WithDialer(g.dial))

			held, err := holder.Lock(t.Context(), "k", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			res := make(chan error, 1)
			go func() {
				_, err := waiter.Lock(ctx, "k", time.Minute)
				res <- err
			}()
			recv(t, rec.events, 10*time.Second, "the waiter's queued request")
			if lateGrant {
				g.close()
				// The grant is sent before the holder's answer, and held at the gate.
				if err := holder.Unlock("k", held); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			if err := recv(t, res, 10*time.Second, "Lock's return"); !errors.Is(err, context.Canceled) {
				t.Fatalf("Lock = %v, want context.Canceled", err)
			}
			g.release()
			// The server handles the waiter's messages in order: after this answer it
			// has handled the withdrawal.
			if v, err := waiter.GetVal(lockPrefix+"k", 5); err != nil || (lateGrant && v != "") {
				t.Fatalf("lock after the late grant is withdrawn: %q, %v; want it free", v, err)
			}
			if st := srv.KVStats(); st.LockWaiters != 0 {
				t.Fatalf("KVStats = %+v after the withdrawal, want no waiters", st)
			}
			if !lateGrant {
				if err := holder.Unlock("k", held); err != nil {
					t.Fatal(err)
				}
				if v := srv.GetVal(lockPrefix + "k"); v != "" {
					t.Fatalf("lock handed to the withdrawn request: %q", v)
				}
			}
		})
	}
}

// TestLockOldRequestAnsweredAtOnce: a __lock__ without wait_ms (an older client) is
// answered at once, busy while the lock is held, as before.
func TestLockOldRequestAnsweredAtOnce(t *testing.T) {
	leakcheck.Check(t)
	_, addr, _ := startServer(t)
	c := dialClient(t, addr)
	if _, err := c.Lock(t.Context(), "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	p := dialRaw(t, addr, nil)
	p.send(actionLock, mustJSON(t, lockReq{Key: "k", Token: "old", TTLMs: 1000, Reply: "r1"}), false)
	if m := p.expect(resPrefix + "r1"); string(m.Data) != lockBusy {
		t.Fatalf("old-style request answered %q, want %q", m.Data, lockBusy)
	}
}

// TestLockQueueBounds: past the per-key bound a waiting request fails at once with an
// error wrapping ErrLimit that says why; the requests of a closed connection leave the
// queue.
func TestLockQueueBounds(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, rec := recordLockQueue(t, 4, WithLockWaiters(2, 0))
	holder := dialClient(t, addr)
	held, err := holder.Lock(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	waiter := dialClient(t, addr)
	locks := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := waiter.Lock(context.Background(), "k", time.Minute)
			locks <- err
		}()
		recv(t, rec.events, 10*time.Second, "a queued request")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = holder.Lock(ctx, "k", time.Minute)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "WithLockWaiters") {
		t.Fatalf("third waiter: %v, want ErrLimit naming WithLockWaiters", err)
	}
	if st := srv.KVStats(); st.LockWaiters != 2 {
		t.Fatalf("KVStats = %+v, want 2 waiters", st)
	}
	_ = waiter.Close()
	for range 2 {
		if err := recv(t, locks, 10*time.Second, "Lock's return"); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("Lock on a closed client = %v, want ErrConnClosed", err)
		}
	}
	waitUntil(t, 10*time.Second, "the closed connection's waiters dropped", func() bool { return srv.KVStats().LockWaiters == 0 })
	if err := holder.Unlock("k", held); err != nil {
		t.Fatal(err)
	}
	if st := srv.KVStats(); st.Keys != 0 || st.Bytes != 0 {
		t.Fatalf("KVStats = %+v after the last Unlock, want empty", st)
	}
}

// TestLockRetryKeepsPlace: requests whose wait on the server runs out many times over
// ask again and keep their places, and the lock goes to them in order.
func TestLockRetryKeepsPlace(t *testing.T) {
	leakcheck.Check(t)
	_, addr, rec := recordLockQueue(t, 4, WithMaxLockWait(20*time.Millisecond))
	holder := dialClient(t, addr)
	held, err := holder.Lock(t.Context(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		name  string
		token string
	}
	order := make(chan result, 2)
	var clients [2]*ClientIO
	var tokens [2]string
	for i, name := range []string{"first", "second"} {
		clients[i] = dialClient(t, addr) // asks for the default wait, gets the server's 20 ms
		go func() {
			tok, err := clients[i].Lock(t.Context(), "k", time.Minute)
			if err != nil {
				t.Error(err)
			}
			order <- result{name, tok}
			if err == nil {
				_ = clients[i].Unlock("k", tok)
			}
		}()
		tokens[i] = recv(t, rec.events, 10*time.Second, "a queued request")
	}
	// Both wait out several waits and ask again.
	reasked := map[string]int{}
	for reasked[tokens[0]] < 3 || reasked[tokens[1]] < 3 {
		reasked[recv(t, rec.reasks, 10*time.Second, "a re-ask")]++
	}
	if err := holder.Unlock("k", held); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, order, 10*time.Second, "a grant"); r.name != "first" {
		t.Fatalf("the lock went to the %s request first", r.name)
	}
	recv(t, order, 10*time.Second, "the second grant")
}

// TestLockHandoverOnDelete: a lock deleted as a plain value (banbot's DelNetLock
// writes "" to lock_<key>) goes to the first queued request at once, not when that
// request's wait runs out.
func TestLockHandoverOnDelete(t *testing.T) {
	leakcheck.Check(t)
	long := WithMaxLockWait(time.Hour)
	srv, addr, rec := recordLockQueue(t, 2, long)
	srv.SetVal(&KeyValExpire{Key: lockPrefix + "k", Val: "banbot-token"}) // GetNetLock: no expiry
	c := dialClient(t, addr, long)
	got := make(chan error, 1)
	go func() {
		_, err := c.Lock(t.Context(), "k", time.Minute)
		got <- err
	}()
	recv(t, rec.events, 10*time.Second, "the queued request")
	srv.SetVal(&KeyValExpire{Key: lockPrefix + "k", Val: ""})
	if err := recv(t, got, 10*time.Second, "the grant"); err != nil {
		t.Fatal(err)
	}
}

// TestLockWaitersPerConn: one connection cannot queue more Lock requests than its own
// bound, whatever the server's total allows; another connection still can.
func TestLockWaitersPerConn(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, rec := recordLockQueue(t, 8, WithLockWaitersPerConn(2))
	holder := dialClient(t, addr)
	for _, k := range []string{"k0", "k1", "k2"} {
		if _, err := holder.Lock(t.Context(), k, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	greedy := dialClient(t, addr)
	locks := make(chan error, 3)
	for _, k := range []string{"k0", "k1"} {
		go func() {
			_, err := greedy.Lock(context.Background(), k, time.Minute)
			locks <- err
		}()
		recv(t, rec.events, 10*time.Second, "a queued request")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := greedy.Lock(ctx, "k2", time.Minute); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "WithLockWaitersPerConn") {
		t.Fatalf("third request of one connection: %v, want ErrLimit naming WithLockWaitersPerConn", err)
	}
	other := dialClient(t, addr)
	go func() {
		_, err := other.Lock(context.Background(), "k2", time.Minute)
		locks <- err
	}()
	recv(t, rec.events, 10*time.Second, "another connection's request queued")
	if st := srv.KVStats(); st.LockWaiters != 3 {
		t.Fatalf("KVStats = %+v, want 3 waiters", st)
	}
	_ = greedy.Close()
	_ = other.Close()
	for range 3 {
		if err := recv(t, locks, 10*time.Second, "Lock's return"); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("Lock on a closed client = %v, want ErrConnClosed", err)
		}
	}
}
