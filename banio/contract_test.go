package banio

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// pipeConn makes a BanConn over one end of a net.Pipe, for tests that need no peer.
func pipeConn(t testing.TB, opts ...Option) *BanConn {
	t.Helper()
	cfg, err := buildConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	t.Cleanup(func() { _ = b.Close() })
	c := newConn(&cfg, a)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestListenExactThenLongestPrefix(t *testing.T) {
	leakcheck.Check(t)
	c := pipeConn(t)
	var got string
	h := func(name string) ConnCB { return func(*IOMsgRaw) { got = name } }
	c.Listen("job", h("job"))
	c.Listen("job:", h("job:"))
	c.Listen("job:x", h("job:x"))
	c.Listen("job:xyz", h("job:xyz"))
	cases := map[string]string{
		"job:x":    "job:x",   // exact
		"job:xy":   "job:x",   // longest prefix
		"job:xyz":  "job:xyz", // exact beats the shorter prefixes
		"job:xyzw": "job:xyz",
		"job:y":    "job:",
		"jobs":     "job",
		"other":    "",
		"ping":     "builtin", // built-ins stay registered
	}
	check := func() {
		t.Helper()
		for action, want := range cases {
			got = ""
			cb := c.handlers.Load().lookup(action)
			if cb == nil {
				if want != "" {
					t.Errorf("%q: no handler, want %q", action, want)
				}
				continue
			}
			if want == "builtin" {
				continue
			}
			cb(&IOMsgRaw{Action: action})
			if got != want {
				t.Errorf("%q handled by %q, want %q", action, got, want)
			}
		}
	}
	check()
	c.Listen("", h("all"))
	cases["other"] = "all"
	check()
	// Removal: the next longest prefix takes over.
	c.Listen("job:x", nil)
	c.Listen("", nil)
	cases["job:x"], cases["job:xy"], cases["other"] = "job:", "job:", ""
	check()
}

// TestListenEndToEnd routes real messages, registering handlers while messages flow.
func TestListenEndToEnd(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	got := make(chan string, 16)
	sc.Listen("job:", func(m *IOMsgRaw) { got <- "prefix " + m.Action })
	sc.Listen("job:exact", func(m *IOMsgRaw) { got <- "exact " + m.Action })

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // Listen is safe while messages are routed
		defer wg.Done()
		for i := range 200 {
			sc.Listen("noise"+strconv.Itoa(i), func(*IOMsgRaw) {})
		}
	}()
	for _, a := range []string{"job:exact", "job:other", "job:exactly"} {
		if err := c.WriteMsg(&IOMsg{Action: a}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for _, want := range []string{"exact job:exact", "prefix job:other", "exact job:exactly"} {
		if g := recv(t, got, 5*time.Second, want); g != want {
			t.Errorf("got %q, want %q", g, want)
		}
	}
}

func TestConnData(t *testing.T) {
	leakcheck.Check(t)
	c := pipeConn(t)
	c.SetData(42, "a", "b")
	if v, ok := c.GetData("a"); !ok || v != 42 {
		t.Fatalf("GetData(a) = %v %v", v, ok)
	}
	if v, ok := c.PopData("b"); !ok || v != 42 {
		t.Fatalf("PopData(b) = %v %v", v, ok)
	}
	if _, ok := c.GetData("b"); ok {
		t.Fatal("PopData did not remove")
	}
	if _, ok := c.PopData("b"); ok {
		t.Fatal("PopData of a missing key reported ok")
	}
	c.DeleteData("a", "missing")
	if _, ok := c.GetData("a"); ok {
		t.Fatal("DeleteData did not remove")
	}
}

var uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestWaitKeys(t *testing.T) {
	leakcheck.Check(t)
	c := pipeConn(t)
	seen := make(map[string]bool)
	for range 1000 {
		k := c.SetWait("", 1)
		if !uuidShape.MatchString(k) {
			t.Fatalf("key %q is not UUID-shaped", k)
		}
		if seen[k] {
			t.Fatalf("key %q repeated", k)
		}
		seen[k] = true
		c.CloseWaitChan(k)
	}
	if k := c.SetWait("mine", 2); k != "mine" {
		t.Fatalf("SetWait(mine) = %q", k)
	}
	if ch, ok := c.GetWaitChan("mine"); !ok || cap(ch) != 2 {
		t.Fatalf("GetWaitChan = %v %v", ch, ok)
	}
	c.CloseWaitChan("mine")
	if _, ok := c.GetWaitChan("mine"); ok {
		t.Fatal("CloseWaitChan left the wait")
	}
	if _, err := c.WaitResult(context.Background(), "never", time.Second); !errors.Is(err, ErrNoWait) {
		t.Fatalf("unknown key: %v, want ErrNoWait", err)
	}
}

func TestWaitLimit(t *testing.T) {
	leakcheck.Check(t)
	c := pipeConn(t, WithLimits(0, 3, 0, 0, 0))
	for i := range 5 {
		c.SetWait(strconv.Itoa(i), 1)
	}
	c.waits.mu.Lock()
	n := len(c.waits.m)
	c.waits.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d waits registered, limit 3", n)
	}
	if _, err := c.WaitResult(context.Background(), "4", time.Second); !errors.Is(err, ErrNoWait) {
		t.Fatalf("refused wait: %v, want ErrNoWait", err)
	}
}

// TestWaitOutcomes covers how WaitResult ends: result, overflow, ctx, timeout, and the
// connection closing (at once, not after the timeout).
func TestWaitOutcomes(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	// "twice k" answers k twice, then answers "barrier".
	sc.Listen("twice", func(m *IOMsgRaw) {
		_ = sc.SendWaitRes(string(m.Data), "1")
		_ = sc.SendWaitRes(string(m.Data), "2")
		_ = sc.SendWaitRes("barrier", "b")
	})

	t.Run("result via GetWaitChan", func(t *testing.T) {
		k := c.SetWait("", 1)
		ch, _ := c.GetWaitChan(k)
		if err := c.WriteMsg(&IOMsg{Action: "echo", Data: k + "|hi"}); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, ch, 5*time.Second, "result"); string(got) != "hi" {
			t.Fatalf("got %q", got)
		}
		c.CloseWaitChan(k)
	})
	t.Run("overflow", func(t *testing.T) {
		k := c.SetWait("", 1)
		c.SetWait("barrier", 1)
		if err := c.WriteMsg(&IOMsg{Action: "twice", Data: k}); err != nil {
			t.Fatal(err)
		}
		// The read loop handles results in order: once the barrier is in, both
		// results for k have been offered to its one-slot buffer.
		if _, err := c.WaitResult(context.Background(), "barrier", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if got, err := c.WaitResult(context.Background(), k, 5*time.Second); !errors.Is(err, ErrWaitOverflow) {
			t.Fatalf("overflowed wait returned %q, %v; want ErrWaitOverflow", got, err)
		}
	})
	t.Run("ctx", func(t *testing.T) {
		k := c.SetWait("", 1)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.WaitResult(ctx, k, time.Minute); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if _, ok := c.GetWaitChan(k); ok {
			t.Fatal("wait left behind after WaitResult")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		k := c.SetWait("", 1)
		start := time.Now()
		if _, err := c.WaitResult(context.Background(), k, 30*time.Millisecond); !errors.Is(err, ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Fatalf("timed out after %v", d)
		}
	})
	t.Run("CloseWaitChan wakes the waiter", func(t *testing.T) {
		k := c.SetWait("", 1)
		errc := make(chan error, 1)
		go func() { _, err := c.WaitResult(context.Background(), k, time.Minute); errc <- err }()
		c.CloseWaitChan(k)
		if err := recv(t, errc, 5*time.Second, "WaitResult"); !errors.Is(err, ErrNoWait) {
			t.Fatalf("WaitResult on a closed wait: %v, want ErrNoWait", err)
		}
	})
}

// TestWaitFailsAtOnceOnClose: pending waits end with ErrConnClosed as soon as the
// connection goes, from either side, long before their timeout.
func TestWaitFailsAtOnceOnClose(t *testing.T) {
	leakcheck.Check(t)
	for _, who := range []string{"server closes", "client closes", "server-side wait"} {
		t.Run(who, func(t *testing.T) {
			_, addr, conns := startServer(t)
			c := dialClient(t, addr, constantBackoff(time.Hour))
			sc := recv(t, conns, 5*time.Second, "server conn")
			var waiter IBanConn = c
			if who == "server-side wait" {
				waiter = sc
			}
			k := waiter.SetWait("", 1)
			errc := make(chan error, 1)
			start := time.Now()
			go func() { _, err := waiter.WaitResult(context.Background(), k, time.Minute); errc <- err }()
			mustRoundTrip(t, c, "the wait is registered and the link works")
			switch who {
			case "client closes":
				_ = c.Close()
			default:
				_ = sc.Close()
			}
			err := recv(t, errc, 5*time.Second, "WaitResult to fail")
			if !errors.Is(err, ErrConnClosed) {
				t.Fatalf("got %v, want ErrConnClosed", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	t.Run("after close", func(t *testing.T) {
		c := pipeConn(t)
		_ = c.Close()
		k := c.SetWait("", 1)
		if _, err := c.WaitResult(context.Background(), k, time.Minute); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("got %v, want ErrConnClosed", err)
		}
		if err := c.WriteMsg(&IOMsg{Action: "x"}); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("WriteMsg after Close: %v", err)
		}
	})
}

// subscriber is a client that records the sequence numbers of the broadcasts it gets.
type subscriber struct {
	c    *ClientIO
	mu   sync.Mutex
	seqs []int
	got  chan struct{} // a token per message
}

func newSubscriber(t *testing.T, addr string, topics ...string) *subscriber {
	t.Helper()
	s := &subscriber{c: dialClient(t, addr), got: make(chan struct{}, 1<<16)}
	for _, topic := range topics {
		s.c.Listen(topic, func(m *IOMsgRaw) {
			n := leadingInt(m.Data)
			s.mu.Lock()
			s.seqs = append(s.seqs, n)
			s.mu.Unlock()
			s.got <- struct{}{}
		})
	}
	if len(topics) > 0 {
		if err := s.c.Subscribe(topics...); err != nil {
			t.Fatal(err)
		}
	}
	mustRoundTrip(t, s.c, "barrier") // the server handled the subscription
	return s
}

// leadingInt parses the decimal number (maybe negative) at the start of b; -2 if none.
func leadingInt(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(string(b[:i]))
	if err != nil {
		return -2
	}
	return n
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seqs)
}

func (s *subscriber) waitFor(t *testing.T, n int) {
	t.Helper()
	for range n {
		recv(t, s.got, 20*time.Second, "broadcast")
	}
}

// TestBroadcastOrderAndExactMatch: 5,000 broadcasts reach 4 subscribers in order;
// connections subscribed to other topics (a prefix or an extension of it) get nothing.
func TestBroadcastOrderAndExactMatch(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, _ := startServer(t)
	const n = 5000
	subs := make([]*subscriber, 4)
	for i := range subs {
		subs[i] = newSubscriber(t, addr, "topic")
	}
	others := []*subscriber{newSubscriber(t, addr, "topi"), newSubscriber(t, addr, "topic2"), newSubscriber(t, addr)}
	for i := range n {
		if err := srv.Broadcast(&IOMsg{Action: "topic", Data: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range others { // each also gets a message of its own, after all of the above
		if len(o.c.subscriptions()) == 0 {
			continue
		}
		if err := srv.Broadcast(&IOMsg{Action: o.c.subscriptions()[0], Data: "-1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs {
		s.waitFor(t, n)
		s.mu.Lock()
		for i, v := range s.seqs {
			if v != i {
				s.mu.Unlock()
				t.Fatalf("subscriber got broadcast %d at position %d", v, i)
			}
		}
		s.mu.Unlock()
	}
	for _, o := range others[:2] {
		o.waitFor(t, 1)
		if o.count() != 1 {
			t.Errorf("a connection subscribed to %v got %d messages, want only its own", o.c.subscriptions(), o.count())
		}
	}
	if others[2].count() != 0 {
		t.Error("an unsubscribed connection got broadcasts")
	}
	if srv.SlowConsumers() != 0 {
		t.Fatalf("SlowConsumers = %d", srv.SlowConsumers())
	}
}

func TestUnsubscribe(t *testing.T) {
	leakcheck.Check(t)
	srv, addr, _ := startServer(t)
	s := newSubscriber(t, addr, "topic", "marker")
	if err := s.c.Unsubscribe("topic"); err != nil {
		t.Fatal(err)
	}
	mustRoundTrip(t, s.c, "barrier")
	_ = srv.Broadcast(&IOMsg{Action: "topic", Data: "1"})
	_ = srv.Broadcast(&IOMsg{Action: "marker", Data: "2"})
	s.waitFor(t, 1)
	if s.count() != 1 || s.seqs[0] != 2 {
		t.Fatalf("after unsubscribe got %v, want only the marker", s.seqs)
	}
}

func TestSubscriptionLimit(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, WithLimits(3, 0, 0, 0, 0))
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	_ = c.Subscribe("a", "b", "c", "d", "e")
	mustRoundTrip(t, c, "barrier")
	n := 0
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if _, ok := sc.GetData(k); ok {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d subscriptions kept, limit 3", n)
	}
}

// slowListener shrinks the kernel send buffer of accepted connections, so that a
// subscriber that stops reading fills them quickly.
type slowListener struct{ net.Listener }

func (l slowListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return nc, err
}

// TestSlowConsumer: a subscriber that stops reading is cut and counted once its queue
// passes the bound, while the other subscribers receive every broadcast in order.
func TestSlowConsumer(t *testing.T) {
	leakcheck.Check(t)
	srv := newServer(WithMaxPendingBytes(128 << 10))
	srv.InitConn = echoHandler
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, srv, slowListener{ln})

	healthy := []*subscriber{newSubscriber(t, addr, "topic"), newSubscriber(t, addr, "topic"), newSubscriber(t, addr, "topic")}
	slow := dialRaw(t, addr, nil)
	_ = slow.nc.(*net.TCPConn).SetReadBuffer(4096)
	slow.send("subscribe", []byte(`["topic"]`), false)
	slow.barrier() // subscribed; from now on it reads nothing

	payload := make([]byte, 8<<10)
	payload[8] = ' '              // ends the sequence number: the random bytes may be digits
	_, _ = rand.Read(payload[9:]) // incompressible
	sent, extra := 0, 0
	for extra < 3 { // until the cut, and a few rounds after it
		if sent > 8000 {
			t.Fatalf("slow consumer not cut after %d broadcasts of %d bytes", sent, len(payload))
		}
		if srv.SlowConsumers() > 0 {
			extra++
		}
		for range 4 { // 32 KiB per round, well under the bound for readers that keep up
			copy(payload, fmt.Sprintf("%08d", sent))
			if err := srv.Broadcast(&IOMsg{Action: "topic", Data: payload}); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		for _, h := range healthy {
			h.waitFor(t, 4)
		}
	}
	if srv.SlowConsumers() != 1 {
		t.Fatalf("SlowConsumers = %d, want 1", srv.SlowConsumers())
	}
	for _, h := range healthy {
		h.mu.Lock()
		for i, v := range h.seqs {
			if v != i {
				t.Fatalf("healthy subscriber got %d at position %d", v, i)
			}
		}
		if len(h.seqs) != sent {
			t.Fatalf("healthy subscriber got %d of %d", len(h.seqs), sent)
		}
		h.mu.Unlock()
		mustRoundTrip(t, h.c, "still connected")
	}
	// The slow connection was closed: draining it ends in EOF or a reset.
	_ = slow.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64<<10)
	for {
		if _, err := slow.nc.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("slow consumer's connection still open")
			}
			break
		}
	}
}

// TestHandlersInOrder: one connection's messages reach its handlers in arrival order.
func TestHandlersInOrder(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	const n = 2000
	var got []int
	done := make(chan struct{})
	sc.Listen("seq", func(m *IOMsgRaw) {
		v, _ := strconv.Atoi(string(m.Data))
		got = append(got, v) // only the handler goroutine touches got
		if len(got) == n {
			close(done)
		}
	})
	sc.Listen("seq-other", func(m *IOMsgRaw) { // two handlers share the one goroutine
		v, _ := strconv.Atoi(string(m.Data))
		got = append(got, v)
		if len(got) == n {
			close(done)
		}
	})
	for i := range n {
		action := "seq"
		if i%3 == 0 {
			action = "seq-other"
		}
		if err := c.WriteMsg(&IOMsg{Action: action, Data: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, done, 20*time.Second, "all messages")
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d handled at position %d", v, i)
		}
	}
}

// TestSlowHandlerDoesNotDelayResults: while a handler of the client is blocked, results
// for its waits still arrive (the read loop delivers them, not the handler goroutine).
func TestSlowHandlerDoesNotDelayResults(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	entered, release := make(chan struct{}), make(chan struct{})
	var after atomic.Bool
	c.Listen("block", func(*IOMsgRaw) {
		close(entered)
		<-release
	})
	c.Listen("after", func(*IOMsgRaw) { after.Store(true) })
	if err := sc.WriteMsg(&IOMsg{Action: "block"}); err != nil {
		t.Fatal(err)
	}
	if err := sc.WriteMsg(&IOMsg{Action: "after"}); err != nil {
		t.Fatal(err)
	}
	recv(t, entered, 5*time.Second, "the handler to block")
	for i := range 10 {
		mustRoundTrip(t, c, fmt.Sprint("while blocked ", i))
	}
	if after.Load() {
		t.Fatal("a later message overtook the blocked handler")
	}
	close(release)
	waitUntil(t, 5*time.Second, "the queued handler", after.Load)
}

// TestListenInline: an inline handler runs on the read loop, so it is not held up by a
// blocked handler goroutine; a panic in it is recovered like any handler's.
func TestListenInline(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	entered, release := make(chan struct{}), make(chan struct{})
	inline := make(chan string, 2)
	c.Listen("block", func(*IOMsgRaw) {
		close(entered)
		<-release
	})
	c.ListenInline("fast", func(m *IOMsgRaw) {
		if string(m.Data) == "panic" {
			panic("inline handler")
		}
		inline <- string(m.Data)
	})
	for _, m := range []*IOMsg{{Action: "block"}, {Action: "fast", Data: "panic"}, {Action: "fast", Data: "ran"}} {
		if err := sc.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, entered, 5*time.Second, "the handler to block")
	if got := recv(t, inline, 5*time.Second, "the inline handler"); got != "ran" {
		t.Fatalf("inline handler got %q", got)
	}
	close(release)
	mustRoundTrip(t, c, "after an inline panic")
}

// TestOnClose: hooks run once when the connection closes for good, including one
// registered after the close.
func TestOnClose(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	ran := make(chan string, 3)
	sc.OnClose(func() { ran <- "server" })
	c.OnClose(func() { ran <- "client" })
	_ = c.Close()
	got := map[string]bool{}
	for range 2 {
		got[recv(t, ran, 5*time.Second, "a close hook")] = true
	}
	if !got["server"] || !got["client"] {
		t.Fatalf("hooks run: %v", got)
	}
	sc.OnClose(func() { ran <- "late" })
	if late := recv(t, ran, 5*time.Second, "a hook registered after the close"); late != "late" {
		t.Fatalf("got %q", late)
	}
}

// TestHandlerPanic: a panicking handler is logged; the connection keeps working.
func TestHandlerPanic(t *testing.T) {
	leakcheck.Check(t)
	logOpt, logs := captureLogs()
	_, addr, conns := startServer(t, logOpt)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	sc.Listen("boom", func(*IOMsgRaw) { panic("kaboom") })
	for range 3 {
		if err := c.WriteMsg(&IOMsg{Action: "boom"}); err != nil {
			t.Fatal(err)
		}
	}
	mustRoundTrip(t, c, "after the panics")
	if !logs.contains("handler panicked") || !logs.contains("kaboom") {
		t.Fatalf("panic not logged:\n%s", logs)
	}
	if sc.IsClosed() {
		t.Fatal("connection closed by a handler panic")
	}
}
