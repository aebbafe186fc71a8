package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"
)

// applyModel applies n calls of a model to s, checking that exactly the calls the
// model made invalid are refused.
func applyModel(t testing.TB, s *State, m *model, n int) {
	t.Helper()
	for range n {
		recs, valid := m.call()
		err := s.Apply(prepare(recs, DefaultBlobThreshold)...)
		switch {
		case valid && err != nil:
			t.Fatalf("valid call %v refused: %v", recs, err)
		case !valid && !errors.Is(err, ErrInvalid):
			t.Fatalf("invalid call %v: %v, want ErrInvalid", recs, err)
		}
	}
}

func TestStateLifecycle(t *testing.T) {
	s := NewState()
	spec := Spec{ID: "a", Type: "t", Payload: []byte("p"), MaxAttempts: 3, SubmittedAt: t0}
	mustApply(t, s, Submitted(spec), Submitted(Spec{ID: "b", Type: "t"}))
	if js := s.Lookup("a"); js.Phase != PhaseQueued || js.Seq != 1 || string(js.Spec.Payload) != "p" {
		t.Fatalf("after submit: %+v", js)
	}
	mustApply(t, s, AttemptStarted("a", 1, "w1"))
	mustApply(t, s, AttemptEnded("a", 1, true, "worker lost"))
	mustApply(t, s, AttemptStarted("a", 2, "w2"))
	js := s.Lookup("a")
	if js.Phase != PhaseRunning || js.Attempt != 2 || js.Worker != "w2" || js.Spent != 1 || js.LastError != "worker lost" {
		t.Fatalf("running: %+v", js)
	}
	if q, r, d := s.Counts(); q != 1 || r != 1 || d != 0 {
		t.Fatalf("counts %d %d %d", q, r, d)
	}
	un := s.Unresolved()
	if len(un) != 2 || un[0].Spec.ID != "a" || un[1].Spec.ID != "b" {
		t.Fatalf("unresolved not in submission order: %+v", un)
	}
	mustApply(t, s, Resolved("a", Outcome{Result: []byte("r"), Worker: "w2", Attempt: 2}, t0.Add(time.Second)))
	js = s.Lookup("a")
	if js.Phase != PhaseResolved || string(js.Outcome.Result) != "r" || !js.ResolvedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("resolved: %+v", js)
	}
	if js.Spec.Payload != nil {
		t.Error("a resolved job keeps its payload")
	}
	if _, ok := s.Payload("a"); ok {
		t.Error("Payload of a resolved job")
	}
	if out := s.Outcomes(); len(out) != 1 || out[0].Spec.ID != "a" {
		t.Fatalf("outcomes: %+v", out)
	}
	mustApply(t, s, Collected("a"))
	if js := s.Lookup("a"); js.Phase != PhaseUnknown {
		t.Fatalf("collected: %+v", js)
	}
	// The id may be used again; it gets a new Seq.
	mustApply(t, s, Submitted(spec))
	if js := s.Lookup("a"); js.Seq != 3 || js.Attempt != 0 {
		t.Fatalf("resubmitted: %+v", js)
	}
	// Resolving a queued job (cancelled, timed out before it ran).
	mustApply(t, s, Resolved("b", Outcome{Err: ErrorCanceled, Message: "cancelled"}, t0))
}

