package banio

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// outcome is what a SetWaitFunc callback received.
type outcome struct {
	data string
	err  error
}

// waitFunc registers a callback wait on c that reports to the returned channel, and
// fails the test if the callback runs more than once.
func waitFunc(t *testing.T, c *BanConn, key string) (string, <-chan outcome) {
	t.Helper()
	ch := make(chan outcome, 2)
	key, err := c.SetWaitFunc(key, func(data []byte, err error) { ch <- outcome{string(data), err} })
	if err != nil {
		t.Fatalf("SetWaitFunc: %v", err)
	}
	t.Cleanup(func() {
		select {
		case o := <-ch:
			t.Errorf("callback for %q ran a second time: %+v", key, o)
		default:
		}
	})
	return key, ch
}

func TestSetWaitFunc(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr, constantBackoff(time.Hour))
	sc := recv(t, conns, 5*time.Second, "server conn")

	t.Run("result", func(t *testing.T) {
		k, ch := waitFunc(t, c.BanConn, "")
		if err := c.WriteMsg(&IOMsg{Action: "echo", Data: k + "|hi"}); err != nil {
			t.Fatal(err)
		}
		if o := recv(t, ch, 5*time.Second, "callback"); o.err != nil || o.data != "hi" {
			t.Fatalf("callback got %+v, want \"hi\"", o)
		}
		// The wait is gone once answered: a second result is dropped.
		if _, ok := c.GetWaitChan(k); ok {
			t.Fatal("GetWaitChan found a callback wait")
		}
		if _, err := c.WaitResult(context.Background(), k, time.Second); !errors.Is(err, ErrNoWait) {
			t.Fatalf("WaitResult on an answered callback wait: %v, want ErrNoWait", err)
		}
	})
	t.Run("CloseWaitChan", func(t *testing.T) {
		k, ch := waitFunc(t, c.BanConn, "")
		c.CloseWaitChan(k)
		if o := recv(t, ch, 5*time.Second, "callback"); !errors.Is(o.err, ErrNoWait) {
			t.Fatalf("callback got %+v, want ErrNoWait", o)
		}
		c.CloseWaitChan(k) // no second call
	})
	t.Run("replaced", func(t *testing.T) {
		k, ch := waitFunc(t, c.BanConn, "")
		c.SetWait(k, 1)
		if o := recv(t, ch, 5*time.Second, "callback"); !errors.Is(o.err, ErrNoWait) {
			t.Fatalf("callback got %+v, want ErrNoWait", o)
		}
		c.CloseWaitChan(k)
	})
	t.Run("WaitResult does not take a callback wait", func(t *testing.T) {
		k, ch := waitFunc(t, c.BanConn, "")
		if _, err := c.WaitResult(context.Background(), k, time.Second); !errors.Is(err, ErrNoWait) {
			t.Fatalf("WaitResult: %v, want ErrNoWait", err)
		}
		c.CloseWaitChan(k)
		recv(t, ch, 5*time.Second, "callback")
	})
	t.Run("server side, connection lost", func(t *testing.T) {
		_, ch := waitFunc(t, sc, "")
		_ = c.Close()
		if o := recv(t, ch, 5*time.Second, "callback"); !errors.Is(o.err, ErrConnClosed) {
			t.Fatalf("callback got %+v, want ErrConnClosed", o)
		}
		if _, err := sc.SetWaitFunc("", func([]byte, error) { t.Error("callback on a closed connection") }); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("SetWaitFunc on a closed connection: %v, want ErrConnClosed", err)
		}
	})
}

