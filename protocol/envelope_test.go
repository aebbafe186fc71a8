package protocol

import (
	"bytes"
	"errors"
	"testing"
	"time"
	"unsafe"
)

func TestJobRoundTrip(t *testing.T) {
	in := &Job{ID: "j1", Type: "echo", Key: "j1:2", Attempt: 2, Deadline: time.UnixMilli(1700000000123),
		Trace:   map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		Payload: bytes.Repeat([]byte{0xff}, 1<<20)}
	out, err := DecodeJob(AppendJob(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.Type != in.Type || out.Key != in.Key || out.Attempt != 2 ||
		!out.Deadline.Equal(in.Deadline) || out.Trace["traceparent"] != in.Trace["traceparent"] || !bytes.Equal(out.Payload, in.Payload) {
		t.Fatalf("round trip changed the job: %+v", out)
	}
	if n := len(AppendJob(nil, in)) - len(in.Payload); n > 120 {
		t.Fatalf("header of %d bytes for a 1 MiB payload; payload must travel as-is", n)
	}
}

func TestReplyAndSubmitRoundTrip(t *testing.T) {
	rep := &Reply{Attempt: 3, Kind: KindRemote, Retryable: true, Code: "E42", Message: "boom", WorkerID: "w1", Payload: []byte("x")}
	got, err := DecodeReply(AppendReply(nil, rep))
	if err != nil || got.Attempt != 3 || got.Kind != KindRemote || !got.Retryable || got.Code != "E42" ||
		got.Message != "boom" || got.WorkerID != "w1" || string(got.Payload) != "x" {
		t.Fatalf("reply round trip: %+v, %v", got, err)
	}
	sub := &Submit{ID: "id", Type: "t", Key: "k", Timeout: 1500 * time.Millisecond, MaxAttempts: 4, Payload: []byte("p")}
	gs, err := DecodeSubmit(AppendSubmit(nil, sub))
	if err != nil || gs.ID != "id" || gs.Type != "t" || gs.Key != "k" || gs.Timeout != sub.Timeout || gs.MaxAttempts != 4 || string(gs.Payload) != "p" {
		t.Fatalf("submit round trip: %+v, %v", gs, err)
	}
}

func TestMalformed(t *testing.T) {
	good := AppendJob(nil, &Job{ID: "a", Type: "b", Key: "c", Attempt: 1})
	cases := map[string][]byte{
		"empty":       nil,
		"version":     {9, 1, 'a'},
		"truncated":   good[:3],
		"huge string": {Version, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"no id":       AppendJob(nil, &Job{Type: "b", Key: "c"}),
	}
	for name, data := range cases {
		if _, err := DecodeJob(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, err := DecodeReply([]byte{Version, 1, 99, 0, 0, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown kind: got %v", err)
	}
}

// TestHeadersPrefixTheEnvelopes: a header followed by the payload is the whole
// envelope, which is what lets senders pass the payload to banio without copying it.
func TestHeadersPrefixTheEnvelopes(t *testing.T) {
	payload := []byte("the payload")
	job := &Job{ID: "j", Type: "t", Key: "k", Attempt: 1, Payload: payload}
	rep := &Reply{Attempt: 1, Kind: KindOK, WorkerID: "w", Payload: payload}
	sub := &Submit{ID: "j", Type: "t", Key: "k", Timeout: time.Second, Payload: payload}
	for name, c := range map[string]struct{ head, whole []byte }{
		"job":   {AppendJobHeader(nil, job), AppendJob(nil, job)},
		"reply": {AppendReplyHeader(nil, rep), AppendReply(nil, rep)},
		"reply (own buffer)": {ReplyHeader(&Reply{Kind: KindRemote, Message: "a message", Payload: payload}),
			AppendReply(nil, &Reply{Kind: KindRemote, Message: "a message", Payload: payload})},
		"submit": {AppendSubmitHeader(nil, sub), AppendSubmit(nil, sub)},
	} {
		if got := append(c.head, payload...); !bytes.Equal(got, c.whole) {
			t.Errorf("%s: header+payload %x, envelope %x", name, got, c.whole)
		}
	}
}

// TestReplyHeaderSizedExactly: a worker keeps each reply's header until the master has
// it, so ReplyHeader's buffer holds the header and nothing more, whatever its fields.
func TestReplyHeaderSizedExactly(t *testing.T) {
	long := string(bytes.Repeat([]byte("m"), 300)) // a two-byte length
	for _, r := range []*Reply{
		{Kind: KindOK, Payload: []byte("payload")},
		{Attempt: 1 << 20, Kind: KindRemote, Retryable: true, Code: "E1", Message: long, WorkerID: "worker-7"},
	} {
		head := ReplyHeader(r)
		if len(head) != cap(head) || !bytes.Equal(head, AppendReplyHeader(nil, r)) {
			t.Errorf("attempt %d, %d-byte message: header of %d bytes in a buffer of %d", r.Attempt, len(r.Message), len(head), cap(head))
		}
	}
}

// TestDecodeSubmitSharesAKeyEqualToTheID: a Client's job without an id of its own uses
// its wait key as the id; the master then holds one string for both, not two.
func TestDecodeSubmitSharesAKeyEqualToTheID(t *testing.T) {
	for _, c := range []struct{ id, key string }{{"same-key", "same-key"}, {"an-id", "a-key"}} {
		var s Submit
		if err := DecodeSubmitInto(&s, AppendSubmit(nil, &Submit{ID: c.id, Type: "t", Key: c.key})); err != nil {
			t.Fatal(err)
		}
		shared := unsafe.StringData(s.ID) == unsafe.StringData(s.Key)
		if s.ID != c.id || s.Key != c.key || shared != (c.id == c.key) {
			t.Errorf("id %q key %q: decoded %q %q, one string: %v", c.id, c.key, s.ID, s.Key, shared)
		}
	}
}
