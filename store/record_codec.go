package store

// The record encoding, one for every use (the bolt store's tests, raft log entries,
// tools): a version byte, the kind byte, then the kind's fields in the order below,
// with the primitives of codec.go.
//
//	Submitted       spec
//	AttemptStarted  id, attempt, worker
//	AttemptEnded    id, attempt, spent, reason
//	Resolved        id, at, outcome
//	Collected       id
//	BlobPut         hash, data
//	BlobDeleted     hash
//
//	spec     id, type, payload ref, payload, deadline, timeout, max attempts, caller,
//	         trace context, submitted at
//	outcome  error kind (1 byte), result ref, result, code, message, retryable,
//	         worker, attempt
//
// A batch (AppendBatch) is a version byte, a count, and each record as a byte string.

// RecordVersion is the version byte of the record and batch encodings this package
// writes and reads.
const RecordVersion = 1

// AppendRecord appends the encoding of r to dst. Fields r's kind does not use are not
// encoded. It encodes what it is given; DecodeRecord refuses what Validate refuses.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, RecordVersion, byte(r.Kind))
	switch r.Kind {
	case KindSubmitted:
		spec := r.Spec
		if spec == nil {
			spec = &Spec{}
		}
		dst = appendSpec(dst, spec)
	case KindAttemptStarted:
		dst = appendString(dst, r.ID)
		dst = appendInt(dst, r.Attempt)
		dst = appendString(dst, r.Worker)
	case KindAttemptEnded:
		dst = appendString(dst, r.ID)
		dst = appendInt(dst, r.Attempt)
		dst = appendBool(dst, r.Spent)
		dst = appendString(dst, r.Reason)
	case KindResolved:
		dst = appendString(dst, r.ID)
		dst = appendTime(dst, r.At)
		out := r.Outcome
		if out == nil {
			out = &Outcome{}
		}
		dst = appendOutcome(dst, out)
	case KindCollected:
		dst = appendString(dst, r.ID)
	case KindBlobPut:
		dst = appendString(dst, r.Hash)
		dst = appendBytes(dst, r.Data)
	case KindBlobDeleted:
		dst = appendString(dst, r.Hash)
	}
	return dst
}

// DecodeRecord decodes one record and validates it (Record.Validate). Its byte slices
// alias b. Errors wrap ErrMalformed, or ErrBadRecord for a well-formed record whose
// fields are wrong for its kind.
func DecodeRecord(b []byte) (Record, error) {
	rd := reader{p: b}
	r := decodeRecord(&rd)
	rd.end("record")
	if rd.err != nil {
		return Record{}, rd.err
	}
	if err := r.Validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func decodeRecord(rd *reader) Record {
	if v := rd.byte("record version"); rd.err == nil && v != RecordVersion {
		rd.err = malformed("record version %d, want %d", v, RecordVersion)
		return Record{}
	}
	r := Record{Kind: Kind(rd.byte("record kind"))}
	switch r.Kind {
	case KindSubmitted:
		r.Spec = decodeSpec(rd)
		r.ID = r.Spec.ID
	case KindAttemptStarted:
		r.ID = rd.string("job id")
		r.Attempt = rd.int("attempt")
		r.Worker = rd.string("worker")
	case KindAttemptEnded:
		r.ID = rd.string("job id")
		r.Attempt = rd.int("attempt")
		r.Spent = rd.bool("spent")
		r.Reason = rd.string("reason")
	case KindResolved:
		r.ID = rd.string("job id")
		r.At = rd.time("resolved at")
		r.Outcome = decodeOutcome(rd)
	case KindCollected:
		r.ID = rd.string("job id")
	case KindBlobPut:
		r.Hash = rd.string("blob hash")
		r.Data = rd.bytes("blob data")
	case KindBlobDeleted:
		r.Hash = rd.string("blob hash")
	default:
		if rd.err == nil {
			rd.err = malformed("unknown record kind %d", uint8(r.Kind))
		}
	}
	return r
}

func appendSpec(dst []byte, s *Spec) []byte {
	dst = appendString(dst, s.ID)
	dst = appendString(dst, s.Type)
	dst = appendString(dst, s.PayloadRef)
	dst = appendBytes(dst, s.Payload)
	dst = appendTime(dst, s.Deadline)
	dst = appendDuration(dst, s.Timeout)
	dst = appendInt(dst, s.MaxAttempts)
	dst = appendString(dst, s.Caller)
	dst = appendMap(dst, s.Trace)
	return appendTime(dst, s.SubmittedAt)
}

func decodeSpec(rd *reader) *Spec {
	s := &Spec{ID: rd.string("job id"), Type: rd.string("job type"), PayloadRef: rd.string("payload ref")}
	s.Payload = rd.bytes("payload")
	s.Deadline = rd.time("deadline")
	s.Timeout = rd.duration("timeout")
	s.MaxAttempts = rd.int("max attempts")
	s.Caller = rd.string("caller")
	s.Trace = rd.stringMap("trace context", maxTraceEntries)
	s.SubmittedAt = rd.time("submitted at")
	return s
}

func appendOutcome(dst []byte, o *Outcome) []byte {
	dst = append(dst, byte(o.Err))
	dst = appendString(dst, o.ResultRef)
	dst = appendBytes(dst, o.Result)
	dst = appendString(dst, o.Code)
	dst = appendString(dst, o.Message)
	dst = appendBool(dst, o.Retryable)
	dst = appendString(dst, o.Worker)
	return appendInt(dst, o.Attempt)
}

func decodeOutcome(rd *reader) *Outcome {
	o := &Outcome{Err: ErrorKind(rd.byte("error kind")), ResultRef: rd.string("result ref")}
	o.Result = rd.bytes("result")
	o.Code = rd.string("error code")
	o.Message = rd.string("error message")
	o.Retryable = rd.bool("retryable")
	o.Worker = rd.string("worker")
	o.Attempt = rd.int("attempt")
	return o
}

// AppendBatch appends the encoding of recs as one batch: what a raft log entry will
// carry, many records applied together.
func AppendBatch(dst []byte, recs []Record) []byte {
	dst = append(dst, RecordVersion)
	dst = appendUint(dst, uint64(len(recs)))
	var scratch []byte
	for i := range recs {
		scratch = AppendRecord(scratch[:0], &recs[i])
		dst = appendBytes(dst, scratch)
	}
	return dst
}

// DecodeBatch decodes a batch made by AppendBatch, validating every record. Byte slices
// alias b.
func DecodeBatch(b []byte) ([]Record, error) {
	rd := reader{p: b}
	if v := rd.byte("batch version"); rd.err == nil && v != RecordVersion {
		return nil, malformed("batch version %d, want %d", v, RecordVersion)
	}
	n := rd.count("batch length", 4) // a record takes a length, a version, a kind and a field
	if rd.err != nil {
		return nil, rd.err
	}
	recs := make([]Record, 0, n)
	for i := range n {
		body := rd.raw("batch record")
		if rd.err != nil {
			return nil, rd.err
		}
		r, err := DecodeRecord(body)
		if err != nil {
			return nil, wrapIndex(err, i, n)
		}
		recs = append(recs, r)
	}
	rd.end("batch")
	if rd.err != nil {
		return nil, rd.err
	}
	return recs, nil
}
