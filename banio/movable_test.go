package banio

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// runnerFunc makes a func a Runner.
type runnerFunc func()

func (f runnerFunc) Run() { f() }

// movable is a client whose "task" messages run their tasks on the read loop
// (RunMovable), each its own, with the server's end of its connection: tasks hands the
// handler the task for the next message, moved hears what RunMovable reported.
// Messages "note" are counted on the read loop too.
type movable struct {
	c     *ClientIO
	sc    *BanConn
	tasks chan func()
	moved chan bool
	notes atomic.Int64
	noted chan struct{}
}

func movableClient(t *testing.T) *movable {
	t.Helper()
	_, addr, conns := startServer(t)
	m := &movable{c: newClient(t, addr), tasks: make(chan func(), 8), moved: make(chan bool, 8), noted: make(chan struct{}, 1024)}
	m.c.ListenInlineView("task", func(*IOMsgRaw) {
		task := <-m.tasks
		m.moved <- m.c.RunMovable(runnerFunc(task))
	})
	m.c.ListenInlineView("note", func(*IOMsgRaw) {
		m.notes.Add(1)
		m.noted <- struct{}{}
	})
	run(t, m.c)
	m.sc = recv(t, conns, 5*time.Second, "the server's connection")
	return m
}

// runTask has the client run task on its read loop.
func (m *movable) runTask(t *testing.T, task func()) {
	t.Helper()
	m.tasks <- task
	send(t, m.sc, "task")
}

// noteAll sends n notes and waits until they are handled; then the client must have
// handled want notes in all, each once, and still answer a round trip.
func (m *movable) noteAll(t *testing.T, n int, want int64, what string) {
	t.Helper()
	for range n {
		send(t, m.sc, "note")
	}
	for range n {
		recv(t, m.noted, 5*time.Second, what)
	}
	mustRoundTrip(t, m.c, what)
	if got := m.notes.Load(); got != want {
		t.Fatalf("%s: %d notes handled, want %d", what, got, want)
	}
}

func send(t *testing.T, sc *BanConn, action string) {
	t.Helper()
	if err := sc.WriteMsg(&IOMsg{Action: action}); err != nil {
		t.Fatal(err)
	}
}

// A task that blocks gives the reading away: the connection's next messages are read
// while it blocks, RunMovable reports the move once the task is done, and the reading
// goes on on one goroutine only.
func TestBlockingTaskGivesTheReadingAway(t *testing.T) {
	leakcheck.Check(t)
	m := movableClient(t)
	release := make(chan struct{})
	m.runTask(t, func() { <-release })
	send(t, m.sc, "note")
	recv(t, m.noted, 5*time.Second, "a message read while the task blocks")
	close(release)
	if !recv(t, m.moved, 5*time.Second, "RunMovable's return") {
		t.Fatal("RunMovable reported no move for a task that blocked until the next message was read")
	}
	m.noteAll(t, 200, 201, "the messages after the move")
}

// MoveReading moves the reading at once, so a task may wait for what the read loop
// brings, here the result of a round trip on its own connection.
func TestMoveReadingMovesAtOnce(t *testing.T) {
	leakcheck.Check(t)
	m := movableClient(t)
	c := m.c
	errs := make(chan error, 1)
	m.runTask(t, func() {
		c.MoveReading()
		if n := c.reader.moves.Load(); n != 1 {
			t.Errorf("%d moves right after MoveReading, want 1", n)
		}
		_, err := roundTrip(c, []byte("from a task"), 5*time.Second)
		errs <- err
	})
	if err := recv(t, errs, 10*time.Second, "the task's round trip"); err != nil {
		t.Fatalf("a round trip from a task that moved the reading: %v", err)
	}
	if !recv(t, m.moved, 5*time.Second, "RunMovable's return") {
		t.Fatal("RunMovable reported no move after MoveReading")
	}
	// With no task on the read loop, MoveReading does nothing.
	c.MoveReading()
	mustRoundTrip(t, c, "still one reader")
	if n := c.reader.moves.Load(); n != 1 {
		t.Fatalf("%d moves, want 1: MoveReading moved a read loop that ran no task", n)
	}
}

