package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"
)

// One fuzz target per decoder. Each checks the round trip: whatever decodes
// re-encodes, no longer than it came, into bytes that decode to the same value and
// re-encode to the same bytes; errors wrap ErrMalformed; the payload is the tail of the
// input, not a copy.

var traceparent = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

// fullTrace has the most entries a header may carry; one more is refused.
func fullTrace(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprint("k", i)] = "v"
	}
	return m
}

// overlong re-encodes the uvarint at the start of b with one more byte than needed.
func overlong(v uint64) []byte {
	b := binary.AppendUvarint(nil, v)
	b[len(b)-1] |= 0x80
	return append(b, 0)
}

// checkPayloadAlias fails unless payload is data's tail.
func checkPayloadAlias(t *testing.T, data, payload []byte) {
	t.Helper()
	if len(payload) > 0 && &payload[len(payload)-1] != &data[len(data)-1] {
		t.Fatal("payload is not the tail of the input")
	}
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v does not wrap ErrMalformed", err)
	}
}

// checkReencoding: enc (the encoding of a decoded value) is no longer than data,
// decodes to an equal value (same), and re-encodes to itself when the encoding is
// deterministic (the trace map is written in map order).
func checkReencoding[T any](t *testing.T, data, enc []byte, v T, decode func([]byte) (T, error), encode func(T) []byte, same func(a, b T) bool, traceLen int) {
	t.Helper()
	if len(enc) > len(data) {
		t.Fatalf("re-encoding grew %d → %d bytes", len(data), len(enc))
	}
	v2, err := decode(enc)
	if err != nil {
		t.Fatalf("re-encoded %x does not decode: %v", enc, err)
	}
	if !same(v, v2) {
		t.Fatalf("round trip changed %+v into %+v", v, v2)
	}
	if enc2 := encode(v2); traceLen <= 1 && !bytes.Equal(enc2, enc) {
		t.Fatalf("re-encoding is not stable: %x then %x", enc, enc2)
	}
}

func FuzzDecodeJob(f *testing.F) {
	for _, j := range []*Job{
		{ID: "a", Type: "b", Key: "c", Attempt: 1, Trace: map[string]string{"k": "v"}, Payload: []byte("x")},
		{ID: "j1", Type: "echo", Key: "j1#2", Attempt: 2, Deadline: time.UnixMilli(1700000000123), Trace: traceparent, Payload: bytes.Repeat([]byte{0xff}, 300)},
		{ID: "j", Type: "t", Key: "k", Attempt: 1<<31 - 1, Deadline: time.UnixMilli(-1)},
		{ID: "j", Type: "t", Key: "k", Trace: fullTrace(maxTraceEntries)},
		{ID: "j", Type: "t", Key: "k", Trace: map[string]string{"": ""}},
	} {
		f.Add(AppendJob(nil, j))
	}
	f.Add([]byte{})
	f.Add([]byte{9, 1, 'a'})
	f.Add(AppendJob(nil, &Job{Type: "b", Key: "c"}))                                                                 // no id
	f.Add(AppendJob(nil, &Job{ID: "a", Type: "b", Key: "c", Trace: fullTrace(maxTraceEntries + 1)}))                 // too many
	f.Add(append([]byte{Version, 1, 'a', 1, 'b', 1, 'c'}, append(overlong(3), 0, 0)...))                             // overlong attempt
	f.Add([]byte{Version, 1, 'a', 1, 'b', 1, 'c', 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0})                               // attempt 2^31
	f.Add([]byte{Version, 1, 'a', 1, 'b', 1, 'c', 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}) // min int64 deadline
	f.Add([]byte{Version, 1, 'a', 1, 'b', 1, 'c', 1, 0, 2, 1, 'k', 1, 'v', 1, 'k', 1, 'w'})                          // duplicate trace key
	f.Add([]byte{Version, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err != nil {
			checkErr(t, err)
			return
		}
		if j.ID == "" || j.Type == "" || j.Key == "" || j.Attempt < 0 || len(j.Trace) > maxTraceEntries {
			t.Fatalf("accepted %+v", j)
		}
		checkPayloadAlias(t, data, j.Payload)
		enc := AppendJob(nil, j)
		if head := AppendJobHeader(nil, j); !bytes.Equal(append(head, j.Payload...), enc) && len(j.Trace) <= 1 {
			t.Fatal("header + payload is not the envelope")
		}
		checkReencoding(t, data, enc, j, DecodeJob, func(j *Job) []byte { return AppendJob(nil, j) }, sameJob, len(j.Trace))
	})
}

func sameJob(a, b *Job) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Key == b.Key && a.Attempt == b.Attempt &&
		a.Deadline.Equal(b.Deadline) && maps.Equal(a.Trace, b.Trace) && bytes.Equal(a.Payload, b.Payload)
}

