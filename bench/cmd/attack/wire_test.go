package main

import (
	"bytes"
	"compress/zlib"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
)

// The attacks' hand-made bytes must be what they claim to be: these check them
// against compress/zlib and against a real banio server, not timings.

func TestZBuilderInflates(t *testing.T) {
	z := newZBuilder()
	z.stored([]byte(`["a-`))
	z.run('x', 100_000)
	z.stored([]byte(`","b-`))
	z.run('x', 100_000)
	z.stored([]byte(`"]`))
	stream := z.finish()
	zr, err := zlib.NewReader(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want := `["a-` + strings.Repeat("x", 100_000) + `","b-` + strings.Repeat("x", 100_000) + `"]`
	if string(got) != want {
		t.Fatalf("inflated %d bytes, want %d", len(got), len(want))
	}
	if len(stream) > 1000 {
		t.Errorf("stream of %d bytes: the runs did not compress", len(stream))
	}
}

func TestFramesReachABanioHandler(t *testing.T) {
	srv := banio.NewBanServer("127.0.0.1:0", "test")
	got := make(chan string, 4)
	srv.InitConn = func(c *banio.BanConn) {
		c.Listen("probe", func(m *banio.IOMsgRaw) { got <- string(m.Data) })
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	p, err := dialRaw(ln.Addr().String(), nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	// zlib before the hello, as a banbot peer.
	z := newZBuilder()
	z.stored([]byte("head-"))
	z.run('y', 70_000)
	if err := p.send(frame("probe", z.finish(), false), time.Second); err != nil {
		t.Fatal(err)
	}
	if d := <-got; d != "head-"+strings.Repeat("y", 70_000) {
		t.Fatalf("zlib frame: handler got %d bytes", len(d))
	}
	w, err := p.hello("", true, 2*time.Second)
	if err != nil || w.Codec != "s2" {
		t.Fatalf("hello: %+v %v", w, err)
	}
	if err := p.send(frame("probe", rawTagged([]byte("raw")), true), time.Second); err != nil {
		t.Fatal(err)
	}
	if d := <-got; d != "raw" {
		t.Fatalf("raw-tagged frame: handler got %q", d)
	}
	v, _, err := p.roundTrip("k", 2*time.Second)
	if err != nil || len(v) != 0 {
		t.Fatalf("round trip: %q %v", v, err)
	}
}

func TestGCLineParsing(t *testing.T) {
	tg := &target{msgs: map[string]int{}}
	tg.noteLine("gc 7 @1.2s 3%: 0.01+1.2+0.02 ms clock, 0.03+0.1/0.5/0+0.05 ms cpu, 300->301->12 MB, 302 MB goal, 0 MB stacks, 0 MB globals, 2 P", 100)
	tg.noteLine(`gc 8time=2026-01-01T00:00:00Z level=WARN msg="banio: dropped undecodable message" err=x`, 80)
	tg.noteLine(" @1.5s 3%: 0.01+1.2+0.02 ms clock, 0.03+0.1/0.5/0+0.05 ms cpu, 20->21->5 MB, 24 MB goal, 0 MB stacks, 0 MB globals, 2 P", 100)
	// Pieces of trace lines cut by log lines.
	tg.noteLine(" 2 P (forced)", 12)
	tg.noteLine("4.488s 0%: 1.3+0.97+0.003 ms clock, 2.6+0.079/0.45/0+0.006 m", 60)
	tg.noteLine("%: 0.040+3.8+0.004 ms clock, 0.081+0.28/2.2/0.18+0.009 ms cp", 60)
	tg.noteLine("", 1)
	if tg.peakHeap() != 301 {
		t.Errorf("peak %d, want 301", tg.peakHeap())
	}
	if g, _ := tg.lastGC(); g.live != 5 {
		t.Errorf("last live %d, want 5", g.live)
	}
	if n, _ := tg.logCount(); n != 1 {
		t.Errorf("%d log lines, want 1", n)
	}
	if top := tg.topMessages(1, nil); len(top) != 1 || !strings.Contains(top[0], "dropped undecodable") {
		t.Errorf("top messages %v", top)
	}
}
