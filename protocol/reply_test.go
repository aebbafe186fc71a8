package protocol

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// The mapping between outcomes and reply kinds is part of the wire contract: what a
// remote client's caller gets back must be what the master's caller would have got.
// These tests pin it in both directions.

func TestReplyForKinds(t *testing.T) {
	remote := &RemoteError{Message: "boom", Code: "E1", Retryable: true, WorkerID: "w1", Attempt: 2}
	for _, c := range []struct {
		name string
		err  error
		kind byte
		code string
	}{
		{"worker lost", fmt.Errorf("after 3 attempts: %w", ErrWorkerLost), KindWorkerLost, ""},
		{"queue full", fmt.Errorf("%w: 100 jobs", ErrQueueFull), KindQueueFull, ""},
		{"job too large", fmt.Errorf("%w: 70 MiB", ErrJobTooLarge), KindRejected, CodeJobTooLarge},
		{"id conflict", fmt.Errorf("%w: job x", ErrIDConflict), KindRejected, CodeIDConflict},
		{"deadline", fmt.Errorf("dispatch: job %w", context.DeadlineExceeded), KindDeadline, ""},
		{"canceled", fmt.Errorf("dispatch: job %w", context.Canceled), KindCanceled, ""},
		{"bad job", fmt.Errorf("%w: empty type", ErrBadJob), KindRejected, ""},
		{"any other error", errors.New("dispatch: closed"), KindRejected, ""},
		{"first sentinel in order", errors.Join(context.Canceled, ErrQueueFull), KindQueueFull, ""},
	} {
		rep := ReplyFor([]byte("ignored"), c.err)
		if rep.Kind != c.kind || rep.Code != c.code || rep.Message != c.err.Error() || rep.Payload != nil || rep.Retryable {
			t.Errorf("%s: ReplyFor(%v) = %+v, want kind %d code %q with the error's text", c.name, c.err, rep, c.kind, c.code)
		}
	}
	if rep := ReplyFor([]byte("result"), nil); rep.Kind != KindOK || string(rep.Payload) != "result" || rep.Message != "" {
		t.Errorf("ReplyFor(result, nil) = %+v, want KindOK with the result", rep)
	}
	for _, err := range []error{remote, fmt.Errorf("wrapped: %w", remote)} {
		rep := ReplyFor(nil, err)
		if rep.Kind != KindRemote || rep.Message != "boom" || rep.Code != "E1" || !rep.Retryable || rep.WorkerID != "w1" || rep.Attempt != 2 {
			t.Errorf("ReplyFor(%v) = %+v, want KindRemote with the RemoteError's fields", err, rep)
		}
	}
}

func TestResultKinds(t *testing.T) {
	for _, c := range []struct {
		kind byte
		code string
		want error
	}{
		{KindWorkerLost, "", ErrWorkerLost},
		{KindQueueFull, "", ErrQueueFull},
		{KindDeadline, "", context.DeadlineExceeded},
		{KindCanceled, "", context.Canceled},
		{KindRejected, "", ErrBadJob},
		{KindRejected, "some_code", ErrBadJob},
		{KindRejected, CodeJobTooLarge, ErrJobTooLarge},
		{KindRejected, CodeIDConflict, ErrIDConflict},
		{KindHandedBack, "", ErrBadJob}, // a master never sends it to a client
	} {
		if got := KindError(c.kind, c.code); got != c.want {
			t.Errorf("KindError(%d, %q) = %v, want %v", c.kind, c.code, got, c.want)
		}
		rep := &Reply{Kind: c.kind, Code: c.code, Message: "the sender's text", Payload: []byte("ignored")}
		res, err := rep.Result()
		if res != nil || !errors.Is(err, c.want) || err.Error() != "the sender's text" {
			t.Errorf("kind %d code %q: Result() = %q, %v; want an error matching %v with the sender's text", c.kind, c.code, res, err, c.want)
		}
		var re *RemoteError
		if errors.As(err, &re) {
			t.Errorf("kind %d: Result() gave a RemoteError: %v", c.kind, err)
		}
	}
	for _, k := range []byte{KindOK, KindRemote} {
		if err := KindError(k, ""); err != nil {
			t.Errorf("KindError(%d) = %v, want nil: the kind stands for no sentinel", k, err)
		}
	}
	if res, err := (&Reply{Kind: KindOK, Payload: []byte("result")}).Result(); err != nil || string(res) != "result" {
		t.Errorf("KindOK: Result() = %q, %v; want the payload", res, err)
	}
	_, err := (&Reply{Kind: KindRemote, Message: "boom", Code: "E1", Retryable: true, WorkerID: "w1", Attempt: 2}).Result()
	var re *RemoteError
	if !errors.As(err, &re) || *re != (RemoteError{Message: "boom", Code: "E1", Retryable: true, WorkerID: "w1", Attempt: 2}) {
		t.Errorf("KindRemote: Result() = %v, want the RemoteError of the reply's fields", err)
	}
}

// Every outcome survives the round trip through a reply, and through its encoding.
func TestReplyRoundTrip(t *testing.T) {
	for _, sentinel := range []error{ErrWorkerLost, ErrQueueFull, ErrJobTooLarge, ErrBadJob, context.DeadlineExceeded, context.Canceled} {
		err := fmt.Errorf("job j1: %w", sentinel)
		rep, derr := DecodeReply(AppendReply(nil, ReplyFor(nil, err)))
		if derr != nil {
			t.Fatal(derr)
		}
		if _, got := rep.Result(); !errors.Is(got, sentinel) || got.Error() != err.Error() {
			t.Errorf("%v came back as %v", err, got)
		}
	}
}

func TestBlobPutAnswers(t *testing.T) {
	full := fmt.Errorf("%w: a blob of 10 bytes does not fit", ErrBlobStoreFull)
	answer := BlobPutRefusal(full)
	if answer != "!blob_store_full "+full.Error() {
		t.Fatalf("refusal %q", answer)
	}
	if h, err := BlobPutResult([]byte(answer)); h != "" || !errors.Is(err, ErrBlobStoreFull) || err.Error() != full.Error() {
		t.Errorf("BlobPutResult(%q) = %q, %v; want ErrBlobStoreFull with the reason", answer, h, err)
	}
	if _, err := BlobPutResult([]byte("!other_code why")); err == nil || errors.Is(err, ErrBlobStoreFull) || err.Error() != "why" {
		t.Errorf("a refusal of another code: %v, want an error saying why, not ErrBlobStoreFull", err)
	}
	hash := BlobHash([]byte("bars"))
	if h, err := BlobPutResult([]byte(hash)); h != hash || err != nil {
		t.Errorf("BlobPutResult(hash) = %q, %v", h, err)
	}
}