func TestStateRejects(t *testing.T) {
	base := func() *State {
		s := NewState()
		mustApply(t, s,
			Submitted(Spec{ID: "q", Type: "t"}),
			Submitted(Spec{ID: "r", Type: "t"}), AttemptStarted("r", 2, "w"),
			Submitted(Spec{ID: "d", Type: "t"}), Resolved("d", Outcome{}, t0),
			BlobPut([]byte("blob")))
		return s
	}
	big := bigPayload(5000, "x")
	cases := []struct {
		name string
		rec  Record
		want error
	}{
		{"duplicate id", Submitted(Spec{ID: "q", Type: "t"}), ErrDuplicateJob},
		{"duplicate resolved id", Submitted(Spec{ID: "d", Type: "t"}), ErrDuplicateJob},
		{"attempt unknown", AttemptStarted("x", 1, "w"), ErrUnknownJob},
		{"attempt running", AttemptStarted("r", 3, "w"), ErrWrongPhase},
		{"attempt resolved", AttemptStarted("d", 1, "w"), ErrWrongPhase},
		{"attempt backwards", AttemptStarted("q", 1, "w"), nil}, // fine: q had none
		{"end queued", AttemptEnded("q", 1, false, ""), ErrWrongPhase},
		{"end other attempt", AttemptEnded("r", 1, false, ""), ErrWrongPhase},
		{"resolve twice", Resolved("d", Outcome{}, t0), ErrWrongPhase},
		{"resolve unknown", Resolved("x", Outcome{}, t0), ErrUnknownJob},
		{"collect queued", Collected("q"), ErrWrongPhase},
		{"collect running", Collected("r"), ErrWrongPhase},
		{"collect unknown", Collected("x"), ErrUnknownJob},
		{"delete unknown blob", BlobDeleted(BlobHash([]byte("other"))), ErrUnknownBlob},
		{"ref unknown blob", Submitted(Spec{ID: "n", Type: "t", PayloadRef: BlobHash(big)}), ErrUnknownBlob},
		{"payload not its hash", Submitted(Spec{ID: "n", Type: "t", PayloadRef: BlobHash(big), Payload: []byte("other")}), ErrBadRecord},
		{"blob not its hash", Record{Kind: KindBlobPut, Hash: BlobHash(big), Data: []byte("other")}, ErrBadRecord},
		{"no type", Submitted(Spec{ID: "n"}), ErrBadRecord},
		{"unknown kind", Record{Kind: 42, ID: "q"}, ErrBadRecord},
		{"nil spec", Record{Kind: KindSubmitted, ID: "q"}, ErrBadRecord},
		{"result of a failure", Resolved("q", Outcome{Err: ErrorRemote, Result: []byte("x")}, t0), ErrBadRecord},
	}
	for _, c := range cases {
		s := base()
		before := s.Snapshot()
		err := s.Apply(Submitted(Spec{ID: "first", Type: "t"}), c.rec)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want %v (and ErrInvalid)", c.name, err, c.want)
		}
		if !bytes.Equal(s.Snapshot(), before) {
			t.Errorf("%s: a refused call changed the state", c.name)
		}
		if s.Lookup("first").Phase != PhaseUnknown {
			t.Errorf("%s: the call's first record stayed applied", c.name)
		}
	}
}

func TestStateBlobRefs(t *testing.T) {
	s := NewState()
	big := bigPayload(8000, "shared;")
	h := BlobHash(big)
	for _, id := range []string{"a", "b", "c"} {
		mustApply(t, s, prepare([]Record{Submitted(Spec{ID: id, Type: "t", Payload: big})}, DefaultBlobThreshold)...)
	}
	if bl := s.Blobs(); len(bl) != 1 || bl[0].Refs != 3 || bl[0].Pinned || bl[0].Size != len(big) {
		t.Fatalf("blobs: %+v", bl)
	}
	if js := s.Lookup("a"); js.Spec.Payload != nil || js.Spec.PayloadRef != h {
		t.Fatalf("spec keeps the payload inline: %+v", js.Spec)
	}
	if p, ok := s.Payload("a"); !ok || !bytes.Equal(p, big) {
		t.Fatal("Payload does not follow the reference")
	}
	// A job may refer to a held blob without carrying it.
	mustApply(t, s, Submitted(Spec{ID: "d", Type: "t", PayloadRef: h}))
	// The owner pins it too; resolving every job leaves it held.
	mustApply(t, s, BlobPut(big))
	for _, id := range []string{"a", "b", "c", "d"} {
		mustApply(t, s, Resolved(id, Outcome{}, t0))
	}
	if bl := s.Blobs(); len(bl) != 1 || bl[0].Refs != 0 || !bl[0].Pinned {
		t.Fatalf("blobs after resolving: %+v", bl)
	}
	// A result the same as the payload: one blob, referred to by the outcome.
	mustApply(t, s, prepare([]Record{Submitted(Spec{ID: "e", Type: "t", Payload: big})}, DefaultBlobThreshold)...)
	mustApply(t, s, prepare([]Record{Resolved("e", Outcome{Result: big}, t0)}, DefaultBlobThreshold)...)
	mustApply(t, s, BlobDeleted(h))
	if bl := s.Blobs(); len(bl) != 1 || bl[0].Refs != 1 || bl[0].Pinned {
		t.Fatalf("after unpinning, the outcome still refers to it: %+v", bl)
	}
	if _, ok := s.Blob(h); !ok {
		t.Fatal("blob dropped while referred to")
	}
	mustApply(t, s, Collected("e"))
	if len(s.Blobs()) != 0 || s.BlobBytes() != 0 {
		t.Fatalf("blob not dropped with its last reference: %+v", s.Blobs())
	}
	// Deleting it again is refused: it is not held.
	if err := s.Apply(BlobDeleted(h)); !errors.Is(err, ErrUnknownBlob) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestStateDeterministic(t *testing.T) {
	// The same records, applied one by one, in calls, or decoded from batches,
	// make the same state.
	m := newModel(7)
	var calls [][]Record
	ref := NewState()
	for range 3000 {
		recs, _ := m.call()
		recs = prepare(recs, DefaultBlobThreshold)
		if ref.Apply(recs...) == nil {
			calls = append(calls, recs)
		}
	}
	one, batched := NewState(), NewState()
	var all []Record
	for _, c := range calls {
		all = append(all, c...)
		for _, r := range c {
			mustApply(t, one, r)
		}
	}
	for i := 0; i < len(all); i += 100 {
		if err := batched.ApplyBatch(AppendBatch(nil, all[i:min(i+100, len(all))])); err != nil {
			t.Fatal(err)
		}
	}
	want := ref.Snapshot()
	if !bytes.Equal(one.Snapshot(), want) || !bytes.Equal(batched.Snapshot(), want) {
		t.Fatal("states differ")
	}
	if q, r, d := ref.Counts(); q+r+d == 0 || len(ref.Blobs()) == 0 {
		t.Fatalf("the model made an empty state: %d %d %d", q, r, d)
	}
}

func TestSnapshotRestore(t *testing.T) {
	s := NewState()
	applyModel(t, s, newModel(3), 2000)
	snap := s.Snapshot()
	r := NewState()
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Snapshot(), snap) {
		t.Fatal("restored state differs")
	}
	if rq, rr, rd := r.Counts(); rq+rr+rd != s.Len() || r.BlobBytes() != s.BlobBytes() {
		t.Fatal("restored counts differ")
	}
	// A restored state goes on applying as the original does.
	m := newModel(3)
	applyModel(t, NewState(), m, 2000) // the same model, advanced alike
	for range 500 {
		recs, _ := m.call()
		recs = prepare(recs, DefaultBlobThreshold)
		if (s.Apply(recs...) == nil) != (r.Apply(recs...) == nil) {
			t.Fatal("original and restored states disagree on a call")
		}
	}
	if !bytes.Equal(r.Snapshot(), s.Snapshot()) {
		t.Fatal("states diverged after restoring")
	}
	// Damage is refused, and leaves the state as it was.
	before := r.Snapshot()
	for _, i := range []int{0, 5, len(snap) / 2, len(snap) - 1} {
		bad := bytes.Clone(snap)
		bad[i] ^= 0x40
		if err := r.Restore(bad); err == nil {
			t.Errorf("snapshot damaged at %d restored", i)
		}
	}
	if err := r.Restore(snap[:len(snap)/2]); err == nil {
		t.Error("half a snapshot restored")
	}
	if !bytes.Equal(r.Snapshot(), before) {
		t.Error("a failed Restore changed the state")
	}
}

