package worker

import (
	"bytes"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/banfleet/banfleet/protocol"
)

// reply is a remembered reply whose bytes all say which one it is.
func reply(i, bodyLen int, at time.Duration) heldReply {
	id := "job-" + strconv.Itoa(i)
	return heldReply{key: jobKey{id, 1 + i%3}, typ: "type-" + strconv.Itoa(i%5), wait: protocol.AttemptKey(id, 1+i%3),
		head: []byte("head-" + id), body: bytes.Repeat([]byte{byte(i)}, bodyLen), at: at}
}

// TestSentRingGivesBackWhatWasPushed: drained replies equal the ones pushed, small
// ones copied (changing the pushed bytes afterwards changes nothing) and large ones
// by reference, in order.
func TestSentRingGivesBackWhatWasPushed(t *testing.T) {
	s := sentRing{maxN: 1000, maxBytes: 1 << 30, linger: time.Hour}
	var want []heldReply
	for i := range 300 {
		size, copied := 1+i%200, true
		if i%7 == 0 {
			size, copied = sentCopyMax+i, false // kept by reference
		}
		r := reply(i, size, time.Duration(i))
		want = append(want, reply(i, size, time.Duration(i)))
		s.push(r)
		if copied {
			r.body[0]++ // the ring has its own copy
			r.head[0]++
		}
	}
	var got []heldReply
	s.drain(300, func(r heldReply) { got = append(got, r) })
	if len(got) != len(want) {
		t.Fatalf("drained %d replies, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, w := got[i], want[i]
			t.Fatalf("reply %d: got %v %q %q head %q, %d-byte body; want %v %q %q head %q, %d-byte body (equal: %v)",
				i, g.key, g.typ, g.wait, g.head, len(g.body), w.key, w.typ, w.wait, w.head, len(w.body), bytes.Equal(g.body, w.body))
		}
	}
	if s.n != 0 || s.bytes != 0 || s.chunks != nil || s.big != nil {
		t.Fatalf("drain left %d replies, %d bytes, %d chunks, %d big", s.n, s.bytes, len(s.chunks), len(s.big))
	}
}

// TestSentRingMemoryIsBounded: a full ring pushed for long holds about the chunks its
// replies need, and no reference to a large reply it dropped.
func TestSentRingMemoryIsBounded(t *testing.T) {
	s := sentRing{maxN: 1000, maxBytes: 1 << 30, linger: time.Hour}
	for i := range 100_000 {
		size := 100
		if i%10 == 0 {
			size = 2 * sentCopyMax
		}
		s.push(reply(i, size, 0))
	}
	if s.n != 1000 {
		t.Fatalf("%d replies kept, want the count bound, 1000", s.n)
	}
	// 900 copies of about 125 bytes: 2 chunks, a third while one is half used.
	if len(s.chunks) > 3 {
		t.Fatalf("%d chunks for 900 small replies", len(s.chunks))
	}
	if len(s.big)-s.bigHead != 100 || cap(s.big) > 1000 {
		t.Fatalf("%d large replies kept in a slice of %d, want 100", len(s.big)-s.bigHead, cap(s.big))
	}
	all := s.big[:cap(s.big)]
	for i, r := range all {
		if live := i >= s.bigHead && i < len(s.big); !live && r.body != nil {
			t.Fatalf("slot %d of the large replies' slice still references a dropped one", i)
		}
	}
}

// TestSentRingLetsGoOfADroppedLargeReply: the slot of a large reply dropped from the
// front references it no more.
func TestSentRingLetsGoOfADroppedLargeReply(t *testing.T) {
	s := sentRing{maxN: 2, maxBytes: 1 << 30, linger: time.Hour}
	s.push(reply(0, 2*sentCopyMax, 0))
	s.push(reply(1, 10, 0))
	s.push(reply(2, 10, 0)) // drops the large one
	if s.n != 2 || cap(s.big) == 0 || s.big[:1][0].body != nil {
		t.Fatalf("%d kept; the dropped large reply's slot still references it (%d-byte body)", s.n, len(s.big[:1][0].body))
	}
}

// TestSentEntryHoldsNoPointer: the point of the copies is that the collector need not
// scan the entries; a field that points anywhere defeats it.
func TestSentEntryHoldsNoPointer(t *testing.T) {
	typ := reflect.TypeOf(sentEntry{})
	for i := range typ.NumField() {
		switch f := typ.Field(i); f.Type.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32, reflect.Int32:
		default:
			t.Errorf("sentEntry.%s is a %v, which the collector scans", f.Name, f.Type)
		}
	}
}

// BenchmarkSentRingPushLarge is BenchmarkSentRingPush for 64 KiB results, which are
// kept by reference.
func BenchmarkSentRingPushLarge(b *testing.B) {
	s := sentRing{maxN: protocol.MaxHeldAttempts, maxBytes: DefaultReplyLingerBytes, linger: DefaultReplyLinger}
	r := heldReply{key: jobKey{"job", 1}, wait: "job#1", head: make([]byte, 48), body: make([]byte, 64<<10)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.at = time.Duration(i)
		s.push(r)
	}
}