func FuzzDecodeReply(f *testing.F) {
	for _, r := range []*Reply{
		{Attempt: 1, Kind: KindRemote, Code: "c", Message: "m"},
		{Attempt: 3, Kind: KindRemote, Retryable: true, Code: "E42", Message: "boom", WorkerID: "w1", Payload: []byte("x")},
		{Kind: KindOK, WorkerID: "w", Payload: []byte("the result")},
		{Kind: KindHandedBack}, {Kind: KindDeadline, Message: "deadline"}, {Kind: KindRejected, Message: "dup"},
	} {
		f.Add(AppendReply(nil, r))
	}
	f.Add([]byte{})
	f.Add([]byte{Version, 1, 99, 0, 0, 0, 0})               // unknown kind
	f.Add([]byte{Version, 1, KindRejected + 1, 0, 0, 0, 0}) // just past the last kind
	f.Add([]byte{Version, 1, KindOK, 0xff, 0, 0, 0, 'p'})   // flags beyond bit 0
	f.Add(append(append([]byte{Version}, overlong(1)...), KindOK, 0, 0, 0, 0))
	f.Add([]byte{Version, 1, KindRemote, 1, 5, 'a'}) // truncated string
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReply(data)
		checkDecodeResult(t, data, r, err)
		if err != nil {
			checkErr(t, err)
			return
		}
		if r.Kind > KindRejected || r.Attempt < 0 {
			t.Fatalf("accepted %+v", r)
		}
		checkPayloadAlias(t, data, r.Payload)
		enc := AppendReply(nil, r)
		if head := ReplyHeader(r); !bytes.Equal(append(head, r.Payload...), enc) || !bytes.Equal(head, AppendReplyHeader(nil, r)) {
			t.Fatal("ReplyHeader + payload is not the envelope")
		}
		checkReencoding(t, data, enc, r, DecodeReply, func(r *Reply) []byte { return AppendReply(nil, r) }, sameReply, 0)
	})
}

// checkDecodeResult: DecodeResult, which skips what an OK reply's outcome does not
// use, says exactly what DecodeReply and Result say.
func checkDecodeResult(t *testing.T, data []byte, r *Reply, err error) {
	t.Helper()
	res, rerr := DecodeResult(data)
	if err != nil {
		if rerr == nil || rerr.Error() != err.Error() {
			t.Fatalf("DecodeResult: %v, DecodeReply: %v", rerr, err)
		}
		return
	}
	want, werr := r.Result()
	if !bytes.Equal(res, want) || (rerr == nil) != (werr == nil) || (rerr != nil && rerr.Error() != werr.Error()) {
		t.Fatalf("DecodeResult: %q, %v; DecodeReply+Result: %q, %v", res, rerr, want, werr)
	}
}

func sameReply(a, b *Reply) bool {
	return a.Attempt == b.Attempt && a.Kind == b.Kind && a.Retryable == b.Retryable && a.Code == b.Code &&
		a.Message == b.Message && a.WorkerID == b.WorkerID && bytes.Equal(a.Payload, b.Payload)
}

func FuzzDecodeSubmit(f *testing.F) {
	for _, s := range []*Submit{
		{ID: "a", Type: "b", Key: "c", Timeout: time.Second},
		{ID: "id", Type: "t", Key: "k", Timeout: 1500 * time.Millisecond, MaxAttempts: 4, Trace: traceparent, Payload: []byte("p")},
		{Type: "t", Key: "k"}, // no id: the master makes one
		{Type: "t", Key: "k", Timeout: (1<<31 - 1) * time.Millisecond, MaxAttempts: 1<<31 - 1},
		{Type: "t", Key: "k", Trace: fullTrace(2)},
	} {
		f.Add(AppendSubmit(nil, s))
	}
	f.Add([]byte{})
	f.Add(AppendSubmit(nil, &Submit{ID: "a", Key: "k"}))                          // no type
	f.Add(AppendSubmit(nil, &Submit{ID: "a", Type: "t"}))                         // no key
	f.Add([]byte{Version, 0, 1, 't', 1, 'k', 0x80, 0x80, 0x80, 0x80, 0x08, 0, 0}) // timeout 2^31 ms
	f.Add([]byte{Version, 0, 1, 't', 1, 'k', 0, 0, 33})                           // 33 trace entries
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSubmit(data)
		if err != nil {
			checkErr(t, err)
			return
		}
		if s.Type == "" || s.Key == "" || s.Timeout < 0 || s.MaxAttempts < 0 || len(s.Trace) > maxTraceEntries {
			t.Fatalf("accepted %+v", s)
		}
		checkPayloadAlias(t, data, s.Payload)
		enc := AppendSubmit(nil, s)
		checkReencoding(t, data, enc, s, DecodeSubmit, func(s *Submit) []byte { return AppendSubmit(nil, s) }, sameSubmit, len(s.Trace))
	})
}

func sameSubmit(a, b *Submit) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Key == b.Key && a.Timeout == b.Timeout &&
		a.MaxAttempts == b.MaxAttempts && maps.Equal(a.Trace, b.Trace) && bytes.Equal(a.Payload, b.Payload)
}
