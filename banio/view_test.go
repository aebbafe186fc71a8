package banio

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// inReadBuffer reports whether data lies in c's read buffer. Only the reading
// goroutine may ask (it owns rbuf).
func inReadBuffer(c *BanConn, data []byte) bool {
	if len(data) == 0 || cap(c.rbuf) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(c.rbuf[:1])))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	return p >= start && p < start+uintptr(cap(c.rbuf))
}

// lent is what a handler or callback saw of its data: its text, and whether it was a
// view of the read buffer.
type lent struct {
	data   string
	inRbuf bool
}

// TestViewHandlersAreLentTheReadBuffer: an inline view handler and a view wait get a
// raw payload in place, in the read buffer (the copy they save); every other handler
// and wait on the same connection gets its own copy, which later frames leave intact.
func TestViewHandlersAreLentTheReadBuffer(t *testing.T) {
	leakcheck.Check(t)
	_, addr, conns := startServer(t)
	c := dialClient(t, addr)
	sc := recv(t, conns, 5*time.Second, "server conn")
	// A round trip: the welcome, read before its answer, has switched c to the fast
	// codec, whose raw payloads are what can be lent.
	if _, err := roundTrip(c, []byte("warm up"), 5*time.Second); err != nil {
		t.Fatal(err)
	}

	views, owned := make(chan lent, 4), make(chan []byte, 4)
	sc.ListenInlineView("view", func(m *IOMsgRaw) {
		views <- lent{string(m.Data), inReadBuffer(sc, m.Data)}
	})
	sc.ListenInline("own", func(m *IOMsgRaw) {
		if inReadBuffer(sc, m.Data) {
			t.Error("an inline handler was lent the read buffer")
		}
		owned <- m.Data
	})
	for _, a := range []string{"own", "view", "own"} {
		if err := c.WriteMsg(&IOMsg{Action: a, Data: a + " payload"}); err != nil {
			t.Fatal(err)
		}
	}
	kept := recv(t, owned, 5*time.Second, "own message")
	if v := recv(t, views, 5*time.Second, "view message"); v.data != "view payload" || !v.inRbuf {
		t.Fatalf("view handler got %+v, want its payload in the read buffer", v)
	}
	recv(t, owned, 5*time.Second, "second own message")
	if string(kept) != "own payload" {
		t.Fatalf("a kept message changed under later frames: %q", kept)
	}

	// Waits: c asks sc for answers to a view wait and an ordinary one.
	sc.ListenInline("answer", func(m *IOMsgRaw) {
		for _, key := range bytes.Split(m.Data, []byte(",")) {
			_ = sc.SendWaitResNoBlock(string(key), "result for "+string(key))
		}
	})
	got := make(chan lent, 2)
	var keptRes []byte
	if _, err := c.SetWaitFuncView("v", func(data []byte, err error) {
		got <- lent{string(data), inReadBuffer(c.BanConn, data)}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetWaitFunc("o", func(data []byte, err error) {
		keptRes = data
		got <- lent{string(data), inReadBuffer(c.BanConn, data)}
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMsg(&IOMsg{Action: "answer", Data: "v,o"}); err != nil {
		t.Fatal(err)
	}
	if v := recv(t, got, 5*time.Second, "view result"); v.data != "result for v" || !v.inRbuf {
		t.Fatalf("view wait got %+v, want its result in the read buffer", v)
	}
	if o := recv(t, got, 5*time.Second, "result"); o.data != "result for o" || o.inRbuf {
		t.Fatalf("wait got %+v, want its result in memory of its own", o)
	}
	// A later frame reuses the read buffer; the ordinary wait's result stays.
	if err := c.WriteMsg(&IOMsg{Action: "answer", Data: "zzzzzzzzzzzz"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetWaitFunc("barrier", func([]byte, error) { got <- lent{} }); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMsg(&IOMsg{Action: "answer", Data: "barrier"}); err != nil {
		t.Fatal(err)
	}
	recv(t, got, 5*time.Second, "barrier")
	if string(keptRes) != "result for o" {
		t.Fatalf("a kept result changed under later frames: %q", keptRes)
	}
}
