package banio

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestRawFrameMatchesEncode: a frame the writer encodes into its queue (outFrame) is
// byte for byte the frame encodeFrameWith writes, and its size is its length, for
// every shape of action, payload and flag. A frame that differed would be one a banbot
// peer, or our own reader, no longer reads; a size that differed would let the queue's
// bound and the frame-size checks count wrong.
func TestRawFrameMatchesEncode(t *testing.T) {
	cfg := defaultConfig()
	for _, action := range []string{"", "a", "fleet.job", strings.Repeat("x", 200)} {
		for _, n := range []int{0, 1, 62, 63, 127, 128, 300, 16 << 10, 70_000} {
			for _, tailN := range []int{0, 7} {
				for _, noEncrypt := range []bool{false, true} {
					name := fmt.Sprintf("action%d/data%d/tail%d/noEncrypt=%v", len(action), n, tailN, noEncrypt)
					data := bytes.Repeat([]byte{0xab}, n)
					tail := bytes.Repeat([]byte{0xcd}, tailN)
					want, err := encodeFrameWith(nil, &cfg, action, data, tail, true, noEncrypt, wireRaw)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					f := rawFrame(action, data, tail, noEncrypt)
					got := f.appendTo([]byte("prefix"))
					if !bytes.Equal(got[len("prefix"):], want) {
						t.Fatalf("%s: the writer's frame differs from encodeFrameWith's", name)
					}
					if f.size() != len(want) {
						t.Fatalf("%s: size %d, frame is %d bytes", name, f.size(), len(want))
					}
				}
			}
		}
	}
}

// TestRawFrameSizeChecked: a raw message too large for this end's frame limit fails
// before anything is queued, as an encoded one does.
func TestRawFrameSizeChecked(t *testing.T) {
	c := &BanConn{cfg: &config{maxFrame: 1000}}
	f := rawFrame("act", make([]byte, 2000), nil, false)
	if err := c.checkSize(f.size()); err == nil || !strings.Contains(err.Error(), "limit 1000") {
		t.Fatalf("a 2,000-byte payload under a 1,000-byte frame limit: %v, want ErrFrameTooLarge", err)
	}
	small := rawFrame("act", make([]byte, 100), nil, false)
	if err := c.checkSize(small.size()); err != nil {
		t.Fatalf("a 100-byte payload: %v", err)
	}
}
