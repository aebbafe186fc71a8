package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/cenkalti/backoff/v4"
)

// A master that goes away and comes back, played by a banio.ServerIO: these tests cut
// the worker's connection by closing the server and start a new one on the same
// address, as a restarted master would.

// testWait bounds every wait for an event.
const testWait = 10 * time.Second

// masterEvent is what the test master saw, in the order it read it.
type masterEvent struct {
	action string // protocol.ActionRegister, protocol.ActionDrain, or "reply"
	info   protocol.WorkerInfo
	key    string
	reply  *protocol.Reply
}

// testMaster is a minimal master: it records registrations, drains and replies on its
// read loop (so in wire order), waits for the attempts a registration claims (as a
// restarted master re-adopts them), and sends jobs as dispatch does.
type testMaster struct {
	t      *testing.T
	srv    *banio.ServerIO
	addr   string
	events chan masterEvent
	conns  chan *banio.BanConn // each registered worker connection

	mu     sync.Mutex
	noWait bool // do not wait for claimed attempts
}

func startTestMaster(t *testing.T, addr string) *testMaster {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := &testMaster{t: t, srv: banio.NewBanServer("", "test-master"), addr: ln.Addr().String(),
		events: make(chan masterEvent, 64), conns: make(chan *banio.BanConn, 4)}
	m.srv.InitConn = func(c *banio.BanConn) {
		c.ListenInline(protocol.ActionRegister, func(msg *banio.IOMsgRaw) {
			var info protocol.WorkerInfo
			if err := json.Unmarshal(msg.Data, &info); err != nil {
				t.Errorf("bad registration: %v", err)
				return
			}
			m.mu.Lock()
			adopt := !m.noWait
			m.mu.Unlock()
			if adopt {
				for _, h := range info.Held {
					m.await(c, h.ID, h.Attempt)
				}
			}
			m.events <- masterEvent{action: protocol.ActionRegister, info: info}
			m.conns <- c
		})
		c.ListenInline(protocol.ActionDrain, func(*banio.IOMsgRaw) {
			m.events <- masterEvent{action: protocol.ActionDrain}
		})
	}
	go func() { _ = m.srv.Serve(ln) }()
	t.Cleanup(func() { _ = m.srv.Close() })
	return m
}

// stop closes the server: the worker's connection is cut, as by a master that died.
func (m *testMaster) stop() { _ = m.srv.Close() }

// await records the reply to attempt n of job id.
func (m *testMaster) await(c *banio.BanConn, id string, n int) {
	key := protocol.AttemptKey(id, n)
	_, err := c.SetWaitFunc(key, func(data []byte, err error) {
		if err != nil {
			return // the connection was cut
		}
		rep, derr := protocol.DecodeReply(bytes.Clone(data))
		if derr != nil {
			m.t.Errorf("bad reply on %s: %v", key, derr)
			return
		}
		m.events <- masterEvent{action: "reply", key: key, reply: rep}
	})
	if err != nil {
		m.t.Errorf("SetWaitFunc %s: %v", key, err)
	}
}

// dispatch sends attempt n of job id to the worker on c, as dispatch/attempt.go does.
func (m *testMaster) dispatch(c *banio.BanConn, typ, id string, n int, payload []byte) {
	m.t.Helper()
	m.await(c, id, n)
	head := protocol.AppendJobHeader(make([]byte, 0, protocol.HeaderRoom), &protocol.Job{
		ID: id, Type: typ, Key: protocol.AttemptKey(id, n), Attempt: n})
	if err := c.WriteMsg(&banio.IOMsg{Action: protocol.JobAction(typ), Data: banio.Parts{Head: head, Body: payload}}); err != nil {
		m.t.Fatalf("dispatch %s: %v", id, err)
	}
}

// next returns the next event.
func (m *testMaster) next() masterEvent {
	m.t.Helper()
	select {
	case e := <-m.events:
		return e
	case <-time.After(testWait):
		m.t.Fatal("timed out waiting for the worker")
		return masterEvent{}
	}
}

