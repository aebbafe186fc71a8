package cluster

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/banfleet/banfleet/store"
)

// recordsLog is a committed raft entry of one group per call, proposed in term
// proposed and committed in term committed.
func recordsLog(proposed, committed uint64, calls ...[]store.Record) *raft.Log {
	b := appendRecordsHeader(nil, proposed, len(calls))
	for _, recs := range calls {
		b = appendGroup(b, store.AppendBatch(nil, recs))
	}
	return &raft.Log{Type: raft.LogCommand, Term: committed, Data: b}
}

func groupErrs(t *testing.T, res any) []error {
	t.Helper()
	a, ok := res.(*applied)
	if !ok {
		t.Fatalf("response %T, want *applied", res)
	}
	if a.err != nil {
		t.Fatalf("entry refused: %v", a.err)
	}
	return a.errs
}

// An entry proposed in an earlier term than raft committed it in is refused whole
// (fencing by term): it changes nothing.
func TestFSMFencesStaleTerm(t *testing.T) {
	f := newFSM()
	res := f.Apply(recordsLog(3, 4, []store.Record{submitted("a", nil)})).(*applied)
	if !errors.Is(res.err, ErrStaleTerm) {
		t.Fatalf("stale entry: %v, want ErrStaleTerm", res.err)
	}
	if f.st.Len() != 0 || f.fenced.Load() != 1 {
		t.Fatalf("the stale entry changed the state (%d jobs)", f.st.Len())
	}
	errs := groupErrs(t, f.Apply(recordsLog(4, 4, []store.Record{submitted("a", nil)})))
	if errs[0] != nil || f.st.Lookup("a").Phase != store.PhaseQueued {
		t.Fatalf("entry of the current term: %v", errs[0])
	}
}

// A Resolved record of an attempt that is not the running one is refused (fencing by
// attempt), alone: the other groups of the entry are applied.
func TestFSMFencesStaleAttempt(t *testing.T) {
	f := newFSM()
	groupErrs(t, f.Apply(recordsLog(1, 1,
		[]store.Record{submitted("j", []byte("p")), store.AttemptStarted("j", 1, "w1")},
		[]store.Record{store.AttemptEnded("j", 1, true, "worker lost"), store.AttemptStarted("j", 2, "w2")},
	)))
	late := store.Resolved("j", store.Outcome{Result: []byte("old"), Worker: "w1", Attempt: 1}, time.Unix(5, 0))
	errs := groupErrs(t, f.Apply(recordsLog(1, 1, []store.Record{late}, []store.Record{submitted("k", nil)})))
	if !errors.Is(errs[0], ErrStaleAttempt) || !errors.Is(errs[0], store.ErrInvalid) {
		t.Fatalf("late reply of attempt 1: %v, want ErrStaleAttempt", errs[0])
	}
	if errs[1] != nil || f.st.Lookup("k").Phase != store.PhaseQueued {
		t.Fatalf("the other group of the entry: %v", errs[1])
	}
	if js := f.st.Lookup("j"); js.Phase != store.PhaseRunning || js.Attempt != 2 {
		t.Fatalf("job j is %v attempt %d, want running attempt 2", js.Phase, js.Attempt)
	}
	cur := store.Resolved("j", store.Outcome{Result: []byte("new"), Worker: "w2", Attempt: 2}, time.Unix(6, 0))
	if errs := groupErrs(t, f.Apply(recordsLog(1, 1, []store.Record{cur}))); errs[0] != nil {
		t.Fatalf("reply of the current attempt: %v", errs[0])
	}
	// An attempt started and resolved in one group is fenced against the one it starts.
	errs = groupErrs(t, f.Apply(recordsLog(1, 1, []store.Record{
		submitted("m", nil), store.AttemptStarted("m", 1, "w"),
		store.Resolved("m", store.Outcome{Attempt: 1, Worker: "w"}, time.Unix(7, 0)),
	})))
	if errs[0] != nil {
		t.Fatalf("attempt started and resolved in one group: %v", errs[0])
	}
}

// Announce entries tell the members where each serves; a snapshot keeps them and the
// state, and a damaged one is refused with an error that says what to do.
func TestFSMSnapshotRoundTrip(t *testing.T) {
	f := newFSM()
	f.Apply(&raft.Log{Type: raft.LogCommand, Term: 2, Data: appendAnnounce(nil, 2, "m1", "10.0.0.1:6789")})
	groupErrs(t, f.Apply(recordsLog(2, 2,
		[]store.Record{submitted("a", bytes.Repeat([]byte("z"), store.DefaultBlobThreshold)), store.AttemptStarted("a", 1, "w")},
		[]store.Record{store.BlobPut([]byte("blob"))},
	)))
	if f.addr("m1") != "10.0.0.1:6789" {
		t.Fatalf("announced address: %q", f.addr("m1"))
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.(*snapshot).write(&buf); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	if err := g.Restore(readCloser{bytes.NewReader(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.st.Snapshot(), f.st.Snapshot()) || g.addr("m1") != "10.0.0.1:6789" {
		t.Fatal("the restored state differs")
	}

	damaged := bytes.Clone(buf.Bytes())
	damaged[len(damaged)-10] ^= 0xff
	err = g.Restore(readCloser{bytes.NewReader(damaged)})
	if err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("damaged snapshot: %v, want an error that says what to do", err)
	}
	if !bytes.Equal(g.st.Snapshot(), f.st.Snapshot()) {
		t.Fatal("a refused snapshot changed the state")
	}
	if err := g.Restore(readCloser{bytes.NewReader(buf.Bytes()[:20])}); err == nil {
		t.Fatal("a truncated snapshot was restored")
	}
}

// Bytes that are not an entry are refused, never a panic.
func TestFSMMalformedEntry(t *testing.T) {
	f := newFSM()
	good := recordsLog(1, 1, []store.Record{submitted("a", nil)}).Data
	for _, b := range [][]byte{nil, []byte("BF"), []byte("XX\x01\x01"), good[:len(good)-1], append(bytes.Clone(good), 0)} {
		res := f.Apply(&raft.Log{Type: raft.LogCommand, Term: 1, Data: b}).(*applied)
		if !errors.Is(res.err, errMalformedEntry) {
			t.Errorf("%q: %v, want errMalformedEntry", b, res.err)
		}
	}
	if f.st.Len() != 0 {
		t.Fatal("a malformed entry changed the state")
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
