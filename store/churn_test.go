package store

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

var long = flag.Bool("long", false, "run the long tests (a million jobs' churn)")

// churn runs jobs through their whole life in a pipeline of batches: each Apply call
// submits batch k, starts attempts for batch k-1, resolves batch k-2 and collects
// batch k-3, so at most 4 batches are live at once. It returns the size of the file
// and its log together after the pipeline first filled, at the end, and at the most
// (measured after each call).
func churn(t testing.TB, b *Bolt, jobs, batch int) (warm, end, peak int64) {
	payload := make([]byte, 64)
	steps := jobs/batch + 3
	id := func(k, i int) string { return fmt.Sprintf("job-%07d", k*batch+i) }
	recs := make([]Record, 0, 4*batch)
	for k := range steps {
		recs = recs[:0]
		for i := range batch {
			if k < jobs/batch {
				recs = append(recs, Submitted(Spec{ID: id(k, i), Type: "echo", Payload: payload, MaxAttempts: 3, SubmittedAt: t0}))
			}
			if j := k - 1; j >= 0 && j < jobs/batch {
				recs = append(recs, AttemptStarted(id(j, i), 1, "worker-1"))
			}
			if j := k - 2; j >= 0 && j < jobs/batch {
				recs = append(recs, Resolved(id(j, i), Outcome{Result: payload, Worker: "worker-1", Attempt: 1}, t0))
			}
			if j := k - 3; j >= 0 && j < jobs/batch {
				recs = append(recs, Collected(id(j, i)))
			}
		}
		if err := b.Apply(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		s := b.Stats()
		size := s.FileBytes + s.WALBytes
		peak = max(peak, size)
		if k == 10 {
			warm = size
		}
	}
	s := b.Stats()
	if s.Jobs != 0 {
		t.Fatalf("%d jobs left", s.Jobs)
	}
	return warm, s.FileBytes + s.WALBytes, peak
}

// TestBoltChurnBounded: 200,000 jobs through submitted → attempt → resolved →
// collected leave the file and its log no bigger than the pipeline's peak live state
// and a checkpoint's worth of log need, at any point of the churn.
//
// The file's bound: at most 4 batches of 1,000 jobs are live, whose rows (a 64-byte
// payload and result, ids, times) take about 200 bytes each: 0.8 MB. Leaf pages are at
// least half full (bbolt merges pages below a quarter, and fills new ones to 90 %), so
// 1.6 MB of pages; a checkpoint writes fresh copies of the pages it changes while the
// old ones are still in use, up to as much again: 3.2 MB. bbolt grows a file below
// 16 MiB to its next power of two, so 4 MiB. Without page reuse the 800,000 records'
// rewrites would take hundreds of MB.
//
// The log's bound: with WithWALSize(1 MiB) a checkpoint starts once the segment
// passes 1 MiB, by at most one call's frame (about 250 KB here); the committer goes on
// in a new segment while the checkpoint writes, and the old one is deleted after it:
// two segments of at most 1.25 MiB, so 4 MiB leaves room for a slow checkpoint. Without
// checkpoints the log would hold every record: about 200 MB.
func TestBoltChurnBounded(t *testing.T) {
	leakcheck.Check(t)
	jobs := 200_000
	if raceEnabled {
		jobs = 50_000 // the same pipeline, to keep -race quick; the bound holds alike
	}
	b, _ := openTemp(t, WithNoSync(true), WithWALSize(1<<20)) // what is measured is the file, not the disk
	defer b.Close()
	warm, end, peak := churn(t, b, jobs, 1000)
	s := b.Stats()
	t.Logf("%d jobs: file and log %d bytes once the pipeline filled, %d at the end, %d at the most; %d checkpoints, %d free pages",
		jobs, warm, end, peak, s.Checkpoints, s.FreePages)
	const bound = 4<<20 + 4<<20
	if peak > bound {
		t.Errorf("file and log of %d bytes during churn, bound %d", peak, bound)
	}
	if s.FileBytes > 4<<20 {
		t.Errorf("file of %d bytes after churn, bound %d", s.FileBytes, 4<<20)
	}
}

// TestBoltChurnMillion (-long): the file and log after a million jobs' lives.
func TestBoltChurnMillion(t *testing.T) {
	if !*long {
		t.Skip("-long")
	}
	b, _ := openTemp(t, WithNoSync(true), WithWALSize(1<<20))
	defer b.Close()
	warm, end, peak := churn(t, b, 1_000_000, 1000)
	t.Logf("1,000,000 jobs: file and log %d bytes once the pipeline filled, %d at the end, %d at the most", warm, end, peak)
	if peak > 8<<20 {
		t.Errorf("file and log of %d bytes", peak)
	}
}

// TestCompact: after a peak of 50,000 queued jobs, all but a few collected, the file
// keeps its peak size until Compact rewrites it to its live size, with the same state.
func TestCompact(t *testing.T) {
	leakcheck.Check(t)
	b, path := openTemp(t, WithNoSync(true))
	payload := make([]byte, 64)
	var recs []Record
	for i := range 50_000 {
		recs = append(recs, Submitted(Spec{ID: fmt.Sprint(i), Type: "t", Payload: payload}))
	}
	if err := b.Apply(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	recs = recs[:0]
	for i := 100; i < 50_000; i++ {
		recs = append(recs, Resolved(fmt.Sprint(i), Outcome{}, t0), Collected(fmt.Sprint(i)))
	}
	if err := b.Apply(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	want := load(t, b).Snapshot()
	if _, _, err := Compact(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Compact of an open store: %v", err)
	}
	b.Close()
	before, after, err := Compact(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compacted %d → %d bytes", before, after)
	if after*4 > before {
		t.Errorf("compacted %d → %d bytes", before, after)
	}
	b, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := load(t, b).Snapshot(); !bytes.Equal(got, want) {
		t.Fatal("state changed by compaction")
	}
	if err := b.Apply(ctx, Submitted(Spec{ID: "after", Type: "t"})); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if matches, _ := filepath.Glob(path + ".*"); len(matches) != 0 {
		t.Errorf("left behind: %v", matches)
	}
}
