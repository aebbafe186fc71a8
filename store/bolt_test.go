package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

var ctx = context.Background()

func openTemp(t testing.TB, opts ...Option) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jobs.db")
	b, err := OpenBolt(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b, path
}

func reopen(t testing.TB, b *Bolt, opts ...Option) *Bolt {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := OpenBolt(b.Path(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b2
}

func load(t testing.TB, s Store) *State {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBoltReopen(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t)
	big := bigPayload(100<<10, "large payload;")
	recs := []Record{
		Submitted(Spec{ID: "queued", Type: "t", Payload: []byte("small"), Deadline: t0.Add(time.Hour), Timeout: time.Hour,
			MaxAttempts: 3, Caller: "c1", Trace: map[string]string{"traceparent": "00-x"}, SubmittedAt: t0}),
		Submitted(Spec{ID: "orphan", Type: "t", Payload: big}),
		AttemptStarted("orphan", 1, "w1"),
		Submitted(Spec{ID: "retried", Type: "t", Payload: big}),
		AttemptStarted("retried", 1, "w1"),
		AttemptEnded("retried", 1, true, "worker lost"),
		Submitted(Spec{ID: "done", Type: "t"}),
		AttemptStarted("done", 1, "w2"),
		Resolved("done", Outcome{Result: big, Worker: "w2", Attempt: 1}, t0),
		BlobPut([]byte("user blob")),
	}
	for _, r := range recs {
		if err := b.Apply(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	want := load(t, b).Snapshot()
	b = reopen(t, b)
	defer b.Close()
	st := load(t, b)
	if !bytes.Equal(st.Snapshot(), want) {
		t.Fatal("the reopened state differs")
	}
	if js := b.Lookup("orphan"); js.Phase != PhaseRunning || js.Attempt != 1 || js.Worker != "w1" {
		t.Errorf("orphan came back as %+v", js)
	}
	if js := b.Lookup("retried"); js.Phase != PhaseQueued || js.Attempt != 1 || js.Spent != 1 || js.LastError != "worker lost" {
		t.Errorf("retried job came back as %+v", js)
	}
	if js := b.Lookup("queued"); js.Spec.Caller != "c1" || !js.Spec.Deadline.Equal(t0.Add(time.Hour)) || js.Spec.Trace["traceparent"] != "00-x" {
		t.Errorf("spec came back as %+v", js.Spec)
	}
	js := b.Lookup("done")
	if js.Phase != PhaseResolved || js.Outcome.ResultRef != BlobHash(big) {
		t.Fatalf("resolved job came back as %+v", js)
	}
	if data, err := b.Blob(js.Outcome.ResultRef); err != nil || !bytes.Equal(data, big) {
		t.Fatalf("result blob: %v", err)
	}
	if p, ok := st.Payload("orphan"); !ok || !bytes.Equal(p, big) {
		t.Fatal("orphan's payload lost")
	}
	// The payload of two jobs and the result of a third are one blob; with the
	// user's blob, two in all.
	if s := b.Stats(); s.Blobs != 2 || s.Jobs != 4 || s.Queued != 2 || s.Running != 1 || s.Resolved != 1 {
		t.Errorf("stats %+v", s)
	}
	if _, err := b.Blob(BlobHash([]byte("nothing"))); !errors.Is(err, ErrUnknownBlob) {
		t.Errorf("unknown blob: %v", err)
	}
}

// TestReplayEquivalence: random record sequences applied to a Mem and to a Bolt store
// (closed and reopened on the way) leave identical states, and both refuse exactly the
// same calls.
func TestReplayEquivalence(t *testing.T) {
	leakcheck.Check(t)
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem := NewMem()
			opts := []Option{WithMaxDelay(0)}
			if seed > 0 {
				opts = append(opts, WithNoSync(true)) // the file's contents are what is tested
			}
			b, _ := openTemp(t, opts...)
			m := newModel(seed)
			for i := range 1500 {
				recs, valid := m.call()
				em, eb := mem.Apply(ctx, recs...), b.Apply(ctx, recs...)
				if (em == nil) != valid || (eb == nil) != valid {
					t.Fatalf("call %d (%v, valid %v): mem %v, bolt %v", i, recs, valid, em, eb)
				}
				if i%500 == 499 {
					b = reopen(t, b, opts...)
				}
			}
			want := load(t, mem).Snapshot()
			if got := load(t, b).Snapshot(); !bytes.Equal(got, want) {
				t.Fatal("bolt's state differs from mem's before reopening")
			}
			b = reopen(t, b)
			defer b.Close()
			if got := load(t, b).Snapshot(); !bytes.Equal(got, want) {
				t.Fatal("bolt's reopened state differs from mem's")
			}
			ms, bs := mem.Stats(), b.Stats()
			if ms.Jobs != bs.Jobs || ms.Blobs != bs.Blobs || ms.BlobBytes != bs.BlobBytes || ms.Jobs == 0 {
				t.Fatalf("stats differ: mem %+v, bolt %+v", ms, bs)
			}
		})
	}
}

// lifecycle applies the four records of a job's life, one Apply each, as a master does.
func lifecycle(s Store, id string, payload []byte) error {
	steps := []Record{
		Submitted(Spec{ID: id, Type: "echo", Payload: payload, MaxAttempts: 3}),
		AttemptStarted(id, 1, "w"),
		Resolved(id, Outcome{Result: payload, Worker: "w", Attempt: 1}, t0),
		Collected(id),
	}
	for _, r := range steps {
		if err := s.Apply(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func TestBoltConcurrentApply(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t)
	const callers, jobs = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for j := range jobs {
				id := fmt.Sprintf("c%d-j%d", c, j)
				if err := lifecycle(b, id, []byte(id)); err != nil {
					errs <- err
					return
				}
				if j == jobs-1 {
					// Leave one job per caller queued, to see it after reopening.
					errs <- b.Apply(ctx, Submitted(Spec{ID: id + "-left", Type: "echo"}))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := b.Stats()
	t.Logf("%d records in %d commits: %.1f records per commit, at most %d", s.Records, s.Commits, s.MeanBatch, s.MaxBatch)
	if s.Records != callers*(jobs*4+1) || s.Queued != callers || s.Jobs != callers {
		t.Fatalf("stats %+v", s)
	}
	if s.Commits >= s.Records/2 {
		t.Errorf("%d commits for %d records: no group commit", s.Commits, s.Records)
	}
	b = reopen(t, b)
	defer b.Close()
	if st := load(t, b); len(st.Unresolved()) != callers {
		t.Fatalf("%d jobs after reopening, want %d", len(st.Unresolved()), callers)
	}
}

// TestBoltInvalidCallAlone: a refused call in a batch costs the other calls nothing.
func TestBoltInvalidCallAlone(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t)
	defer b.Close()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			r := Submitted(Spec{ID: fmt.Sprint(i), Type: "t"})
			if i%2 == 1 {
				errs[i] = b.Apply(ctx, r, AttemptStarted("no such job", 1, "w"))
			} else {
				errs[i] = b.Apply(ctx, r)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 && !errors.Is(err, ErrUnknownJob) {
			t.Errorf("call %d: %v, want ErrUnknownJob", i, err)
		}
		if i%2 == 0 && err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if s := b.Stats(); s.Jobs != 8 || s.Rejected != 8 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBoltClosed(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t)
	if err := b.Apply(ctx, Submitted(Spec{ID: "a", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Apply(ctx, Submitted(Spec{ID: "b", Type: "t"})); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if _, err := b.Load(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
	if _, err := b.Expire(ctx, t0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Expire after Close: %v", err)
	}
	b2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.Lookup("a").Phase != PhaseQueued {
		t.Fatal("job lost")
	}
}

// TestBoltCloseCommitsPending: calls accepted before Close are committed, not dropped.
func TestBoltCloseCommitsPending(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t)
	// Hold the committer in its first batch, so the other calls stay queued.
	taken, release := make(chan int, 1), make(chan struct{})
	first := true
	b.testHookCommit = func(n int) {
		if first {
			first = false
			taken <- n
			<-release
		}
	}
	var wg sync.WaitGroup
	accepted := make(chan string, 32)
	for i := range 32 {
		wg.Go(func() {
			id := fmt.Sprint(i)
			if err := b.Apply(ctx, Submitted(Spec{ID: id, Type: "t"})); err == nil {
				accepted <- id
			} else if !errors.Is(err, ErrClosed) {
				t.Error(err)
			}
		})
	}
	inFirst := <-taken
	for b.pendingCount()+inFirst < 32 {
		waitForPending()
	}
	closed := make(chan error)
	go func() { closed <- b.Close() }()
	for !b.isClosing() {
		waitForPending()
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(accepted)
	b2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	n := 0
	for id := range accepted {
		n++
		if b2.Lookup(id).Phase != PhaseQueued {
			t.Errorf("accepted job %s lost", id)
		}
	}
	if n != 32 {
		t.Fatalf("%d of 32 calls accepted", n)
	}
}

func TestExpire(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t, WithRetention(time.Minute))
	defer b.Close()
	for _, s := range []Store{NewMem(WithRetention(time.Minute)), b} {
		for i, id := range []string{"a", "b", "c"} {
			if err := s.Apply(ctx, Submitted(Spec{ID: id, Type: "t"}), Resolved(id, Outcome{}, t0.Add(time.Duration(i)*time.Minute))); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Apply(ctx, Submitted(Spec{ID: "q", Type: "t"})); err != nil {
			t.Fatal(err)
		}
		got, err := s.Expire(ctx, t0.Add(2*time.Minute))
		if err != nil || len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Fatalf("%T: expired %v, %v; want [a b]", s, got, err)
		}
		if s.Lookup("a").Phase != PhaseUnknown || s.Lookup("c").Phase != PhaseResolved || s.Lookup("q").Phase != PhaseQueued {
			t.Fatalf("%T: wrong jobs forgotten", s)
		}
		if got, err := s.Expire(ctx, t0.Add(2*time.Minute)); err != nil || len(got) != 0 {
			t.Fatalf("%T: second sweep dropped %v, %v", s, got, err)
		}
	}
}

// TestBoltCommitFailure: once a commit fails, the store refuses everything after it
// with ErrFailed rather than apply records it may not be able to keep.
func TestBoltCommitFailure(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t, WithCheckpointInterval(time.Hour)) // b.seg stays as it is
	if err := b.Apply(ctx, Submitted(Spec{ID: "a", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	b.seg.f.Close() // the log is gone from under the committer
	err := b.Apply(ctx, Submitted(Spec{ID: "b", Type: "t"}))
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("Apply on a failed commit: %v", err)
	}
	if err := b.Apply(ctx, Submitted(Spec{ID: "c", Type: "t"})); !errors.Is(err, ErrFailed) {
		t.Fatalf("Apply after a failed commit: %v", err)
	}
	if _, err := b.Load(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Load after a failed commit: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBoltCheckpointFailure: a checkpoint that fails fails the store as a commit does,
// and what was committed before is still in the log for the next open.
func TestBoltCheckpointFailure(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t, WithCheckpointInterval(time.Millisecond))
	b.db.Close() // the file is gone from under the checkpointer
	if err := b.Apply(ctx, Submitted(Spec{ID: "a", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := b.Apply(ctx, Submitted(Spec{ID: fmt.Sprint(time.Now().UnixNano()), Type: "t"}))
		if errors.Is(err, ErrFailed) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Apply while checkpoints fail: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.Lookup("a").Phase != PhaseQueued {
		t.Fatal("a job committed before the checkpoint failed is lost")
	}
}

func TestStats(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t, WithCheckpointInterval(time.Hour))
	defer b.Close()
	big := bigPayload(10_000, "blob;")
	for _, s := range []Store{NewMem(), b} {
		if err := s.Apply(ctx, Submitted(Spec{ID: "a", Type: "t", Payload: big}), Submitted(Spec{ID: "b", Type: "t"})); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, AttemptStarted("a", 1, "w"), Resolved("b", Outcome{}, t0)); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, Collected("a")); err == nil {
			t.Fatal("collecting a running job")
		}
		st := s.Stats()
		if st.Records != 4 || st.Rejected != 1 || st.Jobs != 2 || st.Running != 1 || st.Resolved != 1 || st.Blobs != 1 || st.BlobBytes != int64(len(big)) {
			t.Errorf("%T: %+v", s, st)
		}
	}
	// Two commits, one fsync each, and one for the log segment's directory; no
	// checkpoint yet. The log is its segment's chunk of zeros written ahead.
	st := b.Stats()
	if st.Commits != 2 || st.Fsyncs != 3 || st.Checkpoints != 0 || st.MeanBatch != 2 || st.MaxBatch != 2 || st.FileBytes == 0 || st.WALBytes != walZeroChunk || st.CommitTime <= 0 {
		t.Errorf("bolt: %+v", st)
	}
	// A checkpoint costs bbolt's two fsyncs; the log keeps its segment, which is
	// far from full.
	if err := b.checkpointNow(); err != nil {
		t.Fatal(err)
	}
	st = b.Stats()
	if st.Checkpoints != 1 || st.Fsyncs != 5 || st.WALBytes != walZeroChunk {
		t.Errorf("bolt after a checkpoint: %+v", st)
	}
	// One that moves the log to a new segment costs a directory sync more, and
	// leaves only the new segment's header.
	if err := b.Apply(ctx, Submitted(Spec{ID: "c", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	if err := b.rotateNow(); err != nil {
		t.Fatal(err)
	}
	st = b.Stats()
	if st.Checkpoints != 2 || st.Fsyncs != 9 || st.WALBytes != walHeaderSize {
		t.Errorf("bolt after a checkpoint to a new segment: %+v", st)
	}
}

func TestMemClosedAndCanceled(t *testing.T) {
	m := NewMem()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Apply(cctx, Submitted(Spec{ID: "a", Type: "t"})); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	if m.Lookup("a").Phase != PhaseUnknown {
		t.Fatal("applied under a canceled context")
	}
	m.Close()
	if err := m.Apply(ctx, Submitted(Spec{ID: "a", Type: "t"})); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
	if _, err := m.Load(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
}

// TestBoltShortLivedJobsSkipCheckpoints: a job submitted and collected between two
// checkpoints leaves nothing for the next checkpoint to write or delete, while one the
// file already holds leaves its row's deletion; either way the file ends up right.
func TestBoltShortLivedJobsSkipCheckpoints(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t, noCheckpoints)
	if err := b.Apply(ctx, Submitted(Spec{ID: "old", Type: "t"}), Submitted(Spec{ID: "kept", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	if err := b.checkpointNow(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := lifecycle(b, fmt.Sprint("short-", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.dirtyRows(); n != 0 {
		t.Fatalf("100 jobs born and gone since the checkpoint leave %d rows to write", n)
	}
	if err := b.Apply(ctx, Resolved("old", Outcome{}, t0), Collected("old")); err != nil {
		t.Fatal(err)
	}
	if n := b.dirtyRows(); n != 1 {
		t.Fatalf("a checkpointed job collected leaves %d rows to write, want its deletion", n)
	}
	if err := b.checkpointNow(); err != nil {
		t.Fatal(err)
	}
	b.crash() // what is left is what the file holds: the log's frames are all covered
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if st := b.Stats(); st.Jobs != 1 || b.Lookup("kept").Phase != PhaseQueued {
		t.Fatalf("the file holds %d jobs, kept %v", st.Jobs, b.Lookup("kept").Phase)
	}
}
