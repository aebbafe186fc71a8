package protocol

// The envelopes: what dispatch and worker put inside banio messages. The job a master
// sends a worker, the reply that comes back, and the submission a remote client sends a
// master. The layout is binary so that a multi-megabyte payload travels as its own
// bytes, after a small header, with no base64 or JSON escaping. docs/protocol.md
// describes it byte by byte.
//
// Every envelope starts with a version byte. Strings and byte strings are a uvarint
// length followed by the bytes; integers are uvarints (zig-zag varints where negative
// values make sense). The payload is whatever follows the header, to the end.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Version is the envelope format version this package writes and reads.
const Version = 1

// HeaderRoom is enough capacity for any usual envelope header (ids, keys, trace
// context), so a buffer of HeaderRoom+len(payload) is written without regrowing and
// copying a large payload twice.
const HeaderRoom = 384

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("envelope: malformed")

// maxStrings bounds how many trace-context entries a header may carry.
const maxTraceEntries = 32

// Job is what the master sends a worker as action "job:<type>".
type Job struct {
	ID       string
	Type     string
	Key      string // the wait key the worker answers with SendWaitRes
	Attempt  int    // dispatch sequence number, 1 for the first
	Deadline time.Time
	Trace    map[string]string // W3C trace context (traceparent, tracestate, baggage)
	Payload  []byte
}

// Reply answers a Job (worker → master) or a Submit (master → client).
type Reply struct {
	Attempt   int
	Kind      byte
	Retryable bool
	Code      string
	Message   string
	WorkerID  string
	Payload   []byte
}

// Submit is what a remote client sends the master as action "fleet.submit".
type Submit struct {
	ID          string
	Type        string
	Key         string // the client's wait key for the Reply
	Timeout     time.Duration
	MaxAttempts int
	Trace       map[string]string
	Payload     []byte
}

// AppendJob appends the encoding of j to dst.
func AppendJob(dst []byte, j *Job) []byte {
	return append(AppendJobHeader(dst, j), j.Payload...)
}

// AppendJobHeader appends the encoding of j without its payload, which follows it on
// the wire (sent as banio.Parts, so the payload is never copied into an envelope).
func AppendJobHeader(dst []byte, j *Job) []byte {
	dst = append(dst, Version)
	dst = appendString(dst, j.ID)
	dst = appendString(dst, j.Type)
	dst = appendString(dst, j.Key)
	dst = binary.AppendUvarint(dst, uint64(max(j.Attempt, 0)))
	var deadline int64
	if !j.Deadline.IsZero() {
		deadline = j.Deadline.UnixMilli()
	}
	dst = binary.AppendVarint(dst, deadline)
	return appendTrace(dst, j.Trace)
}

// DecodeJob decodes a Job. Payload aliases data.
func DecodeJob(data []byte) (*Job, error) {
	j := new(Job)
	if err := DecodeJobInto(j, data); err != nil {
		return nil, err
	}
	return j, nil
}

// DecodeJobInto decodes a Job into j, which it overwrites whole: DecodeJob for a caller
// that keeps the Job inside a value of its own (a worker's record of a running job).
// Payload aliases data. A Type equal to the one j held before keeps that string (a
// worker knows the type from the message's action), and a Key that starts with the ID,
// as AttemptKey's do, holds the ID as its prefix: the strings of a master's envelope
// then cost one allocation, the key's.
func DecodeJobInto(j *Job, data []byte) error {
	r := reader{p: data}
	r.version()
	*j = Job{Type: j.Type}
	id, typ, key := r.bytes(), r.bytes(), r.bytes()
	j.Attempt = r.int()
	if ms := r.varint(); ms != 0 {
		j.Deadline = time.UnixMilli(ms)
	}
	j.Trace = r.trace()
	j.Payload = r.rest()
	if r.err != nil {
		*j = Job{}
		return r.err
	}
	if len(id) == 0 || len(typ) == 0 || len(key) == 0 {
		*j = Job{}
		return fmt.Errorf("%w: job without id, type or key", ErrMalformed)
	}
	if string(typ) != j.Type {
		j.Type = string(typ)
	}
	if bytes.HasPrefix(key, id) {
		j.Key = string(key)
		j.ID = j.Key[:len(id)]
	} else {
		both := string(id) + string(key)
		j.ID, j.Key = both[:len(id)], both[len(id):]
	}
	return nil
}

// AppendReply appends the encoding of r to dst.
func AppendReply(dst []byte, r *Reply) []byte {
	return append(AppendReplyHeader(dst, r), r.Payload...)
}

