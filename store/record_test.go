package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range samples() {
		b := encode(r)
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if again := encode(got); !bytes.Equal(again, b) {
			t.Errorf("%s: re-encoded differently:\n%x\n%x", r, again, b)
		}
		if got.Kind != r.Kind || got.ID != r.ID || got.Hash != r.Hash {
			t.Errorf("%s: decoded as %s", r, got)
		}
		if r.Spec != nil && (!got.Spec.Deadline.Equal(r.Spec.Deadline) || got.Spec.Trace["tracestate"] != r.Spec.Trace["tracestate"]) {
			t.Errorf("%s: spec decoded as %+v", r, got.Spec)
		}
	}
}

func TestRecordEncodingIsCompact(t *testing.T) {
	r := Submitted(Spec{ID: "0123456789abcdef0123456789abcdef", Type: "echo", Payload: make([]byte, 64), MaxAttempts: 3, SubmittedAt: t0})
	if n := len(encode(r)); n > 64+32+4+30 {
		t.Errorf("a 64-byte job encodes in %d bytes", n)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good := encode(samples()[0])
	cases := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{9}, good[1:]...),
		"kind":           {RecordVersion, 77, 0},
		"trailing":       append(bytes.Clone(good), 0),
		"no id":          encode(Record{Kind: KindCollected}),
		"no type":        encode(Submitted(Spec{ID: "x"})),
		"attempt 0":      encode(AttemptStarted("x", 0, "w")),
		"no worker":      encode(AttemptStarted("x", 1, "")),
		"bad hash":       encode(BlobDeleted("sha256:xyz")),
		"upper hash":     encode(BlobDeleted(strings.ToUpper(BlobHash(nil)))),
		"failed result":  encode(Resolved("x", Outcome{Err: ErrorRemote, Result: []byte("r")}, t0)),
		"error kind":     encode(Resolved("x", Outcome{Err: 99}, t0)),
		"zero time":      encode(Record{Kind: KindResolved, ID: "x", Outcome: &Outcome{}}),
		"bad bool":       append(encode(AttemptEnded("x", 1, false, ""))[:len(encode(AttemptEnded("x", 1, false, "")))-2], 2, 0),
		"unsorted trace": unsortedTrace(),
		"huge string":    {RecordVersion, byte(KindCollected), 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'},
		"huge attempt":   {RecordVersion, byte(KindAttemptStarted), 1, 'x', 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 'w'},
	}
	for name, b := range cases {
		if _, err := DecodeRecord(b); err == nil {
			t.Errorf("%s: decoded %x", name, b)
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: %v is neither ErrMalformed nor ErrBadRecord", name, err)
		}
	}
	// Every proper prefix of every sample is refused.
	for _, r := range samples() {
		b := encode(r)
		for i := range len(b) {
			if _, err := DecodeRecord(b[:i]); err == nil {
				t.Errorf("%s: prefix of %d of %d bytes decoded", r, i, len(b))
			}
		}
	}
}

// unsortedTrace encodes a spec whose trace keys are out of order, which AppendRecord
// never writes.
func unsortedTrace() []byte {
	b := []byte{RecordVersion, byte(KindSubmitted)}
	b = appendString(b, "x")
	b = appendString(b, "t")
	b = appendString(b, "")
	b = appendBytes(b, nil)
	b = appendTime(b, t0)
	b = appendDuration(b, 0)
	b = appendInt(b, 1)
	b = appendString(b, "")
	b = appendUint(b, 2)
	b = appendString(b, "z")
	b = appendString(b, "1")
	b = appendString(b, "a")
	b = appendString(b, "2")
	return appendTime(b, t0)
}

func TestBatchRoundTrip(t *testing.T) {
	recs := samples()
	b := AppendBatch(nil, recs)
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if !bytes.Equal(encode(got[i]), encode(recs[i])) {
			t.Errorf("record %d differs", i)
		}
	}
	if _, err := DecodeBatch(AppendBatch(nil, nil)); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	for i := range len(b) {
		if _, err := DecodeBatch(b[:i]); err == nil {
			t.Errorf("prefix of %d of %d bytes decoded", i, len(b))
		}
	}
	if _, err := DecodeBatch([]byte{RecordVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}); !errors.Is(err, ErrMalformed) {
		t.Errorf("a batch claiming 4 billion records: %v", err)
	}
}

// smallSamples are the samples without multi-kilobyte payloads: the fuzzer's mutator
// crawls on large inputs, and the payloads' bytes add no coverage.
func smallSamples() []Record {
	var out []Record
	for _, r := range samples() {
		if len(encode(r)) < 1000 {
			out = append(out, r)
		}
	}
	return out
}

// FuzzDecodeRecord: decoding never panics, and whatever decodes re-encodes to bytes that
// decode to the same record (the encoding of a decoded record is canonical).
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range smallSamples() {
		f.Add(encode(r))
	}
	f.Add(unsortedTrace())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		e1 := encode(r)
		r2, err := DecodeRecord(e1)
		if err != nil {
			t.Fatalf("re-encoding of %s does not decode: %v", r, err)
		}
		if e2 := encode(r2); !bytes.Equal(e1, e2) {
			t.Fatalf("not canonical:\n%x\n%x", e1, e2)
		}
	})
}

// FuzzDecodeBatch: the same property for batches.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, smallSamples()))
	f.Add(AppendBatch(nil, samples()[:1]))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeBatch(b)
		if err != nil {
			return
		}
		e1 := AppendBatch(nil, recs)
		recs2, err := DecodeBatch(e1)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if e2 := AppendBatch(nil, recs2); !bytes.Equal(e1, e2) {
			t.Fatal("not canonical")
		}
	})
}
