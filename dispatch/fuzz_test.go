package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/protocol"
	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel"
)

// FuzzMasterControl sends a fuzzed Data under one of the actions a Master decodes to a
// real Master over loopback (one server for the whole run), from a fresh connection
// per input. Optionally the connection first registers as a worker and is given a job,
// so that the fuzzed Data can also be that job's reply. Beyond "no panic, also none
// that banio recovers", it checks each message's documented effect (docs/protocol.md
// §13) where it has one, that the master keeps answering, and that once the
// connection closes the master holds nothing of it: no worker, no job, no connection.

// Actions of FuzzMasterControl, picked by the low bits of its selector.
var masterActions = []string{
	protocol.ActionRegister, protocol.ActionDrain, protocol.ActionProgress, protocol.ActionCancel,
	protocol.ActionSubmit, protocol.ActionBlobGet, protocol.ActionBlobPut, protocol.ActionBlobDelete,
	"reply", // the reply to the job given to the connection (implies asWorker)
}

// asWorker in the selector: register as a worker of fuzzType and get a job first.
const (
	asWorker = 0x80
	fuzzType = "fz"
)

var storedBlob = []byte("a blob the master holds")

// masterLog records what banio and dispatch log at warning level and above, to catch
// recovered handler panics.
type masterLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *masterLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// panics returns (and forgets) any recovered panic logged since the last call.
func (l *masterLog) panics() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	if !strings.Contains(s, "panicked") {
		return ""
	}
	return s
}