// ReplyHeader is the encoding of r without its payload, in a buffer of its own sized
// for it: the head of a reply sent as banio.Parts.
func ReplyHeader(r *Reply) []byte {
	return AppendReplyHeader(make([]byte, 0, replyHeaderLen(r)), r)
}

// replyHeaderLen is the length of r's header: a worker keeps every reply's header until
// the master has it, and a buffer of HeaderRoom for a header of a few bytes was most of
// the memory a reply cost.
func replyHeaderLen(r *Reply) int {
	return 1 + uvarintLen(uint64(max(r.Attempt, 0))) + 2 +
		stringLen(r.Code) + stringLen(r.Message) + stringLen(r.WorkerID)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func stringLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// AppendReplyHeader appends the encoding of r without its payload (see
// AppendJobHeader).
func AppendReplyHeader(dst []byte, r *Reply) []byte {
	dst = append(dst, Version)
	dst = binary.AppendUvarint(dst, uint64(max(r.Attempt, 0)))
	dst = append(dst, r.Kind)
	flags := byte(0)
	if r.Retryable {
		flags = 1
	}
	dst = append(dst, flags)
	dst = appendString(dst, r.Code)
	dst = appendString(dst, r.Message)
	return appendString(dst, r.WorkerID)
}

// DecodeReply decodes a Reply. Payload aliases data.
func DecodeReply(data []byte) (*Reply, error) {
	rep := new(Reply)
	if err := DecodeReplyInto(rep, data); err != nil {
		return nil, err
	}
	return rep, nil
}

// DecodeReplyInto decodes a Reply into rep, which it overwrites whole: DecodeReply for a
// caller that keeps the Reply on its stack (the master reads one per job). Payload
// aliases data. The strings share one allocation, and a WorkerID equal to the one rep
// held before keeps that string: the master, which knows which worker answers, decodes
// an OK reply without allocating.
func DecodeReplyInto(rep *Reply, data []byte) error {
	r := reader{p: data}
	r.version()
	*rep = Reply{Attempt: r.int(), Kind: r.byte(), WorkerID: rep.WorkerID}
	rep.Retryable = r.byte()&1 != 0
	r.strings(&rep.Code, &rep.Message, &rep.WorkerID)
	rep.Payload = r.rest()
	if r.err != nil {
		*rep = Reply{}
		return r.err
	}
	if rep.Kind > KindRejected {
		*rep = Reply{}
		return fmt.Errorf("%w: unknown reply kind %d", ErrMalformed, rep.Kind)
	}
	return nil
}

// DecodeResult decodes a reply and returns the outcome it carries (Reply.Result): what
// a caller wants of a reply, without the strings an OK reply carries but its outcome
// does not use (the worker's id), which a caller reading one reply per job would
// otherwise allocate for nothing. The result aliases data. An envelope that cannot be
// decoded gives an error wrapping ErrMalformed, which no outcome's error does.
func DecodeResult(data []byte) ([]byte, error) {
	r := reader{p: data}
	r.version()
	r.int()
	if kind := r.byte(); kind != KindOK || r.err != nil {
		var rep Reply
		if err := DecodeReplyInto(&rep, data); err != nil {
			return nil, err
		}
		return rep.Result()
	}
	r.byte()
	r.skipString()
	r.skipString()
	r.skipString()
	if r.err != nil {
		return nil, r.err
	}
	return r.rest(), nil
}

// AppendSubmit appends the encoding of s to dst.
func AppendSubmit(dst []byte, s *Submit) []byte {
	return append(AppendSubmitHeader(dst, s), s.Payload...)
}

// AppendSubmitHeader appends the encoding of s without its payload (see
// AppendJobHeader).
func AppendSubmitHeader(dst []byte, s *Submit) []byte {
	dst = append(dst, Version)
	dst = appendString(dst, s.ID)
	dst = appendString(dst, s.Type)
	dst = appendString(dst, s.Key)
	dst = binary.AppendUvarint(dst, uint64(max(s.Timeout.Milliseconds(), 0)))
	dst = binary.AppendUvarint(dst, uint64(max(s.MaxAttempts, 0)))
	return appendTrace(dst, s.Trace)
}

// DecodeSubmit decodes a Submit. Payload aliases data.
func DecodeSubmit(data []byte) (*Submit, error) {
	s := new(Submit)
	if err := DecodeSubmitInto(s, data); err != nil {
		return nil, err
	}
	return s, nil
}

// DecodeSubmitInto decodes a Submit into s, which it overwrites whole: DecodeSubmit for
// a caller that keeps the Submit on its stack (the master reads one per remote job).
// Payload aliases data; ID and Type share one string (see reader.strings). A reply key
// equal to the id (a Client's job without an id of its own uses its key for both) shares
// the id's string.
func DecodeSubmitInto(s *Submit, data []byte) error {
	r := reader{p: data}
	r.version()
	*s = Submit{}
	r.strings(&s.ID, &s.Type)
	s.Key = r.stringLike(s.ID)
	s.Timeout = time.Duration(r.int()) * time.Millisecond
	s.MaxAttempts = r.int()
	s.Trace = r.trace()
	s.Payload = r.rest()
	if r.err != nil {
		*s = Submit{}
		return r.err
	}
	if s.Type == "" || s.Key == "" {
		*s = Submit{}
		return fmt.Errorf("%w: submission without type or reply key", ErrMalformed)
	}
	return nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTrace(dst []byte, m map[string]string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	for k, v := range m {
		dst = appendString(dst, k)
		dst = appendString(dst, v)
	}
	return dst
}

// reader decodes with sticky errors: after the first error every read returns zero.
type reader struct {
	p   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad or truncated %s", ErrMalformed, what)
	}
	r.p = nil
}

func (r *reader) version() {
	if len(r.p) == 0 {
		r.fail("version")
		return
	}
	if r.p[0] != Version {
		r.err = fmt.Errorf("%w: version %d, want %d", ErrMalformed, r.p[0], Version)
		r.p = nil
		return
	}
	r.p = r.p[1:]
}

func (r *reader) byte() byte {
	if len(r.p) == 0 {
		r.fail("byte")
		return 0
	}
	b := r.p[0]
	r.p = r.p[1:]
	return b
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.fail("integer")
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.p)
	if n <= 0 {
		r.fail("integer")
		return 0
	}
	r.p = r.p[n:]
	return v
}

