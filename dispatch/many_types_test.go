package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
)

// TestRoutingCostIndependentOfAnnouncedTypes: how much routing looks at per job does
// not grow with the number of types the worker announced, whether a job finds the
// worker free or waits in the queue for the slot a finished job frees.
func TestRoutingCostIndependentOfAnnouncedTypes(t *testing.T) {
	leakcheck.Check(t)
	const types, jobs = 1000, 40
	f := newFleet(t)
	handlers := map[string]worker.Handler{"echo": echo}
	for i := range types - 1 {
		handlers[fmt.Sprintf("unused-%d", i)] = echo
	}
	f.startWorker(handlers, worker.WithConcurrency(1))
	before := dispatch.RouteSteps(f.master)
	var tickets []*dispatch.Ticket
	for range jobs { // at once, so that most wait for the one slot
		tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "echo", Payload: "x"})
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	for _, tk := range tickets {
		if _, err := tk.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// A job costs one look at the type's one class when submitted and, when it had to
	// wait, one more at the waiting type once a slot frees.
	if steps := dispatch.RouteSteps(f.master) - before; steps > 2*jobs {
		t.Fatalf("routing looked at %d classes, types or workers for %d jobs of a worker announcing %d types, want at most %d",
			steps, jobs, types, 2*jobs)
	}
	if err := dispatch.IndexError(f.master); err != nil {
		t.Fatal(err)
	}
}

// logRecorder keeps the messages of the records logged through it.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}

// matching returns the messages that contain s.
func (r *logRecorder) matching(s string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}

// TestRegistrationOverTypeLimitRefused: a worker announcing more job types than the
// master allows is not registered, and the refusal is logged once per connection,
// saying why and how to raise the limit.
func TestRegistrationOverTypeLimitRefused(t *testing.T) {
	leakcheck.Check(t)
	logs := &logRecorder{}
	const limit = 4
	f := newFleet(t, dispatch.WithMaxWorkerTypes(limit), dispatch.WithLogger(slog.New(logs)))
	raw, err := banio.NewClientIO(f.addr, banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- raw.RunForever() }()
	defer func() { _ = raw.Close(); <-runDone }()
	announce := func(id string, types int) {
		t.Helper()
		info := dispatch.WorkerInfo{ID: id, Capacity: 1}
		for i := range types {
			info.Types = append(info.Types, fmt.Sprintf("t%d", i))
		}
		if err := raw.WriteMsg(&banio.IOMsg{Action: protocol.ActionRegister, Data: info}); err != nil {
			t.Fatal(err)
		}
	}
	announce("too-many", limit+1)
	announce("too-many", 1000)
	// The master handles a connection's messages in order: once a blob upload sent
	// behind the announcements is answered, they have been handled.
	key := raw.SetWait("", 1)
	if err := raw.Write(&banio.IOMsgRaw{Action: protocol.ActionBlobPut + key, Data: []byte("barrier")}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.WaitResult(context.Background(), key, 5*time.Second); err != nil {
		t.Fatalf("blob upload behind the announcements: %v", err)
	}
	if ws := f.master.Workers(); len(ws) != 0 {
		t.Fatalf("workers %+v registered, want none", ws)
	}
	refusals := logs.matching("registration refused")
	if len(refusals) != 1 || !strings.Contains(refusals[0], "too-many") || !strings.Contains(refusals[0], "WithMaxWorkerTypes") {
		t.Fatalf("refusals logged: %q, want one naming the worker and the option", refusals)
	}
	announce("fits", limit)
	f.awaitWorkers("the registration within the limit", func() bool { return f.registered("fits") == 1 })
	if got := dispatch.RoutableWorkers(f.master, "t0"); !slices.Equal(got, []string{"fits"}) {
		t.Fatalf("routable for t0: %v", got)
	}
}

// TestRoutingIndexFollowsRegistrations: the index from type to workers follows a
// worker announcing other types on the same connection, draining, and leaving.
func TestRoutingIndexFollowsRegistrations(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	raw, err := banio.NewClientIO(f.addr, banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- raw.RunForever() }()
	send := func(action string, data any) {
		t.Helper()
		if err := raw.WriteMsg(&banio.IOMsg{Action: action, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	f.startWorker(map[string]worker.Handler{"a": echo, "b": echo}, worker.WithID("real"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := f.master.Submit(ctx, dispatch.Job{Type: "c"}); err != nil { // waits: nobody serves c
		t.Fatal(err)
	}
	check := func(what string, want map[string][]string) {
		t.Helper()
		for typ, ids := range want {
			if got := dispatch.RoutableWorkers(f.master, typ); !slices.Equal(got, ids) {
				t.Fatalf("%s: routable for %s: %v, want %v", what, typ, got, ids)
			}
		}
		if err := dispatch.IndexError(f.master); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	send(protocol.ActionRegister, dispatch.WorkerInfo{ID: "raw", Capacity: 0, Types: []string{"a", "a"}})
	f.awaitWorkers("raw registered", func() bool { return f.registered("raw") == 1 })
	check("registered", map[string][]string{"a": {"raw", "real"}, "b": {"real"}, "c": nil})

	send(protocol.ActionRegister, dispatch.WorkerInfo{ID: "raw", Capacity: 1, Types: []string{"b"}})
	waitFor(t, "raw announcing b", func() bool { return len(dispatch.RoutableWorkers(f.master, "a")) == 1 })
	check("re-registered", map[string][]string{"a": {"real"}, "b": {"raw", "real"}})

	send(protocol.ActionDrain, nil)
	waitFor(t, "raw draining", func() bool { return len(dispatch.RoutableWorkers(f.master, "b")) == 1 })
	check("drained", map[string][]string{"a": {"real"}, "b": {"real"}})

	_ = raw.Close()
	<-runDone
	f.awaitWorkers("raw forgotten", func() bool { return f.registered("raw") == 0 })
	check("forgotten", map[string][]string{"a": {"real"}, "b": {"real"}})
	if _, n := dispatch.QueueRetention(f.master); n != 3 {
		t.Fatalf("%d type entries for a and b served and c queued, want 3", n)
	}
}

// TestLeastLoadedAcrossTypeSets: workers that announced different sets of types share
// the jobs of a type they all serve by load, as workers of one set do.
func TestLeastLoadedAcrossTypeSets(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	g := newGate()
	f.startWorker(map[string]worker.Handler{"block": g.handle}, worker.WithConcurrency(2), worker.WithID("a"))
	f.startWorker(map[string]worker.Handler{"block": g.handle, "x": echo}, worker.WithConcurrency(2), worker.WithID("b"))
	f.startWorker(map[string]worker.Handler{"block": g.handle, "y": echo}, worker.WithConcurrency(4), worker.WithID("c"))
	var tickets []*dispatch.Ticket
	for range 9 {
		tk, err := f.master.Submit(context.Background(), dispatch.Job{Type: "block"})
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	for range 8 {
		recv(t, g.started, "a job start")
	}
	for _, w := range f.master.Workers() {
		if w.InFlight != w.Capacity {
			t.Fatalf("worker %s runs %d jobs with capacity %d: load not spread", w.ID, w.InFlight, w.Capacity)
		}
	}
	if s := f.master.Stats(); s.Queued != 1 || s.InFlight != 8 {
		t.Fatalf("Stats = %+v, want 1 queued and 8 in flight", s)
	}
	close(g.release)
	for _, tk := range tickets {
		if _, err := tk.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := dispatch.IndexError(f.master); err != nil {
		t.Fatal(err)
	}
}