func masterSeeds(f *testing.F) {
	add := func(action string, sel uint8, data ...string) {
		i := slices.Index(masterActions, action)
		for _, d := range data {
			f.Add(uint8(i)|sel, []byte(d))
		}
	}
	info, _ := json.Marshal(dispatch.WorkerInfo{ID: "w1", Name: "host", Capacity: 4, Labels: map[string]string{"gpu": "1"}, Types: []string{"a", "b"}})
	add(protocol.ActionRegister, 0, string(info), `{"id":"w2","types":["fz"]}`, `{"id":"","types":["a"]}`, `{"id":"w3","capacity":-5,"types":[]}`,
		`{"id":"w4","capacity":1000000000,"types":["a","a"]}`, `{"id":"w5","inflight":99,"draining":true,"remote":"spoofed","types":["a"]}`, `null`, `[]`, `{`)
	add(protocol.ActionRegister, asWorker, `{"id":"again","capacity":0,"types":["other"]}`)
	add(protocol.ActionDrain, 0, ``, `x`)
	add(protocol.ActionDrain, asWorker, ``)
	for _, sel := range []uint8{0, asWorker} {
		add(protocol.ActionProgress, sel, `{"id":"fzjob","attempt":1,"done":1,"total":2,"msg":"half"}`, `{"id":"fzjob","attempt":7}`,
			`{"id":"nope","attempt":1,"done":-1,"total":-9223372036854775808}`, `{"done":1e300}`, `null`)
		add(protocol.ActionCancel, sel, `{"id":"fzjob"}`, `{"id":"fzjob","attempt":1}`, `{"id":"nope","attempt":-1}`, `{}`, `"x"`)
	}
	for _, s := range []*protocol.Submit{
		{ID: "s1", Type: "a", Key: "r1", Timeout: time.Second, Payload: []byte("p")},
		{ID: "fzjob", Type: fuzzType, Key: "r2"}, // a duplicate id when asWorker
		{Type: fuzzType, Key: "r3", Timeout: time.Millisecond, MaxAttempts: 1},
		{Type: "a", Key: "r4", Trace: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
		{Type: "a", Key: "r5", Trace: map[string]string{"traceparent": "garbage", "baggage": "k=v,%%%"}},
	} {
		add(protocol.ActionSubmit, 0, string(protocol.AppendSubmit(nil, s)))
		add(protocol.ActionSubmit, asWorker, string(protocol.AppendSubmit(nil, s)))
	}
	add(protocol.ActionSubmit, 0, ``, "\x01\x00\x00\x00", "\x02")
	req, _ := json.Marshal(protocol.BlobRequest{Hash: protocol.BlobHash(storedBlob), Reply: "b1"})
	add(protocol.ActionBlobGet, 0, string(req), `{"hash":"sha256:00","reply":"b2"}`, `{"hash":"x"}`, `{"reply":""}`, `null`)
	add(protocol.ActionBlobPut, 0, ``, `blob`, string(bytes.Repeat([]byte{0xff}, 3000)))
	add(protocol.ActionBlobDelete, 0, `sha256:00`, ``, protocol.BlobHash([]byte("blob")))
	for _, r := range []*protocol.Reply{
		{Attempt: 1, Kind: protocol.KindOK, Payload: []byte("result")},
		{Attempt: 1, Kind: protocol.KindOK},
		{Attempt: 2, Kind: protocol.KindOK, Payload: []byte("stale")},
		{Attempt: 1, Kind: protocol.KindRemote, Code: "E1", Message: "boom"},
		{Attempt: 1, Kind: protocol.KindRemote, Retryable: true, Message: "again"},
		{Attempt: 1, Kind: protocol.KindHandedBack},
		{Attempt: 1, Kind: protocol.KindDeadline}, {Attempt: 1, Kind: protocol.KindCanceled},
		{Attempt: 1, Kind: protocol.KindQueueFull, Message: "not from a worker"},
	} {
		add("reply", asWorker, string(protocol.AppendReply(nil, r)))
	}
	add("reply", asWorker, ``, "\x01\x01\x08\x00\x00\x00\x00")
}

func FuzzMasterControl(f *testing.F) {
	masterSeeds(f)
	leakcheck.Check(f)
	// Fuzzed trace context is refused by the propagator through otel's global error
	// handler, which would print every refusal.
	prevHandler := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	f.Cleanup(func() { otel.SetErrorHandler(prevHandler) })
	var logs masterLog
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := banio.NewBanServer("", "fuzz-master", banio.WithLogger(logger),
		banio.WithMaxFrameSize(1<<20), banio.WithMaxInflatedSize(1<<20), banio.WithHeartbeat(time.Second, 0))
	// Every input reuses the job id "fzjob" and must leave nothing behind once its
	// connection closes: no outcome retained for the next input to attach to, and no
	// caller grace keeping its jobs alive.
	m := dispatch.NewMaster(srv, dispatch.WithLogger(logger), dispatch.WithRetryBackoff(time.Millisecond, 2*time.Millisecond),
		dispatch.WithMaxAttempts(2), dispatch.WithQueueLimit(16), dispatch.WithResultRetention(0), dispatch.WithCallerGrace(0))
	m.PutBlob(storedBlob)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	f.Cleanup(func() {
		_ = m.Close()
		_ = srv.Close()
		<-served
	})
	addr := ln.Addr().String()

	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		action := masterActions[int(sel&^asWorker)%len(masterActions)]
		worker := sel&asWorker != 0 || action == "reply"
		if len(data) == 0 {
			data = nil
		}
		var local string
		cl, err := banio.NewClientIO(addr, banio.WithHeartbeat(time.Second, 0),
			banio.WithReconnectBackoff(func() backoff.BackOff { return &backoff.StopBackOff{} }),
			banio.WithDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				var d net.Dialer
				nc, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					local = nc.LocalAddr().String()
				}
				return nc, err
			}))
		if err != nil {
			t.Fatal(err)
		}
		jobs := make(chan []byte, 8)
		cl.ListenInline(protocol.JobActionPrefix, func(msg *banio.IOMsgRaw) {
			select {
			case jobs <- bytes.Clone(msg.Data):
			default:
			}
		})
		ran := make(chan struct{})
		go func() { defer close(ran); _ = cl.RunForever() }()
		defer func() {
			_ = cl.Close()
			<-ran
			checkForgotten(t, m, srv, local)
			if p := logs.panics(); p != "" {
				t.Fatalf("a handler panicked: %s", p)
			}
		}()
		write := func(action string, data []byte) {
			t.Helper()
			if err := cl.Write(&banio.IOMsgRaw{Action: action, Data: data}); err != nil {
				t.Fatalf("write %s: %v", action, err)
			}
		}
		wait := func(key string, d time.Duration) ([]byte, error) {
			return cl.WaitResult(context.Background(), key, d)
		}

		var job *protocol.Job
		var subKey string
		if worker {
			info, _ := json.Marshal(dispatch.WorkerInfo{ID: "fz-worker", Capacity: 1, Types: []string{fuzzType}})
			write(protocol.ActionRegister, info)
			subKey = cl.SetWait("", 1)
			write(protocol.ActionSubmit, protocol.AppendSubmit(nil, &protocol.Submit{ID: "fzjob", Type: fuzzType, Key: subKey, Payload: []byte("in")}))
			select {
			case b := <-jobs:
				if job, err = protocol.DecodeJob(b); err != nil {
					t.Fatalf("the master sent a job envelope that does not decode: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no job for the registered worker")
			}
		}

		// What the message should make the master answer, where it answers.
		var answerKey string
		switch action {
		case protocol.ActionSubmit:
			if s, err := protocol.DecodeSubmit(data); err == nil && s.Key != subKey {
				answerKey = cl.SetWait(s.Key, 1)
			}
		case protocol.ActionBlobGet:
			var req protocol.BlobRequest
			if json.Unmarshal(data, &req) == nil && req.Reply != "" {
				answerKey = cl.SetWait(req.Reply, 1)
			}
		}
		switch action {
		case "reply":
			write("__res__"+job.Key, data)
		case protocol.ActionBlobPut, protocol.ActionBlobDelete:
			write(action+"fz", data)
		default:
			write(action, data)
		}

		// The blob handler runs after every earlier handler of this connection, and
		// inline handlers (progress, submit) have run before it.
		syncKey := cl.SetWait("", 1)
		write(protocol.ActionBlobDelete+syncKey, []byte("sync"))
		if res, err := wait(syncKey, 10*time.Second); err != nil || string(res) != "0" {
			t.Fatalf("the master stopped answering after %s %q: %q, %v", action, data, res, err)
		}

		switch action {
		case protocol.ActionRegister:
			var info dispatch.WorkerInfo
			var want *dispatch.WorkerInfo
			if json.Unmarshal(data, &info) == nil && info.ID != "" {
				want = &info
			} else if worker {
				want = &dispatch.WorkerInfo{ID: "fz-worker", Capacity: 1, Types: []string{fuzzType}}
			}
			got := workersAt(m, local)
			switch {
			case want == nil && len(got) != 0:
				t.Fatalf("registration %q gave workers %+v", data, got)
			case want != nil && (len(got) != 1 || got[0].ID != want.ID || got[0].Capacity != max(want.Capacity, 1) || !slices.Equal(got[0].Types, want.Types)):
				t.Fatalf("registration %q: workers %+v, want %+v", data, got, want)
			}
		case protocol.ActionDrain:
			for _, w := range workersAt(m, local) {
				if !w.Draining {
					t.Fatalf("worker %s not draining after %s", w.ID, action)
				}
			}
		case protocol.ActionBlobPut:
			if h := protocol.BlobHash(data); h != protocol.BlobHash(storedBlob) && !m.DeleteBlob(h) {
				t.Fatalf("uploaded blob %s not stored", h)
			}
		case protocol.ActionBlobGet:
			if answerKey == "" {
				break
			}
			var req protocol.BlobRequest
			_ = json.Unmarshal(data, &req)
			want := []byte{0}
			if req.Hash == protocol.BlobHash(storedBlob) {
				want = append([]byte{1}, storedBlob...)
			}
			if res, err := wait(answerKey, 10*time.Second); err != nil || !bytes.Equal(res, want) {
				t.Fatalf("blob request %q answered %q, %v; want %q", data, res, err, want)
			}
		case protocol.ActionSubmit:
			if answerKey == "" {
				break
			}
			// Answered at once when refused; a queued or running job is answered
			// later (not awaited here), and any answer must be a reply envelope.
			if res, err := wait(answerKey, time.Millisecond); err == nil {
				if _, err := protocol.DecodeReply(res); err != nil {
					t.Fatalf("submission %q answered with %q: %v", data, res, err)
				}
			}
		case "reply":
			checkJobOutcome(t, data, job, func() ([]byte, error) { return wait(subKey, 10*time.Second) })
		}
	})
}

