package dispatch_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
)

// logBuffer is a log destination that tests can read while the master writes to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count is how many log lines contain s.
func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// String is what was logged so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func TestBadBlobRequestsLoggedOncePerConnection(t *testing.T) {
	leakcheck.Check(t)
	var logs logBuffer
	f := newFleet(t, dispatch.WithLogger(logs.logger()))
	hash, err := f.master.PutBlob([]byte("known"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := banio.NewClientIO(f.addr, banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = conn.RunForever()
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-runDone
	})
	for i := range 100 {
		bad := []byte("{not json")
		if i%2 == 1 {
			bad = []byte(`{"hash":"` + hash + `"}`) // no reply key
		}
		if err := conn.Write(&banio.IOMsgRaw{Action: protocol.ActionBlobGet, Data: bad}); err != nil {
			t.Fatal(err)
		}
	}
	// The master handles one connection's requests in order: once a good request is
	// answered, the 100 bad ones before it have been handled.
	key := conn.SetWait("", 1)
	if err := conn.WriteMsg(&banio.IOMsg{Action: protocol.ActionBlobGet, Data: protocol.BlobRequest{Hash: hash, Reply: key}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := conn.WaitResult(ctx, key, 0); err != nil || string(res) != "\x01known" {
		t.Fatalf("good request after bad ones: %q %v", res, err)
	}
	if n := logs.count("bad blob request"); n != 1 {
		t.Fatalf("100 bad blob requests from one connection logged %d times, want once", n)
	}
}
