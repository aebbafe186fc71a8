package store

import (
	"bytes"
	"encoding/binary"
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
// the file's checkpoint are replayed, including after a checkpoint in the middle that
// kept its segment (the frames it covers are skipped), or moved the log to a new
// segment whose covered predecessor a crash kept from being deleted, or brought back
// under a number above the live ones (a segment numbering that restarted after a clean
// close, and a deletion the crash undid).
func TestWALCrashReplay(t *testing.T) {
	leakcheck.Check(t)
	for _, mid := range []string{"none", "checkpoint", "rotated", "undeleted", "resurrected"} {
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
				checkpoint := b.rotateNow
				if mid == "checkpoint" {
					checkpoint = b.checkpointNow
				}
				if err := checkpoint(); err != nil {
					t.Fatal(err)
				}
				if now := b.segments(t); len(now) != 1 || (now[0] == segs[len(segs)-1]) != (mid == "checkpoint") {
					t.Fatalf("%s: segments %v after the checkpoint, %v before", mid, now, segs)
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
	path, seg, states := crashedStoreSteps(t, n)
	return path, seg, states[n-1], states[n]
}

// crashedStoreSteps is crashedStore with the state after every call: states[k] is
// the state after k calls, one frame each.
func crashedStoreSteps(t *testing.T, n int) (path, seg string, states [][]byte) {
	t.Helper()
	b, path := openTemp(t, noCheckpoints)
	for i := range n {
		states = append(states, load(t, b).Snapshot())
		if err := b.Apply(ctx, Submitted(Spec{ID: fmt.Sprintf("job-%03d", i), Type: "t", Payload: bytes.Repeat([]byte{byte(i)}, 100)})); err != nil {
			t.Fatal(err)
		}
	}
	states = append(states, load(t, b).Snapshot())
	segs := b.segments(t)
	b.crash()
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	return path, segs[0], states
}

// TestWALTornFramesInFlight: commits overlap (flight.go), so a crash can tear a frame
// whose successor was written while its fdatasync ran. Neither was acknowledged: the
// store opens as of the frame before the torn one. A valid frame further than
// commitDepth-1 frames past the bad one is no such tear, but damage.
func TestWALTornFramesInFlight(t *testing.T) {
	leakcheck.Check(t)
	const n = 20
	// frameOffset is where frame k (1-based) starts: the frames are all one length.
	frameOffset := func(d []byte, k int) int { return walHeaderSize + (k-1)*(frameHeaderSize+frameLen(d)) }
	for back := 1; back <= commitDepth+1; back++ {
		t.Run(fmt.Sprintf("frame %d from the end", back), func(t *testing.T) {
			path, seg, states := crashedStoreSteps(t, n)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			torn := n + 1 - back
			data[frameOffset(data, torn)+frameHeaderSize+7] ^= 0x04
			if err := os.WriteFile(seg, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var logged strings.Builder
			b, err := OpenBolt(path, WithLogger(testLogger(&logged)))
			if back > commitDepth {
				if err == nil {
					b.Close()
					t.Fatalf("a log with a bad frame %d frames from its end opened", back)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("not ErrCorrupt: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := load(t, b).Snapshot(); !bytes.Equal(got, states[torn-1]) {
				t.Fatalf("not the state as of frame %d, the one before the torn frame", torn-1)
			}
			if !strings.Contains(logged.String(), "torn") {
				t.Errorf("not logged: %q", logged.String())
			}
		})
	}
}

// TestWALTornLastFrame: a last frame cut short or failing its CRC (a crash during its
// append: its fdatasync never returned, so no caller was told) is dropped with a
// warning, and the store opens as of the frame before: in the zeros written ahead of
// the frames (the file kept its size), and in a file that ends inside the frame (the
// crash came before the zeros after it were written).
func TestWALTornLastFrame(t *testing.T) {
	leakcheck.Check(t)
	// Each tear gets the segment and where its last frame ends.
	for name, tear := range map[string]func(d []byte, end int) []byte{
		"a byte flipped":    func(d []byte, end int) []byte { d[end-frameLen(d)/2] ^= 0x10; return d },
		"header only":       func(d []byte, end int) []byte { clear(d[end-frameLen(d) : end]); return d },
		"last byte flipped": func(d []byte, end int) []byte { d[end-1] ^= 0xff; return d },
		"tail zeroed":       func(d []byte, end int) []byte { clear(d[end-60 : end]); return d },
		"header zeroed": func(d []byte, end int) []byte {
			clear(d[end-frameLen(d)-frameHeaderSize : end-frameLen(d)])
			return d
		},
		"file cut 5 bytes short":  func(d []byte, end int) []byte { return d[:end-5] },
		"file cut after a header": func(d []byte, end int) []byte { return d[:end-frameLen(d)+4] },
	} {
		t.Run(name, func(t *testing.T) {
			path, seg, prev, _ := crashedStore(t, 20)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seg, tear(data, logEnd(t, data)), 0o600); err != nil {
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
			// A header zeroed with zeros after it is where the log ends: nothing
			// to warn about (no caller was told of the frame).
			if name != "header zeroed" && (!strings.Contains(logged.String(), "torn") || !strings.Contains(logged.String(), seg)) {
				t.Errorf("not logged: %q", logged.String())
			}
		})
	}
	// An untouched log replays whole, its zeros read as the log's end, not as a torn
	// frame.
	path, seg, _, full := crashedStore(t, 20)
	if fi, err := os.Stat(seg); err != nil || fi.Size() != walZeroChunk {
		t.Fatalf("the segment is not one chunk of zeros ahead: %v, %v", fi.Size(), err)
	}
	var logged strings.Builder
	b, err := OpenBolt(path, WithLogger(testLogger(&logged)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := load(t, b).Snapshot(); !bytes.Equal(got, full) {
		t.Fatal("an intact log did not replay whole")
	}
	if logged.Len() != 0 {
		t.Errorf("an intact log logged %q", logged.String())
	}
}

// logEnd is where the last whole frame of segment data ends.
func logEnd(t *testing.T, data []byte) int {
	t.Helper()
	frames, bad, err := parseSegment(data)
	if err != nil || bad >= 0 || len(frames) == 0 {
		t.Fatalf("segment: %d frames, bad at %d, %v", len(frames), bad, err)
	}
	f := frames[len(frames)-1]
	return f.off + frameHeaderSize + len(f.payload)
}

// TestWALZeroedAhead: appends write into zeros written ahead of them, so the segment
// file keeps its size (and its fdatasync commits no new size to the journal) over
// many commits; a frame that reaches past the zeros writes the next chunk.
func TestWALZeroedAhead(t *testing.T) {
	leakcheck.Check(t)
	b, _ := openTemp(t, noCheckpoints)
	defer b.Close()
	size := func() int64 {
		t.Helper()
		segs := b.segments(t)
		fi, err := os.Stat(segs[len(segs)-1])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if got := size(); got != walHeaderSize {
		t.Fatalf("a new segment of %d bytes", got)
	}
	for i := range 50 {
		if err := b.Apply(ctx, Submitted(Spec{ID: fmt.Sprint(i), Type: "t", Payload: make([]byte, 100)})); err != nil {
			t.Fatal(err)
		}
		if got := size(); got != walZeroChunk {
			t.Fatalf("after %d commits the segment is %d bytes, want %d", i+1, got, walZeroChunk)
		}
	}
	if got := b.Stats().WALBytes; got != walZeroChunk {
		t.Errorf("Stats says %d log bytes, the file has %d", got, walZeroChunk)
	}
	// A frame larger than what is left of the chunk: the next one is zeroed too.
	if err := b.Apply(ctx, Submitted(Spec{ID: "big", Type: "t", Payload: bigPayload(walZeroChunk-1000, "x")})); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != 2*walZeroChunk {
		t.Fatalf("after a frame past the chunk the segment is %d bytes, want %d", got, 2*walZeroChunk)
	}
}

// TestWALVersions: a segment of WAL version 1 (no zeros ahead of its frames) still
// replays; one of a version this build does not know is refused with
// ErrFormatVersion, naming the segment.
func TestWALVersions(t *testing.T) {
	leakcheck.Check(t)
	for _, v := range []uint32{1, WALVersion + 1} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			path, seg, _, full := crashedStore(t, 20)
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			data = data[:logEnd(t, data)] // version 1 appended, no zeros ahead
			binary.LittleEndian.PutUint32(data[len(walMagic):], v)
			if err := os.WriteFile(seg, data, 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := OpenBolt(path)
			if v > WALVersion {
				if err == nil {
					b.Close()
					t.Fatal("a segment of an unknown version opened")
				}
				if !errors.Is(err, ErrFormatVersion) || !strings.Contains(err.Error(), seg) {
					t.Fatalf("not an ErrFormatVersion naming %s: %v", seg, err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := load(t, b).Snapshot(); !bytes.Equal(got, full) {
				t.Fatal("a version 1 log did not replay whole")
			}
		})
	}
}

// TestWALCorruptFrame: a damaged frame with valid frames after it is not a torn write:
// the store refuses to open, with ErrCorrupt naming the segment and what to do.
func TestWALCorruptFrame(t *testing.T) {
	leakcheck.Check(t)
	for name, damage := range map[string]func([]byte){
		"payload bit":  func(d []byte) { d[walHeaderSize+3*(frameHeaderSize+frameLen(d))+frameHeaderSize+20] ^= 0x01 },
		"length field": func(d []byte) { d[walHeaderSize+3*(frameHeaderSize+frameLen(d))] ^= 0x40 },
		"index field":  func(d []byte) { d[walHeaderSize+3*(frameHeaderSize+frameLen(d))+8] ^= 0x01 },
		"first frame":  func(d []byte) { d[walHeaderSize+frameHeaderSize+5] ^= 0x80 },
		// Zeros where a frame's header was, inside the log: not where it ends.
		"zeroed header": func(d []byte) {
			at := walHeaderSize + 3*(frameHeaderSize+frameLen(d))
			clear(d[at : at+frameHeaderSize])
		},
		"zeroed frame": func(d []byte) {
			at := walHeaderSize + 3*(frameHeaderSize+frameLen(d))
			clear(d[at : at+frameHeaderSize+frameLen(d)])
		},
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
// about two segments (WithWALSize), however many records go through it, whether they
// run on their interval or only when a segment is full.
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
			opts := []Option{WithNoSync(true), WithWALSize(256 << 10), opt}
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