// TestSetWaitFuncClientReconnect: a client's callback waits fail when its socket drops;
// ones registered afterwards belong to the next socket.
func TestSetWaitFuncClientReconnect(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr, constantBackoff(10*time.Millisecond))
	sc := recv(t, conns, 5*time.Second, "server conn")
	_, ch := waitFunc(t, c.BanConn, "")
	_ = sc.Close()
	if o := recv(t, ch, 5*time.Second, "callback"); !errors.Is(o.err, ErrConnClosed) {
		t.Fatalf("callback got %+v, want ErrConnClosed", o)
	}
	recv(t, conns, 5*time.Second, "the client to reconnect")
	mustRoundTrip(t, c, "after reconnect")
	k, ch := waitFunc(t, c.BanConn, "")
	if err := c.WriteMsg(&IOMsg{Action: "echo", Data: k + "|again"}); err != nil {
		t.Fatal(err)
	}
	if o := recv(t, ch, 5*time.Second, "callback"); o.err != nil || o.data != "again" {
		t.Fatalf("callback got %+v", o)
	}
}

func TestSetWaitFuncLimit(t *testing.T) {
	c := pipeConn(t, WithLimits(0, 1, 0, 0, 0), WithLogger(testLogger()))
	if _, err := c.SetWaitFunc("a", func([]byte, error) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetWaitFunc("b", func([]byte, error) { t.Error("refused callback ran") }); !errors.Is(err, ErrLimit) {
		t.Fatalf("SetWaitFunc past the limit: %v, want ErrLimit", err)
	}
}

// TestSendWaitResNoBlock: answering a peer that stopped reading never holds up the
// sender, and what waits for that peer stays bounded: past twice the pending-bytes
// limit the peer is cut as a slow consumer.
func TestSendWaitResNoBlock(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t, WithMaxPendingBytes(64<<10), WithWriteTimeout(time.Hour))
	dialRaw(t, addr, nil) // connects and never reads
	sc := recv(t, conns, 5*time.Second, "server conn")
	payload := make([]byte, 64<<10)
	_, _ = rand.Read(payload) // incompressible: the socket buffers fill up
	done := make(chan error, 1)
	go func() {
		for i := range 256 { // 16 MiB: past any loopback socket buffer
			if err := sc.SendWaitResNoBlock(strconv.Itoa(i), payload); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// With an hour's write timeout, a blocking send would hang here.
	err := recv(t, done, 10*time.Second, "SendWaitResNoBlock calls to return")
	if !errors.Is(err, ErrSlowConsumer) && !errors.Is(err, ErrConnClosed) {
		t.Fatalf("SendWaitResNoBlock to a peer that never reads: %v, want ErrSlowConsumer", err)
	}
	recv(t, sc.Done(), 10*time.Second, "the slow consumer to be cut")
	if err := sc.Err(); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("connection ended with %v, want ErrSlowConsumer", err)
	}
}

// TestNoBlockOnAClientIsNeverCut: a ClientIO whose server stopped reading is not closed
// by a non-blocking send that finds no room (it could be reconnecting); the send fails.
func TestNoBlockOnAClientIsNeverCut(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept() // and never read
		if err == nil {
			accepted <- nc
		}
	}()
	c := dialClient(t, ln.Addr().String(), WithMaxPendingBytes(64<<10), WithWriteTimeout(time.Hour))
	defer func() { (<-accepted).Close() }()
	payload := make([]byte, 64<<10)
	_, _ = rand.Read(payload)
	var sendErr error
	for range 1024 { // 64 MiB: past any loopback socket buffer, the queue and its overflow
		if sendErr = c.WriteMsgNoBlock(&IOMsg{Action: "x", Data: payload}); sendErr != nil {
			break
		}
	}
	if !errors.Is(sendErr, ErrLimit) {
		t.Fatalf("WriteMsgNoBlock with no room anywhere: %v, want ErrLimit", sendErr)
	}
	if c.IsClosed() {
		t.Fatalf("the client was closed: %v", c.Err())
	}
}

