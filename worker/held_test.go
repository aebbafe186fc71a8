package worker

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/protocol"
)

func sized(id string, size int, at time.Duration) heldReply {
	return heldReply{key: jobKey{id, 1}, head: make([]byte, 1), body: make([]byte, size-1), at: at}
}

// The held set refuses what passes its count or byte bound, and asks for one warning
// per outage.
func TestHeldSetBounds(t *testing.T) {
	h := heldSet{maxBytes: 1 << 30}
	for i := range protocol.MaxHeldAttempts {
		if ok, _ := h.add(sized(strconv.Itoa(i), 1, 0)); !ok {
			t.Fatalf("reply %d refused under the count bound", i)
		}
	}
	if ok, warn := h.add(sized("over", 1, 0)); ok || !warn {
		t.Fatalf("past the count bound: ok %v warn %v, want refused with a warning", ok, warn)
	}
	if ok, warn := h.add(sized("over2", 1, 0)); ok || warn {
		t.Fatalf("second drop: ok %v warn %v, want refused without a warning", ok, warn)
	}
	if n := len(h.take()); n != protocol.MaxHeldAttempts || h.len() != 0 || h.bytes != 0 {
		t.Fatalf("take: %d, left %d (%d bytes)", n, h.len(), h.bytes)
	}

	h = heldSet{maxBytes: 10}
	if ok, _ := h.add(sized("a", 6, 0)); !ok {
		t.Fatal("a reply under the byte bound was refused")
	}
	if ok, _ := h.add(sized("b", 5, 0)); ok {
		t.Fatal("a reply past the byte bound was held")
	}
	if ok, _ := h.add(sized("c", 4, 0)); !ok {
		t.Fatal("a reply that fits the bytes left was refused")
	}
}

// The ring keeps what was sent within the linger window, drops the oldest first past
// its bounds, and lets go of what it dropped.
func TestSentRing(t *testing.T) {
	s := sentRing{maxN: 3, maxBytes: 100, linger: time.Second}
	for i := range 5 {
		s.push(sized(strconv.Itoa(i), 10, time.Duration(i)*time.Millisecond))
	}
	var got []string
	s.drain(10*time.Millisecond, func(r heldReply) { got = append(got, r.key.id) })
	if want := "2 3 4"; join(got) != want {
		t.Fatalf("count bound: kept %q, want the newest %q", join(got), want)
	}
	if s.n != 0 || s.bytes != 0 {
		t.Fatalf("drain left %d (%d bytes)", s.n, s.bytes)
	}

	s.push(sized("a", 60, 0))
	s.push(sized("b", 30, 0))
	s.push(sized("c", 30, 0)) // a must go for c
	s.push(sized("huge", 101, 0))
	got = got[:0]
	s.drain(0, func(r heldReply) { got = append(got, r.key.id) })
	if want := "b c"; join(got) != want {
		t.Fatalf("byte bound: kept %q, want %q", join(got), want)
	}

	s.push(sized("old", 10, 0))
	s.push(sized("new", 10, 1500*time.Millisecond))
	if s.n != 1 {
		t.Fatalf("after the linger window: %d kept, want 1", s.n)
	}
	if len(s.chunks) != 1 || s.chunks[0].live != 1 {
		t.Fatalf("one reply kept in %d chunks (%+v), want 1", len(s.chunks), s.chunks)
	}
	got = got[:0]
	s.drain(3*time.Second, func(r heldReply) { got = append(got, r.key.id) })
	if len(got) != 0 {
		t.Fatalf("drained %q after the window, want nothing", join(got))
	}

	off := sentRing{maxN: 3, maxBytes: 100}
	off.push(sized("x", 1, 0))
	if off.n != 0 {
		t.Fatal("a ring with no linger kept a reply")
	}
}

func join(ids []string) string { return strings.Join(ids, " ") }

// BenchmarkSentRingPush is the ring's cost per reply in steady state: full, so that
// each push also drops the oldest.
func BenchmarkSentRingPush(b *testing.B) {
	s := sentRing{maxN: protocol.MaxHeldAttempts, maxBytes: DefaultHeldReplyBytes, linger: DefaultReplyLinger}
	r := heldReply{key: jobKey{"job", 1}, wait: "job#1", head: make([]byte, 48), body: make([]byte, 64)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.at = time.Duration(i)
		s.push(r)
	}
}

// The linger window has its own byte bound, 16 MiB by default and never above the
// bound of the replies held while the master is away.
func TestReplyLingerBytes(t *testing.T) {
	for _, c := range []struct {
		opts []Option
		want int
	}{
		{nil, DefaultReplyLingerBytes},
		{[]Option{WithReplyLingerBytes(1000)}, 1000},
		{[]Option{WithReplyLingerBytes(1 << 30)}, DefaultHeldReplyBytes},
		{[]Option{WithReplyLingerBytes(-1)}, DefaultReplyLingerBytes},
	} {
		if got := New("127.0.0.1:1", c.opts...).recent.maxBytes; got != c.want {
			t.Errorf("%d options: the linger window holds %d bytes, want %d", len(c.opts), got, c.want)
		}
	}
}
