package banio

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestLargePayloadsKeptByHandlers: a handler owns msg.Data. A raw payload of a frame
// above 1 MiB is handed over in the buffer it was read into (no copy); smaller ones and
// compressed ones are copied out of the connection's reused buffer. Either way a
// payload a handler keeps is never overwritten by the frames read after it.
func TestLargePayloadsKeptByHandlers(t *testing.T) {
	for name, opts := range map[string][]Option{"raw": nil, "compressed": {compressLocal()}} {
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t)
			kept := make(chan []byte, 16)
			srv := newServer(opts...)
			srv.InitConn = func(c *BanConn) {
				c.Listen("keep", func(msg *IOMsgRaw) { kept <- msg.Data })
			}
			c := dialClient(t, serve(t, srv), opts...)
			var sent [][]byte
			for i, size := range []int{64 << 10, 200 << 10, 100, 64 << 10, 2 << 20, 50, 64 << 10} {
				p := bytes.Repeat([]byte(fmt.Sprintf("message %d ", i)), size/10+1)[:size]
				sent = append(sent, p)
				if err := c.WriteMsg(&IOMsg{Action: "keep", Data: p}); err != nil {
					t.Fatal(err)
				}
			}
			var got [][]byte
			for range sent {
				got = append(got, recv(t, kept, 10*time.Second, "a kept payload"))
			}
			for i := range sent {
				if !bytes.Equal(got[i], sent[i]) {
					t.Errorf("payload %d (%d bytes) changed after the handler had it", i, len(sent[i]))
				}
			}
		})
	}
}
