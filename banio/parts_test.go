package banio

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/banfleet/banfleet/internal/leakcheck"
)

// TestPartsFrameIsTheJoinedFrame: data given as Parts encodes to exactly the frame of
// its concatenation, in every codec.
func TestPartsFrameIsTheJoinedFrame(t *testing.T) {
	cfg, err := buildConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	head := []byte("header|")
	for _, body := range [][]byte{nil, []byte("small"), compressible} {
		joined := append(append([]byte(nil), head...), body...)
		for _, codec := range []wireCodec{wireZlib, wireFast, wireRaw} {
			want, err := encodeFrameWith(nil, &cfg, "act", joined, nil, true, false, codec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeFrameWith(nil, &cfg, "act", head, body, true, false, codec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("codec %d, %d-byte body: Parts frame differs from the joined one", codec, len(body))
			}
		}
	}
}

// TestPartsRoundTrip: Parts travel through WriteMsg and SendWaitRes, encrypted too.
func TestPartsRoundTrip(t *testing.T) {
	leakcheck.Check(t)
	key := WithAESKey("0123456789abcdef0123456789abcdef")
	for _, opts := range [][]Option{nil, {key}} {
		_, addr, conns := startServer(t, opts...)
		c := dialClient(t, addr, opts...)
		sc := recv(t, conns, 5*time.Second, "server conn")
		sc.Listen("parts", func(m *IOMsgRaw) {
			k, payload, _ := bytes.Cut(m.Data, []byte{'|'})
			_ = sc.SendWaitResNoBlock(string(k), Parts{Head: []byte("echo:"), Body: payload})
		})
		k := c.SetWait("", 1)
		if err := c.WriteMsg(&IOMsg{Action: "parts", Data: Parts{Head: []byte(k + "|"), Body: compressible}}); err != nil {
			t.Fatal(err)
		}
		got, err := c.WaitResult(context.Background(), k, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("echo:"), compressible...); !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d", len(got), len(want))
		}
	}
}
