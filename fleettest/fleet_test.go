package fleettest_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/store"
	"github.com/banfleet/banfleet/worker"
	"github.com/cenkalti/backoff/v4"
)

func upper(_ context.Context, j *worker.Job) (any, error) {
	return strings.ToUpper(string(j.Payload)), nil
}

// gate is a handler that reports each job it starts and holds it until released.
type gate struct {
	started chan string // the worker's name, per job started
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan string, 16), release: make(chan struct{})} }

func (g *gate) handle(ctx context.Context, j *worker.Job) (any, error) { return g.on("")(ctx, j) }

// on is the handler of the worker called name.
func (g *gate) on(name string) worker.Handler {
	return func(ctx context.Context, j *worker.Job) (any, error) {
		g.started <- name
		return g.hold(ctx)
	}
}

func (g *gate) hold(ctx context.Context) (any, error) {
	select {
	case <-g.release:
		return "released", nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func waitTicket(t *testing.T, tk *dispatch.Ticket) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return tk.Wait(ctx)
}

// New gives a master with registered workers, reached in-process and by a Client;
// the token given with WithBanIO reaches every part.
func TestNewServesInProcessAndRemote(t *testing.T) {
	leakcheck.Check(t)
	f := fleettest.New(t, map[string]worker.Handler{"upper": upper}, fleettest.WithWorkers(3),
		fleettest.WithBanIO(banio.WithToken("s3cret")))
	if n := f.Master().Stats().Workers; n != 3 {
		t.Fatalf("%d workers registered when New returned, want 3", n)
	}
	if len(f.Workers()) != 3 {
		t.Fatalf("Workers() lists %d", len(f.Workers()))
	}
	if res, err := f.Master().Call(context.Background(), "upper", "abc"); err != nil || string(res) != "ABC" {
		t.Fatalf("Master.Call = %q, %v", res, err)
	}
	if res, err := f.Client().Call(context.Background(), "upper", "remote"); err != nil || string(res) != "REMOTE" {
		t.Fatalf("Client.Call = %q, %v", res, err)
	}
	// A client without the token is refused: the token is really on.
	if c, err := dispatch.NewClient(f.Addr(), dispatch.WithReconnectBudget(200*time.Millisecond)); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := c.Call(ctx, "upper", "intruder")
		cancel()
		_ = c.Close()
		if err == nil {
			t.Fatalf("a client without the token was served: %q", res)
		}
	}
	f.WaitWorkers(3)
}