// RunForever returns on Close even while a task still holds the goroutine that read
// before it (the caller's goroutine never runs tasks).
func TestRunForeverReturnsWhileATaskBlocks(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := newClient(t, addr)
	release, started := make(chan struct{}), make(chan struct{})
	c.ListenInlineView("task", func(*IOMsgRaw) {
		c.RunMovable(runnerFunc(func() {
			close(started)
			<-release
		}))
	})
	done := make(chan error, 1)
	go func() { done <- c.RunForever() }()
	defer close(release) // after the test's own checks; leakcheck waits for the task's goroutine
	sc := recv(t, conns, 5*time.Second, "the server's connection")
	send(t, sc, "task")
	<-started
	_ = c.Close()
	if err := recv(t, done, 5*time.Second, "RunForever's return after Close"); err != nil {
		t.Fatalf("RunForever returned %v after Close", err)
	}
}

// The goroutine the reading moved to also reconnects: the server drops the connection
// while a task blocks, and the client is served on its next one.
func TestMovedReadingReconnects(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := newClient(t, addr, constantBackoff(10*time.Millisecond))
	release, started := make(chan struct{}), make(chan struct{})
	var tasks atomic.Int64
	c.ListenInlineView("task", func(*IOMsgRaw) {
		if tasks.Add(1) > 1 {
			return
		}
		c.RunMovable(runnerFunc(func() {
			close(started)
			<-release
		}))
	})
	noted := make(chan struct{}, 1)
	c.ListenInlineView("note", func(*IOMsgRaw) { noted <- struct{}{} })
	run(t, c)
	defer close(release)
	sc := recv(t, conns, 5*time.Second, "the server's connection")
	send(t, sc, "task")
	<-started
	_ = sc.Close()
	sc2 := recv(t, conns, 10*time.Second, "the client's next connection")
	send(t, sc2, "note")
	recv(t, noted, 5*time.Second, "a message on the next connection while the task blocks")
	mustRoundTrip(t, c, "after the reconnect")
}

// A task that panics leaves the read loop as it was: one reader, every message
// handled once, and no task marked as running (a mark left behind would move the
// reading once the move delay passed, while the reader goes on reading too).
func TestPanickingTaskLeavesOneReader(t *testing.T) {
	leakcheck.Check(t)
	m := movableClient(t)
	m.runTask(t, func() { panic("task panics") })
	m.noteAll(t, 200, 200, "the messages after the panic")
	// Handling them took far longer than the move delay, so a mark left behind has
	// moved the reading by now; the task panicked at once, so nothing else would have.
	if w, n := m.c.reader.word.Load(), m.c.reader.moves.Load(); w&readerRunning != 0 || n != 0 {
		t.Fatalf("reader word %#x, %d moves: the panicked task stayed marked as running", w, n)
	}
}

// A task that ends its goroutine (runtime.Goexit, as t.FailNow does) leaves the
// connection read all the same, by another goroutine.
func TestTaskThatEndsItsGoroutineLeavesTheReadingGoing(t *testing.T) {
	leakcheck.Check(t)
	m := movableClient(t)
	m.runTask(t, runtime.Goexit)
	m.noteAll(t, 50, 50, "the messages after the task ended its goroutine")
}

// A task that ends its goroutine after the reading moved off it leaves one reader:
// the one it moved to.
func TestMovedTaskThatEndsItsGoroutineLeavesOneReader(t *testing.T) {
	leakcheck.Check(t)
	m := movableClient(t)
	m.runTask(t, func() {
		m.c.MoveReading()
		runtime.Goexit()
	})
	m.noteAll(t, 200, 200, "the messages after the moved task ended its goroutine")
}
