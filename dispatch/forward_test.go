package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
)

// A worker's OK reply reaches a remote caller as the worker encoded it: the master
// forwards it without decoding and encoding it again, so the reply still carries the
// worker's attempt number (a reply the master encodes itself carries none). A failure
// is still the master's own reply.
func TestRemoteReplyForwardedAsTheWorkerWroteIt(t *testing.T) {
	leakcheck.Check(t)
	f := newFleet(t)
	f.startWorker(map[string]worker.Handler{"echo": echo})
	cl, err := banio.NewClientIO(f.addr, banio.WithHeartbeat(50*time.Millisecond, 400*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	go func() { defer close(ran); _ = cl.RunForever() }()
	defer func() { _ = cl.Close(); <-ran }()

	submit := func(typ string) *protocol.Reply {
		t.Helper()
		key := cl.SetWait("", 1)
		sub := protocol.AppendSubmit(nil, &protocol.Submit{ID: banio.NewKey(), Type: typ, Key: key, Timeout: 5 * time.Second, Payload: []byte("forward me")})
		if err := cl.Write(&banio.IOMsgRaw{Action: protocol.ActionSubmit, Data: sub}); err != nil {
			t.Fatal(err)
		}
		data, err := cl.WaitResult(context.Background(), key, 10*time.Second)
		if err != nil {
			t.Fatalf("reply to a %s job: %v", typ, err)
		}
		rep, err := protocol.DecodeReply(data)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := submit("echo"); rep.Kind != protocol.KindOK || string(rep.Payload) != "forward me" || rep.Attempt != 1 {
		t.Fatalf("OK reply: kind %d, attempt %d, payload %q; want the worker's reply to attempt 1 as it is", rep.Kind, rep.Attempt, rep.Payload)
	}
	// No worker serves this type: the job times out in its queue, and the master
	// answers with a reply of its own.
	if rep := submitTimeout(t, cl); rep.Kind != protocol.KindDeadline || rep.Attempt != 0 {
		t.Fatalf("timeout reply: kind %d, attempt %d; want the master's deadline reply", rep.Kind, rep.Attempt)
	}
}

func submitTimeout(t *testing.T, cl *banio.ClientIO) *protocol.Reply {
	t.Helper()
	key := cl.SetWait("", 1)
	sub := protocol.AppendSubmit(nil, &protocol.Submit{ID: banio.NewKey(), Type: "nobody", Key: key, Timeout: 20 * time.Millisecond})
	if err := cl.Write(&banio.IOMsgRaw{Action: protocol.ActionSubmit, Data: sub}); err != nil {
		t.Fatal(err)
	}
	data, err := cl.WaitResult(context.Background(), key, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := protocol.DecodeReply(data)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
