package banio

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// handed is what a handler or callback saw of a large message: whether its data was
// intact, lent, and kept without a copy.
type handed struct {
	intact bool
	lent   bool
	inRbuf bool
	kept   []byte // what the receiver kept (Keep for a handler)
	noCopy bool   // kept is the data itself, not a copy
}

// TestLargeFramesAreHandedOver: a frame from ownBodyFrom on is read into memory of its
// own, so a view handler's Keep and a view wait get its raw payload without a copy and
// may keep it, and it stays intact under the frames that follow. Smaller frames are
// lent, and Keep copies them.
func TestLargeFramesAreHandedOver(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	if _, err := roundTrip(c, []byte("warm up"), 5*time.Second); err != nil {
		t.Fatal(err) // the welcome has switched c to the fast codec
	}
	large := bytes.Repeat([]byte("L"), ownBodyFrom)
	small := []byte("small payload")

	views := make(chan handed, 4)
	sc.ListenInlineView("view", func(m *IOMsgRaw) {
		k := m.Keep(m.Data)
		views <- handed{intact: bytes.Equal(m.Data, large) || bytes.Equal(m.Data, small),
			lent: m.lent, inRbuf: inReadBuffer(sc, m.Data), kept: k,
			noCopy: unsafe.SliceData(k) == unsafe.SliceData(m.Data)}
	})
	for _, p := range [][]byte{large, small} {
		if err := c.WriteMsg(&IOMsg{Action: "view", Data: p}); err != nil {
			t.Fatal(err)
		}
	}
	big := recv(t, views, 5*time.Second, "large view message")
	if !big.intact || big.lent || big.inRbuf || !big.noCopy {
		t.Errorf("a large message to a view handler: intact %v, lent %v, in the read buffer %v, kept without a copy %v; want its own memory, kept as it is",
			big.intact, big.lent, big.inRbuf, big.noCopy)
	}
	sm := recv(t, views, 5*time.Second, "small view message")
	if !sm.intact || !sm.lent || !sm.inRbuf || sm.noCopy {
		t.Errorf("a small message to a view handler: intact %v, lent %v, in the read buffer %v, kept without a copy %v; want it lent and Keep to copy",
			sm.intact, sm.lent, sm.inRbuf, sm.noCopy)
	}
	if !bytes.Equal(big.kept, large) {
		t.Error("a kept large message changed under later frames")
	}

	// A view wait: the large result is not lent, and stays intact.
	sc.ListenInline("answer", func(m *IOMsgRaw) {
		_ = sc.SendWaitResNoBlock(string(m.Data), large)
	})
	got := make(chan handed, 1)
	if _, err := c.SetWaitFuncView("big", func(data []byte, isLent bool, err error) {
		got <- handed{intact: err == nil && bytes.Equal(data, large), lent: isLent,
			inRbuf: inReadBuffer(c.BanConn, data), kept: data}
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMsg(&IOMsg{Action: "answer", Data: "big"}); err != nil {
		t.Fatal(err)
	}
	res := recv(t, got, 5*time.Second, "large result")
	if !res.intact || res.lent || res.inRbuf {
		t.Errorf("a large result to a view wait: intact %v, lent %v, in the read buffer %v; want it whole, in memory of its own", res.intact, res.lent, res.inRbuf)
	}
	if _, err := roundTrip(c, []byte("a later frame"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.kept, large) {
		t.Error("a kept large result changed under later frames")
	}
}