// TestSetWaitFuncAllocatesNothing: a callback wait is kept in the table by value, so
// registering one and delivering its result allocates nothing once the table has
// room (a dispatch job registers two). A struct per wait was an allocation each.
func TestSetWaitFuncAllocatesNothing(t *testing.T) {
	leakcheck.Check(t)
	c := pipeConn(t)
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = "job-" + strconv.Itoa(i) + "#1"
	}
	var got int
	fn := func(data []byte, err error) {
		if err == nil && string(data) == "r" {
			got++
		}
	}
	data := []byte("r")
	round := func() {
		for _, key := range keys {
			if _, err := c.SetWaitFunc(key, fn); err != nil {
				t.Fatal(err)
			}
		}
		for _, key := range keys {
			c.waits.deliver(key, data, false)
		}
	}
	round() // the table grows to its size here
	allocs := testing.AllocsPerRun(20, round)
	if allocs != 0 {
		t.Errorf("%v allocations for %d callback waits and their results, want 0", allocs, len(keys))
	}
	// One round before, and AllocsPerRun's warm-up run and its 20.
	if want := 22 * len(keys); got != want {
		t.Fatalf("%d results delivered, want %d", got, want)
	}
}

// request is a caller's struct per request, its own Waiter.
type request struct {
	got *int
}

func (r *request) WaitDone(data []byte, err error) {
	if err == nil && string(data) == "r" {
		*r.got++
	}
}

// TestSetWaiterViewAllocatesNothing: a struct given as its own Waiter costs no
// allocation per wait, where its method value given to SetWaitFuncView would cost one.
func TestSetWaiterViewAllocatesNothing(t *testing.T) {
	leakcheck.Check(t)
	c := pipeConn(t)
	var got int
	reqs := make([]request, 64)
	keys := make([]string, len(reqs))
	for i := range reqs {
		reqs[i].got = &got
		keys[i] = "job-" + strconv.Itoa(i) + "#1"
	}
	data := []byte("r")
	round := func() {
		for i := range reqs {
			if _, err := c.SetWaiterView(keys[i], &reqs[i]); err != nil {
				t.Fatal(err)
			}
		}
		for _, key := range keys {
			c.waits.deliver(key, data, true)
		}
	}
	round() // the table grows to its size here
	if allocs := testing.AllocsPerRun(20, round); allocs != 0 {
		t.Errorf("%v allocations for %d waiter waits and their results, want 0", allocs, len(keys))
	}
	if want := 22 * len(keys); got != want {
		t.Fatalf("%d results delivered, want %d", got, want)
	}
}

// TestNilWaitCallbackIsRefused: a callback wait without a callback is an error, not
// a wait that panics when its result comes.
func TestNilWaitCallbackIsRefused(t *testing.T) {
	leakcheck.Check(t)
	c := pipeConn(t)
	if _, err := c.SetWaitFunc("k", nil); err == nil {
		t.Error("SetWaitFunc accepted a nil callback")
	}
	if _, err := c.SetWaitFuncView("k", nil); err == nil {
		t.Error("SetWaitFuncView accepted a nil callback")
	}
	if _, err := c.SetWaiterView("k", nil); err == nil {
		t.Error("SetWaiterView accepted a nil Waiter")
	}
	if c.waits.hasLocked("k") {
		t.Error("a refused wait was registered")
	}
}

// TestSendWaitResParts: both forms answer a wait with head followed by body, exactly
// as SendWaitRes with Parts does, and a nil body sends the head alone.
func TestSendWaitResParts(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	sc.ListenInline("ask", func(m *IOMsgRaw) {
		key := string(m.Data)
		_ = sc.SendWaitResPartsNoBlock(key+"-noblock", []byte("head|"), []byte("body"))
		_ = sc.SendWaitResParts(key, []byte("head only"), nil)
	})
	kb, chB := waitFunc(t, c.BanConn, "k-noblock")
	_, chA := waitFunc(t, c.BanConn, "k")
	if kb != "k-noblock" {
		t.Fatalf("key %q", kb)
	}
	if err := c.WriteMsg(&IOMsg{Action: "ask", Data: "k"}); err != nil {
		t.Fatal(err)
	}
	if o := recv(t, chB, 5*time.Second, "no-block result"); o.err != nil || o.data != "head|body" {
		t.Fatalf("SendWaitResPartsNoBlock delivered %+v", o)
	}
	if o := recv(t, chA, 5*time.Second, "result"); o.err != nil || o.data != "head only" {
		t.Fatalf("SendWaitResParts delivered %+v", o)
	}
}