// FuzzRestore: restoring never panics (the checksum is made valid, so the rows
// themselves are fuzzed), and what restores snapshots back to the same bytes.
func FuzzRestore(f *testing.F) {
	// Small payloads (a low blob threshold makes blobs of them): the fuzzer crawls
	// on large inputs.
	s := NewState()
	blob := []byte("a shared payload")
	mustApply(f, s, prepare([]Record{
		Submitted(Spec{ID: "q", Type: "t", Payload: []byte("p"), Trace: map[string]string{"a": "b"}, SubmittedAt: t0}),
		Submitted(Spec{ID: "r", Type: "t", Payload: blob}), AttemptStarted("r", 1, "w"),
		Submitted(Spec{ID: "d", Type: "t", Payload: blob}), Resolved("d", Outcome{Result: blob, Worker: "w", Attempt: 1}, t0),
		BlobPut([]byte("pinned")),
	}, 8)...)
	f.Add(s.Snapshot()[:len(s.Snapshot())-4])
	f.Add(NewState().Snapshot()[:len(NewState().Snapshot())-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		b := binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
		r := NewState()
		if err := r.Restore(b); err != nil {
			return
		}
		snap := r.Snapshot()
		r2 := NewState()
		if err := r2.Restore(snap); err != nil {
			t.Fatalf("a restored state's snapshot does not restore: %v", err)
		}
		if !bytes.Equal(r2.Snapshot(), snap) {
			t.Fatal("snapshot not stable")
		}
	})
}

func TestExpired(t *testing.T) {
	s := NewState()
	for i, id := range []string{"a", "b", "c", "d"} {
		mustApply(t, s, Submitted(Spec{ID: id, Type: "t"}))
		if id != "d" {
			mustApply(t, s, Resolved(id, Outcome{}, t0.Add(time.Duration(3-i)*time.Minute)))
		}
	}
	got := s.Expired(t0.Add(2 * time.Minute))
	if len(got) != 2 || got[0] != "c" || got[1] != "b" {
		t.Fatalf("expired %v, want [c b] (oldest first, at or before the cutoff)", got)
	}
}
