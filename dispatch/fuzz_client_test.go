package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
)

// FuzzClientReply: what a remote Client decodes from its master, fuzzed. A fake master
// (one banio server, one Client, for the whole run) answers each submission with a
// fuzzed progress report and then a fuzzed reply. The report reaches the ticket exactly
// when it is JSON for this job; the reply becomes the result or the error its kind
// stands for, and anything that is not a reply envelope an ErrBadJob.
func FuzzClientReply(f *testing.F) {
	progress, _ := json.Marshal(protocol.ProgressMsg{ID: "%ID%", Attempt: 1, Done: 3, Total: 10, Message: "m", WorkerID: "w"})
	for _, r := range []*protocol.Reply{
		{Kind: protocol.KindOK, Payload: []byte("result")}, {Kind: protocol.KindOK},
		{Attempt: 2, Kind: protocol.KindRemote, Retryable: true, Code: "E", Message: "boom", WorkerID: "w"},
		{Kind: protocol.KindHandedBack}, {Kind: protocol.KindWorkerLost, Message: "lost"}, {Kind: protocol.KindQueueFull},
		{Kind: protocol.KindDeadline}, {Kind: protocol.KindCanceled}, {Kind: protocol.KindRejected, Message: "dup"},
	} {
		f.Add(progress, protocol.AppendReply(nil, r))
	}
	for _, p := range []string{`{"id":"%ID%"}`, `{"id":"other","done":1}`, `{"id":"%ID%","done":"x"}`, `null`, ``} {
		f.Add([]byte(p), []byte{protocol.Version, 0, protocol.KindOK, 0, 0, 0, 0})
	}
	f.Add([]byte(nil), []byte{})
	f.Add([]byte(nil), []byte{protocol.Version, 0, protocol.KindRejected + 1, 0, 0, 0, 0})
	f.Add([]byte(nil), []byte("not a reply"))

	leakcheck.Check(f)
	type submission struct {
		c *banio.BanConn
		s *protocol.Submit
	}
	subs := make(chan submission, 1)
	var logs masterLog
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := banio.NewBanServer("", "fake-master", banio.WithLogger(logger), banio.WithHeartbeat(time.Second, 0))
	srv.InitConn = func(c *banio.BanConn) {
		c.ListenInline(protocol.ActionSubmit, func(m *banio.IOMsgRaw) {
			s, err := protocol.DecodeSubmit(m.Data)
			if err != nil {
				panic(fmt.Sprintf("the client sent a submission that does not decode: %v", err))
			}
			subs <- submission{c, s}
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	client, err := dispatch.NewClient(ln.Addr().String(), dispatch.WithBanIO(banio.WithLogger(logger), banio.WithHeartbeat(time.Second, 0)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		_ = client.Close()
		_ = srv.Close()
		<-served
	})

	n := 0
	f.Fuzz(func(t *testing.T, progress, reply []byte) {
		n++
		id := fmt.Sprint("job-", n)
		progress = bytes.ReplaceAll(progress, []byte("%ID%"), []byte(id))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tk, err := client.Submit(context.Background(), dispatch.Job{ID: id, Type: "t", Payload: []byte("p")})
		if err != nil {
			t.Fatal(err)
		}
		reports := tk.Progress()
		var sub submission
		select {
		case sub = <-subs:
		case <-ctx.Done():
			t.Fatal("no submission")
		}
		if sub.s.ID != id || sub.s.Type != "t" || string(sub.s.Payload) != "p" {
			t.Fatalf("submission %+v", sub.s)
		}
		if err := sub.c.Write(&banio.IOMsgRaw{Action: protocol.ActionProgress, Data: progress}); err != nil {
			t.Fatal(err)
		}
		if err := sub.c.SendWaitRes(sub.s.Key, reply); err != nil {
			t.Fatal(err)
		}
		res, err := tk.Wait(ctx)
		if p := logs.panics(); p != "" {
			t.Fatalf("a handler panicked: %s", p)
		}

		var got []dispatch.Progress
		for p := range reports { // closed once the ticket resolved
			got = append(got, p)
		}
		var pm protocol.ProgressMsg
		if json.Unmarshal(progress, &pm) == nil && pm.ID == id {
			want := dispatch.Progress{Done: pm.Done, Total: pm.Total, Message: pm.Message, Attempt: pm.Attempt, WorkerID: pm.WorkerID}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("progress %q: reports %+v, want %+v", progress, got, want)
			}
		} else if len(got) != 0 {
			t.Fatalf("progress %q for another job reached this one: %+v", progress, got)
		}

		rep, derr := protocol.DecodeReply(reply)
		if derr != nil {
			if !errors.Is(err, dispatch.ErrBadJob) {
				t.Fatalf("reply %q (%v): %q, %v; want ErrBadJob", reply, derr, res, err)
			}
			return
		}
		var re *dispatch.RemoteError
		switch rep.Kind {
		case protocol.KindOK:
			if err != nil || !bytes.Equal(res, rep.Payload) {
				t.Fatalf("reply %+v: %q, %v", rep, res, err)
			}
		case protocol.KindRemote:
			if !errors.As(err, &re) || *re != (dispatch.RemoteError{Message: rep.Message, Code: rep.Code, Retryable: rep.Retryable, WorkerID: rep.WorkerID, Attempt: rep.Attempt}) {
				t.Fatalf("reply %+v: %v", rep, err)
			}
		default:
			want := map[byte]error{protocol.KindWorkerLost: dispatch.ErrWorkerLost, protocol.KindQueueFull: dispatch.ErrQueueFull,
				protocol.KindDeadline: context.DeadlineExceeded, protocol.KindCanceled: context.Canceled}[rep.Kind]
			if want == nil {
				want = dispatch.ErrBadJob
			}
			if !errors.Is(err, want) || res != nil {
				t.Fatalf("reply %+v: %q, %v; want %v", rep, res, err, want)
			}
		}
	})
}
