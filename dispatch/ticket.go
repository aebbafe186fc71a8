package dispatch

import (
	"context"
	"sync"
)

// Progress is a progress report from the handler running a job
// (worker.Job.Progress).
type Progress struct {
	Done, Total int64
	Message     string
	Attempt     int
	WorkerID    string
}

// Ticket is the caller's handle on a submitted job. It resolves exactly once, with the
// job's result or its error.
type Ticket struct {
	id string
	// done is closed when the ticket resolves; for a ticket made with initNotify
	// (notifies), it is the pooled channel that receives one value instead.
	done chan struct{}

	// mu protects the following fields.
	mu       sync.Mutex
	resolved bool
	notifies bool // made with initNotify
	result   []byte
	err      error
	progress chan Progress
}

func newTicket(id string) *Ticket {
	return new(Ticket).init(id)
}

// init readies a Ticket that is part of a larger value (a Client's call) and returns it.
func (t *Ticket) init(id string) *Ticket {
	t.id, t.done = id, make(chan struct{})
	return t
}

// initNotify readies a Ticket, part of a larger value, that is only ever waited on
// through notify (a buffered channel with room for one value, from getNotifier) and
// returns it: it has no Done channel, nobody may call its Done, Wait or Progress, and
// notify receives exactly one value, when it resolves. A Client.Call's ticket, which
// nobody else sees: a channel of its own was an allocation per call.
func (t *Ticket) initNotify(id string, notify chan struct{}) *Ticket {
	t.id, t.done, t.notifies = id, notify, true
	return t
}

// notifiers are the channels initNotify tickets tell of their outcome. One is taken by
// one Client.Call and returned by it once it has received the one value its ticket
// sends; nothing else holds it.
var notifiers = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

func getNotifier() chan struct{} { return notifiers.Get().(chan struct{}) }

// putNotifier returns t's notify channel to the pool, once its value has been
// received, and unhooks it from t, which is resolved and sends nothing more.
func putNotifier(t *Ticket) {
	t.mu.Lock()
	ch := t.done
	t.done = nil
	t.mu.Unlock()
	if ch != nil && len(ch) == 0 {
		notifiers.Put(ch)
	}
}

// ID returns the job's RequestID.
func (t *Ticket) ID() string { return t.id }

// Done is closed when the ticket resolves.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Wait blocks until the job ends or ctx does. Ending ctx only stops the waiting; the job
// goes on (cancel the context given to Submit to cancel the job). The result is the
// handler's result as it marshalled it ([]byte and string raw, else JSON).
func (t *Ticket) Wait(ctx context.Context) ([]byte, error) {
	select {
	case <-t.done:
		return t.result, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Progress returns the channel progress reports arrive on. It is closed when the ticket
// resolves. Reports are never allowed to block the job: when the reader falls behind,
// the oldest unread report is dropped for the newest.
func (t *Ticket) Progress() <-chan Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.progressLocked()
	return t.progress
}

// progressLocked makes the progress channel on first use: most jobs never report
// progress, and a buffered channel per job is most of a job's memory.
func (t *Ticket) progressLocked() {
	if t.progress == nil {
		t.progress = make(chan Progress, DefaultProgressBuf)
		if t.resolved {
			close(t.progress)
		}
	}
}

// resolve settles the ticket; only the first call counts. It reports whether it did.
func (t *Ticket) resolve(result []byte, err error) bool {
	t.mu.Lock()
	if t.resolved {
		t.mu.Unlock()
		return false
	}
	t.resolved, t.result, t.err = true, result, err
	if t.progress != nil {
		close(t.progress)
	}
	switch {
	case t.notifies:
		t.done <- struct{}{} // room for it: one value per ticket, and the channel came empty
	default:
		close(t.done)
	}
	t.mu.Unlock()
	return true
}

// resolveRaw is resolve for the observer interface: a Ticket has no use for the
// worker's encoded reply.
func (t *Ticket) resolveRaw(result []byte, err error, _ []byte) bool {
	return t.resolve(result, err)
}

// report delivers a progress report of the ticket's job without blocking on the reader.
func (t *Ticket) report(_ string, p Progress) {
	t.mu.Lock()
	if t.resolved {
		t.mu.Unlock()
		return
	}
	t.progressLocked()
	for {
		select {
		case t.progress <- p:
		default:
			select { // full: drop the oldest report
			case <-t.progress:
			default:
			}
			continue
		}
		break
	}
	t.mu.Unlock()
}