// int reads a uvarint that must fit a non-negative int32.
func (r *reader) int() int {
	v := r.uvarint()
	if v > 1<<31-1 {
		r.fail("integer (out of range)")
		return 0
	}
	return int(v)
}

// maxShared is the most strings reader.strings reads at once.
const maxShared = 3

// strings reads len(dst) strings, which share one allocation: a header's strings are
// read, and let go, together, and one allocation instead of three is most of what
// decoding a job's header costs. A string that equals what *dst already holds keeps
// it (the caller knew what to expect), and strings that are all empty or kept
// allocate nothing.
func (r *reader) strings(dst ...*string) {
	var spans [maxShared]struct{ at, n int }
	start := r.p
	first, last := -1, -1 // the strings to allocate, by index
	for i, d := range dst[:min(len(dst), maxShared)] {
		n := r.uvarint()
		if n > uint64(len(r.p)) {
			r.fail("string")
			return
		}
		b := r.p[:n]
		spans[i].at, spans[i].n = len(start)-len(r.p), int(n)
		r.p = r.p[n:]
		if string(b) == *d {
			spans[i].n = -1 // kept
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	if r.err != nil || first < 0 {
		return
	}
	from, to := spans[first].at, spans[last].at+spans[last].n
	all := string(start[from:to])
	for i, d := range dst[first : last+1] {
		if sp := spans[first+i]; sp.n >= 0 {
			*d = all[sp.at-from : sp.at-from+sp.n]
		}
	}
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.p)) {
		r.fail("string")
		return ""
	}
	s := string(r.p[:n])
	r.p = r.p[n:]
	return s
}

// bytes reads a string's bytes, a view of the reader's data.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.p)) {
		r.fail("string")
		return nil
	}
	b := r.p[:n:n]
	r.p = r.p[n:]
	return b
}

// skipString reads past a string.
func (r *reader) skipString() {
	n := r.uvarint()
	if n > uint64(len(r.p)) {
		r.fail("string")
		return
	}
	r.p = r.p[n:]
}

// stringLike is string, returning like itself (no new string) when the bytes equal it.
func (r *reader) stringLike(like string) string {
	n := r.uvarint()
	if n > uint64(len(r.p)) {
		r.fail("string")
		return ""
	}
	b := r.p[:n]
	r.p = r.p[n:]
	if string(b) == like {
		return like
	}
	return string(b)
}

func (r *reader) trace() map[string]string {
	n := r.uvarint()
	if n == 0 {
		return nil
	}
	if n > maxTraceEntries {
		r.fail("trace context (too many entries)")
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.string()
		m[k] = r.string()
	}
	return m
}

func (r *reader) rest() []byte {
	p := r.p
	r.p = nil
	return p
}