// registered waits for a registration and returns it with its connection.
func (m *testMaster) registered() (protocol.WorkerInfo, *banio.BanConn) {
	m.t.Helper()
	e := m.next()
	if e.action != protocol.ActionRegister {
		m.t.Fatalf("got %s %s, want a registration first", e.action, e.key)
	}
	return e.info, <-m.conns
}

// replied waits for the next event and fails unless it is the reply to attempt n of id.
func (m *testMaster) replied(id string, n int) *protocol.Reply {
	m.t.Helper()
	e := m.next()
	if e.action != "reply" || e.key != protocol.AttemptKey(id, n) {
		m.t.Fatalf("got %s %s, want the reply to %s", e.action, e.key, protocol.AttemptKey(id, n))
	}
	return e.reply
}

// gatedHandler runs jobs that wait for their gate, or their context.
type gatedHandler struct {
	started chan string   // each job's id as it starts
	gate    chan struct{} // closed: every job finishes
	once    sync.Once
}

func newGated() *gatedHandler {
	return &gatedHandler{started: make(chan string, 16), gate: make(chan struct{})}
}

func (g *gatedHandler) release() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedHandler) handle(ctx context.Context, j *Job) (any, error) {
	g.started <- j.ID
	select {
	case <-g.gate:
		return "done:" + string(j.Payload), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gatedHandler) awaitStart(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-g.started:
		if got != id {
			t.Fatalf("started %s, want %s", got, id)
		}
	case <-time.After(testWait):
		t.Fatalf("job %s did not start", id)
	}
}

func fastBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(backoff.WithInitialInterval(5*time.Millisecond), backoff.WithMaxInterval(20*time.Millisecond), backoff.WithMaxElapsedTime(0))
}

// runningWorker is a worker running for a test.
type runningWorker struct {
	*Worker
	cancel context.CancelFunc // starts its drain
	done   chan struct{}      // closed when Run returned
}

// stop drains the worker and waits for Run. Tests defer it, so that it runs while the
// test master is still there: a worker draining without a master waits its grace for
// the replies it holds.
func (rw *runningWorker) stop(t *testing.T) {
	rw.cancel()
	select {
	case <-rw.done:
	case <-time.After(testWait):
		t.Error("Run did not return")
	}
}

// startWorker runs a worker for addr until the test ends.
func startWorker(t *testing.T, addr string, h Handler, opts ...Option) *runningWorker {
	t.Helper()
	opts = append([]Option{
		WithBanIO(banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond), banio.WithReconnectBackoff(fastBackoff)),
		WithDrainGrace(2 * time.Second),
	}, opts...)
	w := New(addr, opts...)
	w.Handle("t", h)
	return runWorker(t, w)
}

// runWorker runs w until the test ends.
func runWorker(t *testing.T, w *Worker) *runningWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{Worker: w, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rw.done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { rw.stop(t) })
	return rw
}

// until polls cond, bounded: for worker state no event announces.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *Worker) isDown() bool {
	_, down := w.link.load()
	return down
}

func (w *Worker) heldCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held.len()
}

func (w *Worker) recentCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.recent.n
}

// cut stops m and waits until w noticed.
func cut(t *testing.T, m *testMaster, w *runningWorker) {
	t.Helper()
	m.stop()
	until(t, "the worker to notice the loss", w.isDown)
}

func wantHeld(t *testing.T, info protocol.WorkerInfo, want ...protocol.HeldAttempt) {
	t.Helper()
	if len(info.Held) != len(want) {
		t.Fatalf("registration holds %+v, want %+v", info.Held, want)
	}
	for _, h := range want {
		found := false
		for _, g := range info.Held {
			found = found || g == h
		}
		if !found {
			t.Fatalf("registration holds %+v, want %+v", info.Held, want)
		}
	}
}

func wantOK(t *testing.T, rep *protocol.Reply, payload string) {
	t.Helper()
	if rep.Kind != protocol.KindOK || string(rep.Payload) != payload {
		t.Fatalf("reply kind %d %q (%s), want OK %q", rep.Kind, rep.Payload, rep.Message, payload)
	}
}

