package protocol

import (
	"strings"
	"testing"
	"unsafe"
)

// The decoders run once per job on every hop; these bounds hold what they allocate
// (a regression to a string per field, or a struct per reply, breaks them).

func TestDecodeJobIntoAllocatesOneString(t *testing.T) {
	const id = "0f8c2c8e-1b7a-4c57-9a43-000000000001"
	data := AppendJob(nil, &Job{ID: id, Type: "echo", Key: AttemptKey(id, 1), Attempt: 1, Payload: []byte("payload")})
	var j Job
	allocs := testing.AllocsPerRun(100, func() {
		j = Job{Type: "echo"} // known from the message's action
		if err := DecodeJobInto(&j, data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("DecodeJobInto: %v allocations, want 1 (the key, which holds the id)", allocs)
	}
	if j.ID != id || j.Type != "echo" || j.Key != AttemptKey(id, 1) || string(j.Payload) != "payload" {
		t.Fatalf("decoded %+v", j)
	}
	if unsafe.StringData(j.ID) != unsafe.StringData(j.Key) {
		t.Error("the id is not the key's prefix")
	}
	// A key that does not start with the id, and a type not known before.
	other := AppendJob(nil, &Job{ID: "an-id", Type: "t", Key: "a-key", Attempt: 2})
	j = Job{Type: "echo"}
	if err := DecodeJobInto(&j, other); err != nil || j.ID != "an-id" || j.Type != "t" || j.Key != "a-key" || j.Attempt != 2 {
		t.Fatalf("decoded %+v, %v", j, err)
	}
}

func TestDecodeReplyIntoKeepsAKnownWorkerID(t *testing.T) {
	const worker = "8d1e4f0a-5b2c-4e7d-9f61-2a3b4c5d6e7f"
	data := AppendReply(nil, &Reply{Attempt: 1, Kind: KindOK, WorkerID: worker, Payload: []byte("result")})
	var rep Reply
	allocs := testing.AllocsPerRun(100, func() {
		rep = Reply{WorkerID: worker}
		if err := DecodeReplyInto(&rep, data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("DecodeReplyInto with the worker's id known: %v allocations, want 0", allocs)
	}
	if unsafe.StringData(rep.WorkerID) != unsafe.StringData(worker) || string(rep.Payload) != "result" {
		t.Fatalf("decoded %+v, worker id not the known string", rep)
	}
	// Another worker's id is decoded, not kept.
	rep = Reply{WorkerID: "another"}
	if err := DecodeReplyInto(&rep, data); err != nil || rep.WorkerID != worker {
		t.Fatalf("decoded %+v, %v", rep, err)
	}
}

func TestDecodeResultOfAnOKReplyAllocatesNothing(t *testing.T) {
	data := AppendReply(nil, &Reply{Attempt: 1, Kind: KindOK, WorkerID: "8d1e4f0a-5b2c-4e7d-9f61-2a3b4c5d6e7f", Payload: []byte("result")})
	allocs := testing.AllocsPerRun(100, func() {
		if res, err := DecodeResult(data); err != nil || string(res) != "result" {
			t.Fatalf("DecodeResult: %q, %v", res, err)
		}
	})
	if allocs != 0 {
		t.Errorf("DecodeResult of an OK reply: %v allocations, want 0", allocs)
	}
	failed := AppendReply(nil, &Reply{Kind: KindRemote, Code: "E1", Message: "boom", WorkerID: "w"})
	if _, err := DecodeResult(failed); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("DecodeResult of a failure: %v", err)
	}
}

func TestDecodeSubmitIntoAllocatesOneString(t *testing.T) {
	const id = "0f8c2c8e-1b7a-4c57-9a43-000000000001"
	data := AppendSubmit(nil, &Submit{ID: id, Type: "echo", Key: id, Payload: []byte("payload")})
	var s Submit
	allocs := testing.AllocsPerRun(100, func() {
		if err := DecodeSubmitInto(&s, data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("DecodeSubmitInto: %v allocations, want 1 (id and type share a string, the key is the id's)", allocs)
	}
	if s.ID != id || s.Type != "echo" || s.Key != id {
		t.Fatalf("decoded %+v", s)
	}
}
