package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/banfleet/banfleet/worker"
	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel"
)

// FuzzWorkerControl: what a worker decodes from its master, fuzzed. A fake master (one
// banio server for the whole run) talks to a fresh worker per input and sends, by
// mode: a fuzzed job envelope; a fuzzed cancel for a running job; or a fuzzed answer to
// the worker's blob download. Each must be handled as documented (the reply envelope,
// the cancellation, the blob's hash check), without a panic, also none recovered.

const (
	modeJob = iota
	modeCancel
	modeBlob
	workerModes
)

// logSink collects the logs of the fake master and the worker.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) panics() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	if strings.Contains(s, "panicked") {
		return s
	}
	return ""
}

type fakeMaster struct {
	conns    chan *banio.BanConn // a worker's connection, once it registered
	blobReqs chan []byte
}

func workerSeeds(f *testing.F) {
	job := func(j *protocol.Job) []byte { return protocol.AppendJob(nil, j) }
	for _, b := range [][]byte{
		job(&protocol.Job{ID: "j", Type: "echo", Key: "k1", Attempt: 1, Payload: []byte("payload")}),
		job(&protocol.Job{ID: "j", Type: "echo", Key: "k1", Attempt: 3, Deadline: time.UnixMilli(1), Payload: []byte("late")}),
		job(&protocol.Job{ID: "j", Type: "echo", Key: "k1", Attempt: 1, Deadline: time.Now().Add(time.Hour)}),
		job(&protocol.Job{ID: "j", Type: "nope", Key: "k1", Attempt: 1}),
		job(&protocol.Job{ID: "j", Type: "echo", Key: "k1", Trace: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "baggage": "a=b"}}),
		job(&protocol.Job{ID: "j", Type: "echo", Key: "k1", Trace: map[string]string{"traceparent": "zz", "tracestate": "=,="}}),
		job(&protocol.Job{ID: "j", Type: "slow", Key: "k1", Deadline: time.Now().Add(-time.Second)}),
		{}, {0xff}, {1, 200, 1}, []byte("not an envelope"),
	} {
		f.Add(uint8(modeJob), b)
	}
	for _, s := range []string{`{"id":"c1"}`, `{"id":"c1","attempt":1}`, `{"id":"c1","attempt":2}`, `{"id":"c2"}`, `{"id":"c1","attempt":-1}`, `{}`, `null`, ``, `{"id":1}`} {
		f.Add(uint8(modeCancel), []byte(s))
	}
	for _, b := range [][]byte{append([]byte{1}, "blob bytes!"...), append([]byte{1}, "blob bytes"...), {1}, {1, 'x'}, {0}, {}, {2, 'x'}, append([]byte{0}, "blob bytes!"...)} {
		f.Add(uint8(modeBlob), b)
	}
}

