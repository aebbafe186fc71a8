package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// t0 is the tests' clock origin: records carry their times, so tests need no clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func bigPayload(n int, tag string) []byte {
	return bytes.Repeat([]byte(tag), n/len(tag)+1)[:n]
}

// samples has a record of every kind with every field set.
func samples() []Record {
	big := bigPayload(5000, "big-payload;")
	return []Record{
		Submitted(Spec{ID: "job-1", Type: "backtest", Payload: []byte(`{"p":1}`), Deadline: t0.Add(time.Minute),
			Timeout: time.Minute, MaxAttempts: 3, Caller: "client@10.0.0.7:5123",
			Trace:       map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "x=1"},
			SubmittedAt: t0}),
		Submitted(Spec{ID: "job-2", Type: "t", PayloadRef: BlobHash(big), Payload: big}),
		Submitted(Spec{ID: "job-3", Type: "t", PayloadRef: BlobHash(big)}),
		AttemptStarted("job-1", 1, "worker-a"),
		AttemptEnded("job-1", 1, true, "worker lost"),
		Resolved("job-1", Outcome{Result: []byte("ok"), Worker: "worker-a", Attempt: 2}, t0.Add(2*time.Second)),
		Resolved("job-2", Outcome{Err: ErrorRemote, Code: "E42", Message: "bad input", Retryable: true, Worker: "w", Attempt: 1}, t0.Add(3*time.Second)),
		Resolved("job-3", Outcome{ResultRef: BlobHash(big), Result: big}, t0.Add(3*time.Second)),
		Collected("job-1"),
		BlobPut([]byte("some blob")),
		BlobDeleted(BlobHash([]byte("some blob"))),
	}
}

func encode(r Record) []byte { return AppendRecord(nil, &r) }

// model generates random record sequences for a state: mostly valid transitions, with
// some invalid ones mixed in (which every store must refuse alike).
type model struct {
	rng      *rand.Rand
	now      time.Time
	next     int
	queued   map[string]int // id → last attempt
	running  map[string]int
	resolved []string
	pinned   []string
	payloads [][]byte // shared large payloads
}

func newModel(seed uint64) *model {
	m := &model{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: t0,
		queued: map[string]int{}, running: map[string]int{},
	}
	for i := range 3 {
		m.payloads = append(m.payloads, bigPayload(4096+1000*i, fmt.Sprintf("shared-%d;", i)))
	}
	return m
}

func pick[V any](rng *rand.Rand, m map[string]V) (string, V, bool) {
	var zk string
	var zv V
	if len(m) == 0 {
		return zk, zv, false
	}
	n := rng.IntN(len(m))
	for k, v := range m {
		if n == 0 {
			return k, v, true
		}
		n--
	}
	return zk, zv, false
}

// call returns the records of one Apply call (1 to 4 records) and whether the state
// must accept them. The model advances as if a valid call was applied; an invalid call
// (one record the state must refuse) leaves it as it was.
func (m *model) call() ([]Record, bool) {
	m.now = m.now.Add(time.Duration(m.rng.IntN(1000)) * time.Millisecond)
	if m.rng.IntN(12) == 0 {
		return []Record{m.invalid()}, false
	}
	n := 1 + m.rng.IntN(4)
	out := make([]Record, 0, n)
	for range n {
		out = append(out, m.valid())
	}
	return out, true
}

func (m *model) valid() Record {
	for {
		switch m.rng.IntN(9) {
		case 0, 1:
			m.next++
			id := fmt.Sprintf("job-%d", m.next)
			spec := Spec{ID: id, Type: []string{"a", "b", "c"}[m.rng.IntN(3)], MaxAttempts: 1 + m.rng.IntN(3), SubmittedAt: m.now}
			switch m.rng.IntN(4) {
			case 0:
				spec.Payload = m.payloads[m.rng.IntN(len(m.payloads))] // large: held as a blob
			case 1:
				spec.Payload = fmt.Appendf(nil, "payload of %s", id)
			case 2:
				spec.Trace = map[string]string{"traceparent": id}
				spec.Deadline = m.now.Add(time.Minute)
			}
			m.queued[id] = 0
			return Submitted(spec)
		case 2, 3:
			if id, last, ok := pick(m.rng, m.queued); ok {
				delete(m.queued, id)
				m.running[id] = last + 1 + m.rng.IntN(2)
				return AttemptStarted(id, m.running[id], fmt.Sprintf("w%d", m.rng.IntN(4)))
			}
		case 4:
			if id, n, ok := pick(m.rng, m.running); ok {
				delete(m.running, id)
				m.queued[id] = n
				return AttemptEnded(id, n, m.rng.IntN(2) == 0, "lost")
			}
		case 5, 6:
			src := m.running
			if m.rng.IntN(4) == 0 {
				src = m.queued
			}
			if id, n, ok := pick(m.rng, src); ok {
				delete(src, id)
				m.resolved = append(m.resolved, id)
				out := Outcome{Result: fmt.Appendf(nil, "result %s", id), Attempt: n, Worker: "w"}
				switch m.rng.IntN(3) {
				case 0:
					out = Outcome{Err: ErrorRemote, Code: "E", Message: "failed", Attempt: n}
				case 1:
					out.Result = m.payloads[m.rng.IntN(len(m.payloads))]
				}
				return Resolved(id, out, m.now)
			}
		case 7:
			if len(m.resolved) > 0 {
				i := m.rng.IntN(len(m.resolved))
				id := m.resolved[i]
				m.resolved = append(m.resolved[:i], m.resolved[i+1:]...)
				return Collected(id)
			}
		case 8:
			if len(m.pinned) > 0 && m.rng.IntN(2) == 0 {
				i := m.rng.IntN(len(m.pinned))
				h := m.pinned[i]
				m.pinned = append(m.pinned[:i], m.pinned[i+1:]...)
				return BlobDeleted(h)
			}
			data := m.payloads[m.rng.IntN(len(m.payloads))]
			if m.rng.IntN(2) == 0 {
				data = fmt.Appendf(nil, "user blob %d", m.rng.IntN(5))
			}
			r := BlobPut(data)
			for _, h := range m.pinned {
				if h == r.Hash {
					return r // pinning twice is allowed, and changes nothing
				}
			}
			m.pinned = append(m.pinned, r.Hash)
			return r
		}
	}
}

// invalid returns a record the state must refuse, leaving the model as it is.
func (m *model) invalid() Record {
	switch m.rng.IntN(6) {
	case 0:
		return AttemptStarted("nope", 1, "w")
	case 1:
		if id, _, ok := pick(m.rng, m.running); ok {
			return AttemptStarted(id, 99, "w") // not queued
		}
	case 2:
		if id, n, ok := pick(m.rng, m.queued); ok {
			return AttemptEnded(id, n+1, false, "") // not running
		}
	case 3:
		if len(m.resolved) > 0 {
			return Resolved(m.resolved[0], Outcome{}, m.now) // twice
		}
	case 4:
		if id, _, ok := pick(m.rng, m.queued); ok {
			return Collected(id) // unresolved
		}
	}
	return BlobDeleted(BlobHash([]byte("never put")))
}

func mustApply(t testing.TB, s interface{ Apply(...Record) error }, recs ...Record) {
	t.Helper()
	if err := s.Apply(recs...); err != nil {
		t.Fatal(err)
	}
}