// checkJobOutcome checks what the remote caller gets once the worker answered job with
// data, for the replies that end the job.
func checkJobOutcome(t *testing.T, data []byte, job *protocol.Job, result func() ([]byte, error)) {
	t.Helper()
	rep, err := protocol.DecodeReply(data)
	if err != nil || rep.Attempt != job.Attempt || rep.Kind == protocol.KindHandedBack || (rep.Kind == protocol.KindRemote && rep.Retryable) {
		return // the job goes back to the queue: nothing ends yet
	}
	res, err := result()
	if err != nil {
		t.Fatalf("no outcome after reply %q: %v", data, err)
	}
	out, err := protocol.DecodeReply(res)
	if err != nil {
		t.Fatalf("outcome %q: %v", res, err)
	}
	switch rep.Kind {
	case protocol.KindOK:
		if out.Kind != protocol.KindOK || !bytes.Equal(out.Payload, rep.Payload) {
			t.Fatalf("reply %+v gave the caller %+v", rep, out)
		}
	case protocol.KindRemote:
		if out.Kind != protocol.KindRemote || out.Code != rep.Code || out.Message != rep.Message || out.Retryable {
			t.Fatalf("reply %+v gave the caller %+v", rep, out)
		}
	case protocol.KindDeadline, protocol.KindCanceled:
		if out.Kind != rep.Kind {
			t.Fatalf("reply %+v gave the caller %+v", rep, out)
		}
	default: // kinds a worker may not send: a non-retryable remote error
		if out.Kind != protocol.KindRemote || out.Retryable || !strings.Contains(out.Message, fmt.Sprint("unexpected reply kind ", rep.Kind)) {
			t.Fatalf("reply %+v gave the caller %+v", rep, out)
		}
	}
}

func workersAt(m *dispatch.Master, remote string) []dispatch.WorkerInfo {
	var out []dispatch.WorkerInfo
	for _, w := range m.Workers() {
		if w.Remote == remote {
			out = append(out, w)
		}
	}
	return out
}

// checkForgotten waits until the master holds nothing of the closed connection.
func checkForgotten(t *testing.T, m *dispatch.Master, srv *banio.ServerIO, remote string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := m.Stats()
		if s.Workers == 0 && s.InFlight == 0 && s.Queued == 0 && len(srv.Conns()) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the connection closed the master still holds %+v, workers %+v, %d connections",
				s, workersAt(m, remote), len(srv.Conns()))
		}
		time.Sleep(time.Millisecond)
	}
}