// Killing a worker that runs a job makes the master run it on another; the killed
// worker's handler sees its context cancelled, and Restart brings it back under a
// new id.
func TestKillAndRestartWorker(t *testing.T) {
	leakcheck.Check(t)
	g := newGate()
	f := fleettest.New(t, nil)
	workers := map[string]*fleettest.Worker{}
	for _, name := range []string{"a", "b"} {
		workers[name] = f.StartWorker(map[string]worker.Handler{"hold": g.on(name)})
	}
	tk, err := f.Master().Submit(context.Background(), dispatch.Job{Type: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	first := recv(t, g.started, "the job to start")
	victim := workers[first]
	firstID := victim.ID()
	victim.Kill()
	if victim.Worker() != nil || victim.ID() != "" {
		t.Fatal("a killed worker still reports a running worker")
	}
	second := recv(t, g.started, "the job to run again elsewhere")
	if second == first {
		t.Fatalf("the job ran again on the killed worker %s", first)
	}
	close(g.release)
	if res, err := waitTicket(t, tk); err != nil || string(res) != "released" {
		t.Fatalf("job = %q, %v", res, err)
	}
	if st := f.Master().Stats(); st.Retried == 0 {
		t.Fatalf("Stats = %+v: the kill did not cost the job an attempt", st)
	}

	victim.Restart()
	if id := victim.ID(); id == "" || id == firstID {
		t.Fatalf("restarted worker id %q (was %s)", id, firstID)
	}
	f.WaitWorkers(2)
}

// A partitioned worker is lost to the master and comes back when healed; a cut one
// reconnects at once.
func TestPartitionAndCut(t *testing.T) {
	leakcheck.Check(t)
	f := fleettest.New(t, map[string]worker.Handler{"upper": upper})
	w := f.Workers()[0]
	m := f.Master()
	w.Partition(true)
	awaitWorkers(t, m, 0)
	conns := w.Link().Connections()
	// While partitioned, the worker cannot come back: a job waits. (There is no event
	// for a reconnect that does not happen; 300 ms is several of its reconnect tries.)
	tk, err := m.Submit(context.Background(), dispatch.Job{Type: "upper", Payload: "held"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	res, err := tk.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || w.Link().Connections() != conns {
		t.Fatalf("a partitioned worker served a job: %q, %v; %d connections, %d before", res, err, w.Link().Connections(), conns)
	}
	w.Partition(false)
	awaitWorkers(t, m, 1)
	if res, err := waitTicket(t, tk); err != nil || string(res) != "HELD" {
		t.Fatalf("the job held during the partition: %q, %v", res, err)
	}
	if w.Link().Connections() <= conns {
		t.Fatal("the worker came back without a new connection")
	}
	conns = w.Link().Connections()
	w.Cut()
	if res, err := m.Call(context.Background(), "upper", "after cut"); err != nil || string(res) != "AFTER CUT" {
		t.Fatalf("after a cut: %q, %v", res, err)
	}
	if w.Link().Connections() <= conns {
		t.Fatal("the cut did not make the worker reconnect")
	}
}

// awaitWorkers waits until exactly n workers are registered, on the master's event.
func awaitWorkers(t *testing.T, m *dispatch.Master, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		changed := m.WorkersChanged()
		if m.Stats().Workers == n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d workers registered, want %d", m.Stats().Workers, n)
		}
	}
}

// A durable master restarted on its store file and port keeps the jobs in flight:
// the Client and the worker ride through, and the job's result reaches the caller.
func TestRestartMasterOnItsStore(t *testing.T) {
	leakcheck.Check(t)
	path := filepath.Join(t.TempDir(), "master.db")
	opened := 0
	g := newGate()
	f := fleettest.New(t, map[string]worker.Handler{"hold": g.handle},
		fleettest.WithStoreOpener(func() (store.Store, error) { opened++; return store.OpenBolt(path) }))
	c := f.Client()
	tk, err := c.Submit(context.Background(), dispatch.Job{ID: "survivor", Type: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, g.started, "the job to start")
	before := f.Master()
	f.RestartMaster()
	if f.Master() == before || opened != 2 {
		t.Fatalf("RestartMaster: same master %v, store opened %d times", f.Master() == before, opened)
	}
	f.WaitWorkers(1)
	close(g.release)
	if res, err := waitTicket(t, tk); err != nil || string(res) != "released" {
		t.Fatalf("job across the restart = %q, %v", res, err)
	}
}

// Stopping a worker drains it: Run returns nil, and the master loses it.
func TestStopWorker(t *testing.T) {
	leakcheck.Check(t)
	f := fleettest.New(t, map[string]worker.Handler{"upper": upper}, fleettest.WithWorkers(2))
	w := f.Workers()[1]
	if err := w.Stop(); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	select {
	case <-w.Done():
	default:
		t.Fatal("Done is open after Stop")
	}
	awaitWorkers(t, f.Master(), 1)
	extra := f.StartWorker(map[string]worker.Handler{"upper": upper}, worker.WithLabels(map[string]string{"gpu": "yes"}))
	if extra.ID() == "" || f.Master().Stats().Workers != 2 {
		t.Fatalf("StartWorker: id %q, %d workers", extra.ID(), f.Master().Stats().Workers)
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("a second Stop = %v", err)
	}
}

// A link that drops in the middle of an upload: the Client's PutBlob rides through
// the cut and the master holds the blob; the same through a proxy Link of the fleet.
func TestCutAfterMidUpload(t *testing.T) {
	leakcheck.Check(t)
	f := fleettest.New(t, nil)
	data := make([]byte, 100_000) // incompressible, so that it is 100 kB on the wire
	_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
	c, link := f.LinkedClient()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The Client's connection is up: the cut applies to the next one, so cut this one.
	dropped := link.CutAfter(8 << 10)
	link.Cut()
	if _, err := c.PutBlob(ctx, data); err != nil {
		t.Fatalf("PutBlob through a link cut mid-upload: %v", err)
	}
	select {
	case <-dropped:
	default:
		t.Fatal("the link never cut the upload")
	}
	if n := f.Master().BlobStats().Count; n != 1 {
		t.Fatalf("the master holds %d blobs", n)
	}

	proxy := f.Link()
	c2, err := dispatch.NewClient(proxy.Addr(), dispatch.WithBanIO(banio.WithReconnectBackoff(func() backoff.BackOff {
		return backoff.NewConstantBackOff(10 * time.Millisecond)
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	// A round trip first: NewClient returns once its socket is connected, which may be
	// before the proxy has taken the connection over. Armed before that, the cut would
	// apply to this connection, which Cut may then miss.
	if _, err := c2.DeleteBlob(ctx, protocol.BlobHash(nil)); err != nil {
		t.Fatal(err)
	}
	dropped = proxy.CutAfter(8 << 10)
	proxy.Cut()
	if _, err := c2.PutBlob(ctx, append(data, '!')); err != nil {
		t.Fatalf("PutBlob through a proxy cut mid-upload: %v", err)
	}
	select {
	case <-dropped:
	default:
		t.Fatal("the proxy never cut the upload")
	}
}
