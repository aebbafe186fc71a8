package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// rawtcp-relay-durable-w4 is rawtcp-relay-w4 that, like a durable master, forwards a
// request only once it is on disk: the floor of dispatch-durable-w4, with nothing of
// banfleet in it. The relay's read loop hands each request to a log; one committer
// goroutine writes whatever requests are waiting with one write into a file filled with
// zeros ahead of its frames (so that fdatasync writes data pages alone, as banfleet's
// store does), fdatasyncs it, and only then forwards them to their workers, one append
// and one signal per worker touched. Answers are forwarded as in rawtcp-relay-w4. So a
// request waits for the sync in progress to end and then for its own: group commit,
// one fdatasync per batch, the least a relay can do that never forwards what a crash
// would lose. (banfleet's store keeps two syncs in flight; on this disk two concurrent
// fdatasyncs each take about 1.5x one alone, docs/benchmarks.md.)
//
// With early set it is rawtcp-relay-durable-early-w4: a request is forwarded at once,
// while it is logged, and its answer is held until the request is on disk. That is the
// same guarantee to the caller (no answer for a request a crash would lose), with the
// worker's round trip overlapping the sync.
func newRawRelayDurable(workers int, early bool) *rawRelay {
	return &rawRelay{workers: workers, durable: true, early: early}
}

// relayLogBytes is the size of the zero-filled log file; writes wrap to its start.
const relayLogBytes = 64 << 20

// relayLog is the durable relay's log and its committer.
type relayLog struct {
	dir string
	f   *os.File
	off int64

	mu      sync.Mutex
	frames  []byte         // requests waiting for the next commit, framed as on the wire
	targets []relayPending // where each waiting request goes, in order (not early)
	closed  bool
	// early: requests were forwarded already (dst nil in targets); batch is the
	// number of the batch being gathered, durable the last one on disk, inBatch
	// the batch of each request not yet durable, and held the answers that came
	// before their request was durable, by batch.
	early   bool
	batch   uint64
	durable uint64
	inBatch map[uint64]uint64
	held    map[uint64][]relayPending
	kick    chan struct{} // cap 1
	done    chan struct{}
}

// relayPending is one logged request: its destination and where its frame lies in the
// batch.
type relayPending struct {
	dst        *relayConn
	id         uint64
	start, end int
	data       []byte // a held answer's payload (early)
}

// openRelayLog creates the zero-filled log in a temporary directory and starts its
// committer.
func openRelayLog(early bool) (*relayLog, error) {
	dir, err := os.MkdirTemp("", "rawtcp-relay-durable-")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		_, err = f.WriteAt(make([]byte, relayLogBytes), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("rawtcp-relay-durable: the log: %w", err)
	}
	l := &relayLog{dir: dir, f: f, kick: make(chan struct{}, 1), done: make(chan struct{}),
		early: early, batch: 1, inBatch: make(map[uint64]uint64), held: make(map[uint64][]relayPending)}
	go l.commitLoop()
	return l, nil
}

// add logs one request for dst; it is forwarded once committed (early: it has been
// forwarded, dst is nil, and its answer waits for the commit).
func (l *relayLog) add(dst *relayConn, id uint64, p []byte) {
	l.mu.Lock()
	start := len(l.frames)
	l.frames = appendMuxFrame(l.frames, id, p)
	if l.early {
		l.inBatch[id] = l.batch // forwarded already: only its answer waits
	} else {
		l.targets = append(l.targets, relayPending{dst: dst, id: id, start: start + muxHeader, end: len(l.frames)})
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// answer forwards an answer to dst at once if its request is durable (or unknown), and
// otherwise holds it (copied) until the request's batch is: it reports whether dst
// was appended to now.
func (l *relayLog) answer(dst *relayConn, relayed, id uint64, p []byte) bool {
	l.mu.Lock()
	b, waiting := l.inBatch[relayed]
	if waiting {
		delete(l.inBatch, relayed)
	}
	if waiting && b > l.durable {
		l.held[b] = append(l.held[b], relayPending{dst: dst, id: id, data: append([]byte(nil), p...)})
		l.mu.Unlock()
		return false
	}
	l.mu.Unlock()
	return dst.appendFrame(id, p)
}

// commitLoop commits whatever is waiting, batch after batch, and forwards each batch
// once it is durable.
func (l *relayLog) commitLoop() {
	defer close(l.done)
	var frames []byte
	var targets []relayPending
	var touched []*relayConn
	for range l.kick {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		frames, l.frames = l.frames, frames[:0]
		targets, l.targets = l.targets, targets[:0]
		batch := l.batch
		l.batch++
		l.mu.Unlock()
		if len(frames) == 0 {
			continue
		}
		if l.off+int64(len(frames)) > relayLogBytes {
			l.off = 0
		}
		if _, err := l.f.WriteAt(frames, l.off); err != nil {
			l.fail(err)
			return
		}
		if err := fdatasync(l.f); err != nil {
			l.fail(err)
			return
		}
		l.off += int64(len(frames))
		if l.early {
			l.mu.Lock()
			l.durable = batch
			answers := l.held[batch]
			delete(l.held, batch)
			l.mu.Unlock()
			for _, a := range answers {
				if a.dst.appendFrame(a.id, a.data) {
					touched = append(touched, a.dst)
				}
			}
		} else {
			for _, t := range targets {
				if t.dst.appendFrame(t.id, frames[t.start:t.end]) {
					touched = append(touched, t.dst)
				}
			}
		}
		for _, c := range touched {
			c.flush()
		}
		clear(touched)
		touched = touched[:0]
		clear(targets)
	}
}

// fail reports why the committer stopped: nothing is forwarded any more, and the
// calls waiting end with their context, so the run's errors say why.
func (l *relayLog) fail(err error) {
	fmt.Fprintf(os.Stderr, "rawtcp-relay-durable: the log failed, forwarding stops: %v\n", err)
}

// close stops the committer and removes the log.
func (l *relayLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	<-l.done
	l.f.Close()
	os.RemoveAll(l.dir)
}
