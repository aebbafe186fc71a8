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

// movableClient is a client whose "task" messages run their tasks on the read loop
// (RunMovable), each its own: tasks hands the handler the task for the next message,
// moved hears what RunMovable reported. Messages "note" are counted in notes, on the
// read loop too. The server's end of the connection comes back too.
func movableClient(t *testing.T, opts ...Option) (c *ClientIO, sc *BanConn, tasks chan func(), moved chan bool, notes *atomic.Int64, noted chan struct{}) {
	t.Helper()
	_, addr, conns := startServer(t)
	c = newClient(t, addr, opts...)
	tasks, moved = make(chan func(), 8), make(chan bool, 8)
	notes, noted = new(atomic.Int64), make(chan struct{}, 1024)
	c.ListenInlineView("task", func(*IOMsgRaw) {
		task := <-tasks
		moved <- c.RunMovable(runnerFunc(task))
	})
	c.ListenInlineView("note", func(*IOMsgRaw) {
		notes.Add(1)
		noted <- struct{}{}
	})
	run(t, c)
	sc = recv(t, conns, 5*time.Second, "the server's connection")
	return c, sc, tasks, moved, notes, noted
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
	c, sc, tasks, moved, notes, noted := movableClient(t)
	release := make(chan struct{})
	tasks <- func() { <-release }
	send(t, sc, "task")
	send(t, sc, "note")
	recv(t, noted, 5*time.Second, "a message read while the task blocks")
	close(release)
	if !recv(t, moved, 5*time.Second, "RunMovable's return") {
		t.Fatal("RunMovable reported no move for a task that blocked until the next message was read")
	}
	const more = 200
	for range more {
		send(t, sc, "note")
	}
	for range more {
		recv(t, noted, 5*time.Second, "the messages after the move")
	}
	mustRoundTrip(t, c, "after the move")
	if got := notes.Load(); got != more+1 {
		t.Fatalf("%d notes handled, want %d", got, more+1)
	}
}

// MoveReading moves the reading at once, so a task may wait for what the read loop
// brings, here the result of a round trip on its own connection.
func TestMoveReadingMovesAtOnce(t *testing.T) {
	leakcheck.Check(t)
	c, sc, tasks, moved, _, _ := movableClient(t)
	errs := make(chan error, 1)
	tasks <- func() {
		c.MoveReading()
		if n := c.reader.moves.Load(); n != 1 {
			t.Errorf("%d moves right after MoveReading, want 1", n)
		}
		_, err := roundTrip(c, []byte("from a task"), 5*time.Second)
		errs <- err
	}
	send(t, sc, "task")
	if err := recv(t, errs, 10*time.Second, "the task's round trip"); err != nil {
		t.Fatalf("a round trip from a task that moved the reading: %v", err)
	}
	if !recv(t, moved, 5*time.Second, "RunMovable's return") {
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
// handled once.
func TestPanickingTaskLeavesOneReader(t *testing.T) {
	leakcheck.Check(t)
	_, sc, tasks, _, notes, noted := movableClient(t)
	tasks <- func() { panic("task panics") }
	send(t, sc, "task")
	const more = 200
	for range more {
		send(t, sc, "note")
	}
	for range more {
		recv(t, noted, 5*time.Second, "the messages after the panic")
	}
	// Longer than the move delay: a running mark left behind would move the reading
	// now, and two readers would take turns at the socket.
	time.Sleep(5 * moveAfter)
	for range more {
		send(t, sc, "note")
	}
	for range more {
		recv(t, noted, 5*time.Second, "the messages after the move delay")
	}
	if got := notes.Load(); got != 2*more {
		t.Fatalf("%d notes handled, want %d", got, 2*more)
	}
}

// A task that ends its goroutine (runtime.Goexit, as t.FailNow does) leaves the
// connection read all the same, by another goroutine.
func TestTaskThatEndsItsGoroutineLeavesTheReadingGoing(t *testing.T) {
	leakcheck.Check(t)
	c, sc, tasks, _, notes, noted := movableClient(t)
	tasks <- runtime.Goexit
	send(t, sc, "task")
	const more = 50
	for range more {
		send(t, sc, "note")
	}
	for range more {
		recv(t, noted, 5*time.Second, "the messages after the task ended its goroutine")
	}
	mustRoundTrip(t, c, "after Goexit")
	if got := notes.Load(); got != more {
		t.Fatalf("%d notes handled, want %d", got, more)
	}
}

// A task that ends its goroutine after the reading moved off it leaves one reader:
// the one it moved to.
func TestMovedTaskThatEndsItsGoroutineLeavesOneReader(t *testing.T) {
	leakcheck.Check(t)
	c, sc, tasks, _, notes, noted := movableClient(t)
	tasks <- func() {
		c.MoveReading()
		runtime.Goexit()
	}
	send(t, sc, "task")
	const more = 200
	for range more {
		send(t, sc, "note")
	}
	for range more {
		recv(t, noted, 5*time.Second, "the messages after the moved task ended its goroutine")
	}
	mustRoundTrip(t, c, "one reader")
	if got := notes.Load(); got != more {
		t.Fatalf("%d notes handled, want %d", got, more)
	}
}
