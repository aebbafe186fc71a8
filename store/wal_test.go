package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// noCheckpoints keeps the checkpointer from running on its own during a test.
var noCheckpoints = WithCheckpointInterval(time.Hour)

// TestWALCrashReplay: a store stopped like a kill -9 (no last checkpoint) opens with
// exactly the state it acknowledged, Mem's for the same calls: the log's frames after
// the file's checkpoint are replayed, including after a checkpoint in the middle whose
// covered segment a crash kept from being deleted, or brought back under a number above
// the live ones (a segment numbering that restarted after a clean close, and a
// deletion the crash undid).
func TestWALCrashReplay(t *testing.T) {
	leakcheck.Check(t)
	for _, mid := range []string{"none", "checkpoint", "undeleted", "resurrected"} {
		t.Run(mid, func(t *testing.T) {
			mem := NewMem()
			b, path := openTemp(t, noCheckpoints)
			m := newModel(7)
			run := func(n int) {
				for i := range n {
					recs, valid := m.call()
					em, eb := mem.Apply(ctx, recs...), b.Apply(ctx, recs...)
					if (em == nil) != valid || (eb == nil) != valid {
						t.Fatalf("call %d (%v, valid %v): mem %v, bolt %v", i, recs, valid, em, eb)
					}
				}
			}
			run(400)
			if mid != "none" {
				segs := b.segments(t)
				old, err := os.ReadFile(segs[len(segs)-1])
				if err != nil {
					t.Fatal(err)
				}
				if err := b.checkpointNow(); err != nil {
					t.Fatal(err)
				}
				switch mid {
				case "undeleted": // the crash came before the deletion
					if err := os.WriteFile(segs[len(segs)-1], old, 0o600); err != nil {
						t.Fatal(err)
					}
				case "resurrected":
					if err := os.WriteFile(segmentPath(path, 1<<40), old, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			run(400)
			want := load(t, mem).Snapshot()
			b.crash()
			if n := len(b.segments(t)); n == 0 {
				t.Fatal("the crash left no log")
			}
			b, err := OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := load(t, b).Snapshot(); !bytes.Equal(got, want) {
				t.Fatal("the state after the crash differs from what was acknowledged")
			}
			// Opening checkpointed the replayed frames and started a fresh log.
			if s := b.Stats(); s.Checkpoints != 1 || len(b.segments(t)) != 1 || s.WALBytes != walHeaderSize {
				t.Errorf("after replay: %d checkpoints, segments %v, %d log bytes", s.Checkpoints, b.segments(t), s.WALBytes)
			}
			// And it goes on from there: crash again, reopen, same state plus one.
			if err := b.Apply(ctx, Submitted(Spec{ID: "after", Type: "t"})); err != nil {
				t.Fatal(err)
			}
			b.crash()
			b, err = OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Lookup("after").Phase != PhaseQueued {
				t.Fatal("a job committed after the replay was lost")
			}
		})
	}
}

// crashedStore commits n single-job calls without checkpoints and crashes. It returns
// the path, the log's only segment, and the state after n-1 calls and after n.
func crashedStore(t *testing.T, n int) (path, seg string, prev, full []byte) {
	t.Helper()
	b, path := openTemp(t, noCheckpoints)
	for i := range n {
		if i == n-1 {
			prev = load(t, b).Snapshot()
		}
		if err := b.Apply(ctx, Submitted(Spec{ID: fmt.Sprintf("job-%03d", i), Type: "t", Payload: bytes.Repeat([]byte{byte(i)}, 100)})); err != nil {
			t.Fatal(err)
		}
	}
	full = load(t, b).Snapshot()
	segs := b.segments(t)
	b.crash()
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	return path, segs[0], prev, full
}

// TestWALTornLastFrame: a last frame cut short or failing its CRC (a crash during its
// append: its fdatasync never returned, so no caller was told) is dropped with a
// warning, and the store opens as of the frame before.
func TestWALTornLastFrame(t *testing.T) {
	leakcheck.Check(t)
	for name, tear := range map[string]func([]byte) []byte{
		"short by 5 bytes":  func(d []byte) []byte { return d[:len(d)-5] },
		"header only":       func(d []byte) []byte { return d[:len(d)-frameLen(d)+4] },
		"last byte flipped": func(d []byte) []byte { d[len(d)-1] ^= 0xff; return d },
		"tail zeroed": func(d []byte) []byte {
			clear(d[len(d)-60:])
			return d
		},
	} {
		t.Run(name, func(t *testing.T) {
			path, seg, prev, _ := crashedStore(t, 20)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seg, tear(data), 0o600); err != nil {
				t.Fatal(err)
			}
			var logged strings.Builder
			b, err := OpenBolt(path, WithLogger(testLogger(&logged)))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := load(t, b).Snapshot(); !bytes.Equal(got, prev) {
				t.Fatal("not the state as of the frame before the torn one")
			}
			if !strings.Contains(logged.String(), "torn") || !strings.Contains(logged.String(), seg) {
				t.Errorf("not logged: %q", logged.String())
			}
		})
	}
	// An untouched log replays whole.
	path, _, _, full := crashedStore(t, 20)
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := load(t, b).Snapshot(); !bytes.Equal(got, full) {
		t.Fatal("an intact log did not replay whole")
	}
}

// TestWALCorruptFrame: a damaged frame with valid frames after it is not a torn write:
// the store refuses to open, with ErrCorrupt naming the segment and what to do.
func TestWALCorruptFrame(t *testing.T) {
	leakcheck.Check(t)
	for name, damage := range map[string]func([]byte){
		"payload bit":   func(d []byte) { d[walHeaderSize+3*(frameHeaderSize+frameLen(d))+frameHeaderSize+20] ^= 0x01 },
		"length field":  func(d []byte) { d[walHeaderSize+3*(frameHeaderSize+frameLen(d))] ^= 0x40 },
		"index field":   func(d []byte) { d[walHeaderSize+3*(frameHeaderSize+frameLen(d))+8] ^= 0x01 },
		"first frame":   func(d []byte) { d[walHeaderSize+frameHeaderSize+5] ^= 0x80 },
		"segment magic": func(d []byte) { d[0] = 'X' },
	} {
		t.Run(name, func(t *testing.T) {
			path, seg, _, _ := crashedStore(t, 20)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			damage(data)
			if err := os.WriteFile(seg, data, 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := OpenBolt(path)
			if err == nil {
				b.Close()
				t.Fatal("a damaged log opened")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), "move this segment") {
				t.Fatalf("not an ErrCorrupt naming %s and the remedy: %v", seg, err)
			}
			t.Log(err)
		})
	}
}

// frameLen is the payload length of a segment's first frame (the crashed stores'
// frames are all the same length).
func frameLen(seg []byte) int {
	f, _ := frameAt(seg, walHeaderSize)
	return len(f.payload)
}

// TestWALWithoutFile: a log whose bolt file is gone is an error, not an empty store.
func TestWALWithoutFile(t *testing.T) {
	leakcheck.Check(t)
	path, seg, _, _ := crashedStore(t, 3)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBolt(path)
	if err == nil {
		b.Close()
		t.Fatal("a log without its file opened")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("%v", err)
	}
	t.Log(err)
}

// TestWALBoundedByCheckpoints: under a long churn the checkpoints keep the log to
// about a segment's size (WithWALSize) or an interval's commits
// (WithCheckpointInterval), however many records go through it.
func TestWALBoundedByCheckpoints(t *testing.T) {
	leakcheck.Check(t)
	jobs := 100_000
	if raceEnabled {
		jobs = 30_000
	}
	for name, opt := range map[string]Option{
		"size":     WithWALSize(256 << 10),
		"interval": WithCheckpointInterval(5 * time.Millisecond),
	} {
		t.Run(name, func(t *testing.T) {
			opts := []Option{WithNoSync(true), opt}
			if name == "size" {
				opts = append(opts, noCheckpoints)
			}
			b, _ := openTemp(t, opts...)
			defer b.Close()
			payload := make([]byte, 64)
			var peak int64
			for k := range jobs / 100 {
				recs := make([]Record, 0, 400)
				for i := range 100 {
					id := fmt.Sprintf("job-%07d", k*100+i)
					recs = append(recs, Submitted(Spec{ID: id, Type: "echo", Payload: payload}), AttemptStarted(id, 1, "w"),
						Resolved(id, Outcome{Result: payload, Attempt: 1}, t0), Collected(id))
				}
				if err := b.Apply(ctx, recs...); err != nil {
					t.Fatal(err)
				}
				peak = max(peak, b.Stats().WALBytes)
			}
			s := b.Stats()
			t.Logf("%d jobs, %d records: log at most %d bytes, %d checkpoints", jobs, s.Records, peak, s.Checkpoints)
			// A call's frame is about 30 KB; without checkpoints the log would hold
			// them all, 30 MB.
			if bound := int64(4 << 20); peak > bound {
				t.Errorf("the log reached %d bytes, bound %d", peak, bound)
			}
		})
	}
}

// TestCompactWithWAL: compacting a store that crashed replays its log into the copy
// and leaves no log behind.
func TestCompactWithWAL(t *testing.T) {
	leakcheck.Check(t)
	path, _, _, full := crashedStore(t, 50)
	if _, _, err := Compact(path); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBolt(path, noCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	if got := load(t, b).Snapshot(); !bytes.Equal(got, full) {
		t.Fatal("compaction lost the log's commits")
	}
	b.crash() // nothing to replay: the file holds it all
	b, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := load(t, b).Snapshot(); !bytes.Equal(got, full) {
		t.Fatal("state changed")
	}
}