// A job running when the master goes away keeps running; the next registration claims
// it as running, and its reply arrives on the new connection under its attempt key.
func TestJobKeepsRunningAcrossReconnect(t *testing.T) {
	leakcheck.Check(t)
	m1 := startTestMaster(t, "127.0.0.1:0")
	g := newGated()
	w := startWorker(t, m1.addr, g.handle)
	defer w.stop(t)
	defer g.release()
	info, c := m1.registered()
	wantHeld(t, info)
	m1.dispatch(c, "t", "j1", 3, []byte("a"))
	g.awaitStart(t, "j1")

	cut(t, m1, w)
	m2 := startTestMaster(t, m1.addr)
	info, _ = m2.registered()
	wantHeld(t, info, protocol.HeldAttempt{ID: "j1", Attempt: 3})
	g.release()
	rep := m2.replied("j1", 3)
	wantOK(t, rep, "done:a")
	if rep.Attempt != 3 || rep.WorkerID != w.ID() {
		t.Fatalf("reply for attempt %d from %q, want 3 from %q", rep.Attempt, rep.WorkerID, w.ID())
	}
}

// A job that finishes while the master is away: the registration claims it done, and
// its reply follows the registration.
func TestReplyHeldWhileDisconnected(t *testing.T) {
	leakcheck.Check(t)
	m1 := startTestMaster(t, "127.0.0.1:0")
	g := newGated()
	w := startWorker(t, m1.addr, g.handle)
	defer w.stop(t)
	defer g.release()
	_, c := m1.registered()
	m1.dispatch(c, "t", "j1", 1, []byte("b"))
	g.awaitStart(t, "j1")

	cut(t, m1, w)
	g.release()
	until(t, "the reply to be held", func() bool { return w.heldCount() == 1 })
	m2 := startTestMaster(t, m1.addr)
	info, _ := m2.registered() // first
	wantHeld(t, info, protocol.HeldAttempt{ID: "j1", Attempt: 1, Done: true})
	wantOK(t, m2.replied("j1", 1), "done:b") // then the reply
	if n := w.heldCount(); n != 0 {
		t.Fatalf("%d replies still held after delivery", n)
	}
}

// A reply sent just before the connection drops may not have reached the master: the
// registration after the loss claims it done and sends it again.
func TestRecentReplyClaimedAfterLoss(t *testing.T) {
	leakcheck.Check(t)
	m1 := startTestMaster(t, "127.0.0.1:0")
	w := startWorker(t, m1.addr, func(_ context.Context, j *Job) (any, error) { return j.Payload, nil })
	defer w.stop(t)
	_, c := m1.registered()
	m1.dispatch(c, "t", "j1", 2, []byte("c"))
	wantOK(t, m1.replied("j1", 2), "c") // the master had it, and then died before it stored it
	until(t, "the reply to be remembered", func() bool { return w.recentCount() == 1 })

	cut(t, m1, w)
	m2 := startTestMaster(t, m1.addr)
	info, _ := m2.registered()
	wantHeld(t, info, protocol.HeldAttempt{ID: "j1", Attempt: 2, Done: true})
	wantOK(t, m2.replied("j1", 2), "c")
}

// Without the linger window, nothing is claimed for a reply that was sent.
func TestReplyLingerZeroKeepsNothing(t *testing.T) {
	leakcheck.Check(t)
	m1 := startTestMaster(t, "127.0.0.1:0")
	w := startWorker(t, m1.addr, func(_ context.Context, j *Job) (any, error) { return j.Payload, nil }, WithReplyLinger(0))
	defer w.stop(t)
	_, c := m1.registered()
	m1.dispatch(c, "t", "j1", 1, []byte("d"))
	wantOK(t, m1.replied("j1", 1), "d")
	// The master has the reply before the worker has noted it as sent; a cut in
	// between rightly holds it (the worker cannot tell it arrived), so cut after.
	until(t, "the reply noted as sent", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.running) == 0
	})
	cut(t, m1, w)
	m2 := startTestMaster(t, m1.addr)
	info, _ := m2.registered()
	wantHeld(t, info)
}

