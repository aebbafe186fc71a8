package worker

import (
	"bytes"
	"testing"

	"github.com/banfleet/banfleet/protocol"
)

// TestReplyHeadSharesTheOKHeaders: the header of an OK reply to one of the first
// attempts is built once and shared (no allocation per reply); every header, shared or
// not, is exactly what ReplyHeader encodes, and a shared one has no room to be
// appended to in place.
func TestReplyHeadSharesTheOKHeaders(t *testing.T) {
	w := New("127.0.0.1:1")
	for _, rep := range []protocol.Reply{
		{Attempt: 1, Kind: protocol.KindOK},
		{Attempt: 4, Kind: protocol.KindOK},
		{Attempt: 5, Kind: protocol.KindOK},
		{Attempt: 1, Kind: protocol.KindRemote, Code: "E1", Message: "boom"},
		{Attempt: 2, Kind: protocol.KindHandedBack},
	} {
		rep.WorkerID = w.id
		want := protocol.ReplyHeader(&rep)
		got := w.replyHead(&rep)
		if !bytes.Equal(got, want) || len(got) != cap(got) {
			t.Errorf("attempt %d kind %d: header %x (cap %d), want %x", rep.Attempt, rep.Kind, got, cap(got), want)
		}
	}
	ok := protocol.Reply{Attempt: 1, Kind: protocol.KindOK, WorkerID: w.id}
	if allocs := testing.AllocsPerRun(100, func() { _ = w.replyHead(&ok) }); allocs != 0 {
		t.Errorf("an OK reply's header: %v allocations, want 0 (shared)", allocs)
	}
}