func FuzzWorkerControl(f *testing.F) {
	workerSeeds(f)
	leakcheck.Check(f)
	prevHandler := otel.GetErrorHandler() // fuzzed trace context is reported there
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	f.Cleanup(func() { otel.SetErrorHandler(prevHandler) })
	var logs logSink
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))

	fm := &fakeMaster{conns: make(chan *banio.BanConn, 1), blobReqs: make(chan []byte, 4)}
	srv := banio.NewBanServer("", "fake-master", banio.WithLogger(logger), banio.WithHeartbeat(time.Second, 0))
	srv.InitConn = func(c *banio.BanConn) {
		c.Listen(protocol.ActionRegister, func(*banio.IOMsgRaw) {
			select {
			case fm.conns <- c:
			default:
			}
		})
		c.Listen(protocol.ActionBlobGet, func(m *banio.IOMsgRaw) {
			select {
			case fm.blobReqs <- bytes.Clone(m.Data):
			default:
			}
		})
		c.Listen(protocol.ActionDrain, func(*banio.IOMsgRaw) {})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	f.Cleanup(func() { _ = srv.Close(); <-served })
	addr := ln.Addr().String()

	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		mode %= workerModes
		w := workerFor(addr, logger)
		ctx, stop := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- w.Run(ctx) }()
		defer func() {
			stop()
			select {
			case err := <-ran:
				if err != nil {
					t.Errorf("worker Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the worker did not drain")
			}
			if p := logs.panics(); p != "" {
				t.Fatalf("a handler panicked: %s", p)
			}
		}()
		var c *banio.BanConn
		select {
		case c = <-fm.conns:
		case <-time.After(10 * time.Second):
			t.Fatal("the worker did not register")
		}
		for len(fm.blobReqs) > 0 {
			<-fm.blobReqs
		}
		send := func(action string, data []byte) {
			t.Helper()
			if err := c.Write(&banio.IOMsgRaw{Action: action, Data: data}); err != nil {
				t.Fatalf("write %s: %v", action, err)
			}
		}
		// startJob sends a job and returns the wait for its reply.
		startJob := func(j *protocol.Job) string {
			t.Helper()
			key := c.SetWait(j.Key, 1)
			send(protocol.JobAction(j.Type), protocol.AppendJob(nil, j))
			return key
		}
		reply := func(key string) *protocol.Reply {
			t.Helper()
			res, err := c.WaitResult(context.Background(), key, 10*time.Second)
			if err != nil {
				t.Fatalf("no reply to %s: %v", key, err)
			}
			rep, err := protocol.DecodeReply(res)
			if err != nil {
				t.Fatalf("reply %q: %v", res, err)
			}
			if rep.WorkerID != w.ID() {
				t.Fatalf("reply from %q, want %q", rep.WorkerID, w.ID())
			}
			return rep
		}

		switch mode {
		case modeJob:
			env, err := protocol.DecodeJob(data)
			if err != nil {
				send(protocol.JobAction("echo"), data)
				return // dropped; the drain shows the worker survived it
			}
			if env.Type == "slow" || env.Type == "blob" {
				return // nothing to wait for: these end with the drain
			}
			key := c.SetWait(env.Key, 1)
			send(protocol.JobAction("echo"), data)
			rep := reply(key)
			late := !env.Deadline.IsZero() && !time.Now().Before(env.Deadline)
			switch {
			case rep.Attempt != env.Attempt:
				t.Fatalf("reply for attempt %d, job attempt %d", rep.Attempt, env.Attempt)
			case env.Type != "echo":
				if rep.Kind != protocol.KindRemote || rep.Code != "no_handler" {
					t.Fatalf("job of unknown type %q: %+v", env.Type, rep)
				}
			case late && rep.Kind == protocol.KindDeadline:
			case rep.Kind != protocol.KindOK || !bytes.Equal(rep.Payload, env.Payload):
				t.Fatalf("echo job %+v: reply %+v", env, rep)
			}
		case modeCancel:
			key := startJob(&protocol.Job{ID: "c1", Type: "slow", Key: "c1#1", Attempt: 1})
			send(protocol.ActionCancel, data)
			var cm protocol.CancelMsg
			if json.Unmarshal(data, &cm) != nil || cm.ID != "c1" || (cm.Attempt != 0 && cm.Attempt != 1) {
				send(protocol.ActionCancel, []byte(`{"id":"c1"}`)) // the fuzzed one was not for this job
			}
			if rep := reply(key); rep.Kind != protocol.KindCanceled {
				t.Fatalf("cancelled job: %+v", rep)
			}
		case modeBlob:
			// The job asks for the blob the answer carries, or (odd lengths) for
			// another one, so that the worker's hash check is exercised both ways.
			hash, matches := protocol.BlobHash([]byte("another blob")), false
			if len(data) > 0 && len(data)%2 == 0 {
				hash, matches = protocol.BlobHash(data[1:]), true
			}
			key := startJob(&protocol.Job{ID: "b1", Type: "blob", Key: "b1#1", Attempt: 1, Payload: []byte(hash)})
			var req protocol.BlobRequest
			select {
			case b := <-fm.blobReqs:
				if err := json.Unmarshal(b, &req); err != nil || req.Hash != hash || req.Reply == "" {
					t.Fatalf("blob request %q (%v), want hash %s", b, err, hash)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no blob request")
			}
			if err := c.Write(&banio.IOMsgRaw{Action: "__res__" + req.Reply, Data: data}); err != nil {
				t.Fatal(err)
			}
			rep := reply(key)
			switch {
			case len(data) == 0 || data[0] != 1:
				if rep.Kind != protocol.KindRemote || !strings.Contains(rep.Message, "blob not held") && !strings.Contains(rep.Message, "blob too large") {
					t.Fatalf("blob answer %q: reply %+v, want the blob missing or too large", data, rep)
				}
			case !matches:
				if rep.Kind != protocol.KindRemote || !strings.Contains(rep.Message, "hash to") {
					t.Fatalf("blob answer %q for another hash: reply %+v, want a hash mismatch", data, rep)
				}
			case rep.Kind != protocol.KindOK || !bytes.Equal(rep.Payload, data[1:]):
				t.Fatalf("blob %q: reply %+v", data, rep)
			}
		}
	})
}

// workerFor makes a worker whose handlers echo, wait for cancellation, or fetch the
// blob named by the payload.
func workerFor(addr string, logger *slog.Logger) *worker.Worker {
	w := worker.New(addr, worker.WithLogger(logger), worker.WithConcurrency(2), worker.WithDrainGrace(10*time.Millisecond),
		worker.WithConnectBackoff(func() backoff.BackOff { return &backoff.StopBackOff{} }),
		worker.WithBanIO(banio.WithLogger(logger), banio.WithHeartbeat(time.Second, 0),
			banio.WithReconnectBackoff(func() backoff.BackOff { return &backoff.StopBackOff{} })))
	w.Handle("echo", func(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
	w.Handle("slow", func(ctx context.Context, _ *worker.Job) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	w.Handle("blob", func(ctx context.Context, j *worker.Job) (any, error) {
		b, err := j.Blob(ctx, string(j.Payload))
		if err != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return b, err
	})
	return w
}