// countingHandler counts the warnings whose message contains substr.
type countingHandler struct {
	slog.Handler // for WithAttrs and WithGroup
	substr       string
	mu           sync.Mutex
	n            int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && strings.Contains(r.Message, h.substr) {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
	}
	return nil
}

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Past WithHeldReplyBytes, replies are dropped, not listed, and one warning says so.
func TestHeldRepliesBounded(t *testing.T) {
	leakcheck.Check(t)
	m1 := startTestMaster(t, "127.0.0.1:0")
	g := newGated()
	logs := &countingHandler{Handler: slog.DiscardHandler, substr: "too many replies held"}
	payload := strings.Repeat("x", 100)
	// Room for one reply (its header and "done:"+payload) but not two.
	w := startWorker(t, m1.addr, g.handle, WithHeldReplyBytes(250), WithConcurrency(3), WithLogger(slog.New(logs)))
	defer w.stop(t)
	defer g.release()
	_, c := m1.registered()
	for _, id := range []string{"j1", "j2", "j3"} {
		m1.dispatch(c, "t", id, 1, []byte(payload))
	}
	for range 3 {
		select {
		case <-g.started:
		case <-time.After(testWait):
			t.Fatal("jobs did not start")
		}
	}

	cut(t, m1, w)
	g.release()
	until(t, "the jobs to end", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.running) == 0
	})
	m2 := startTestMaster(t, m1.addr)
	info, _ := m2.registered()
	if len(info.Held) != 1 || !info.Held[0].Done {
		t.Fatalf("registration holds %+v, want one done reply", info.Held)
	}
	m2.replied(info.Held[0].ID, 1)
	if n := logs.count(); n != 1 {
		t.Fatalf("%d warnings about dropped replies, want 1", n)
	}
}

// The master cancels a held running attempt it does not re-adopt.
func TestMasterCancelsHeldAttempt(t *testing.T) {
	leakcheck.Check(t)
	m1 := startTestMaster(t, "127.0.0.1:0")
	g := newGated()
	w := startWorker(t, m1.addr, g.handle)
	defer w.stop(t)
	defer g.release()
	_, c := m1.registered()
	m1.dispatch(c, "t", "j1", 1, nil)
	g.awaitStart(t, "j1")

	cut(t, m1, w)
	m2 := startTestMaster(t, m1.addr)
	info, c2 := m2.registered()
	wantHeld(t, info, protocol.HeldAttempt{ID: "j1", Attempt: 1})
	// An older attempt than the one claimed is no cancel for it.
	if err := c2.WriteMsg(&banio.IOMsg{Action: protocol.ActionCancel, Data: protocol.CancelMsg{ID: "j1", Attempt: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := c2.WriteMsg(&banio.IOMsg{Action: protocol.ActionCancel, Data: protocol.CancelMsg{ID: "j1", Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	rep := m2.replied("j1", 1)
	if rep.Kind != protocol.KindCanceled || !strings.Contains(rep.Message, errCanceledByMaster.Error()) {
		t.Fatalf("reply kind %d (%s), want cancelled by the master", rep.Kind, rep.Message)
	}
}

// A draining worker that loses its connection and comes back says fleet.drain after
// registering again, and delivers its held replies before it closes.
func TestDrainAcrossReconnect(t *testing.T) {
	leakcheck.Check(t)
	m1 := startTestMaster(t, "127.0.0.1:0")
	g := newGated()
	w := startWorker(t, m1.addr, g.handle, WithDrainGrace(testWait))
	defer g.release()
	_, c := m1.registered()
	m1.dispatch(c, "t", "j1", 1, []byte("e"))
	g.awaitStart(t, "j1")
	w.cancel()
	if e := m1.next(); e.action != protocol.ActionDrain {
		t.Fatalf("got %s, want a drain", e.action)
	}

	cut(t, m1, w)
	g.release()
	until(t, "the reply to be held", func() bool { return w.heldCount() == 1 })
	m2 := startTestMaster(t, m1.addr)
	info, _ := m2.registered()
	wantHeld(t, info, protocol.HeldAttempt{ID: "j1", Attempt: 1, Done: true})
	if e := m2.next(); e.action != protocol.ActionDrain {
		t.Fatalf("got %s %s after the registration, want a drain", e.action, e.key)
	}
	wantOK(t, m2.replied("j1", 1), "done:e")
	select {
	case <-w.done:
	case <-time.After(testWait):
		t.Fatal("the drain did not end once its replies were delivered")
	}
}
