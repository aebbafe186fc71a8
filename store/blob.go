package store

import (
	"crypto/sha256"
	"encoding/hex"
)

// Blobs are content-addressed byte strings held once however many jobs refer to them.
// They come from two places:
//
//   - the owner's blobs (dispatch's PutBlob/DeleteBlob): a BlobPut record pins one,
//     a BlobDeleted record unpins it;
//   - large payloads and results: Apply turns a payload or result at or above the blob
//     threshold (WithBlobThreshold, default DefaultBlobThreshold) into a reference
//     (Spec.PayloadRef, Outcome.ResultRef) and the state holds the bytes as a blob, so
//     a payload shared by a sweep's thousand jobs is stored once, and a job's row in
//     the file stays small however often its state changes.
//
// A blob is held while it is pinned or any job refers to it: the state counts each
// job's references, and a blob neither pinned nor referred to is dropped by the record
// that released it (the job's Resolved, for its payload, or Collected, for its result;
// or the BlobDeleted). No sweep is needed, and the same records always leave the same
// blobs, whatever batches they were applied in.

// DefaultBlobThreshold is the payload or result size, in bytes, from which Apply holds
// it as a blob rather than inline (WithBlobThreshold). 4 KiB is a page of the bolt
// file: a smaller payload costs less inline than a reference and a blob row, a larger
// one would be rewritten with every state change of its job.
const DefaultBlobThreshold = 4 << 10

// hashPrefix starts every blob hash; the same form as dispatch.BlobHash, so the
// master's blob hashes are the store's.
const hashPrefix = "sha256:"

// BlobHash is the content address of data: "sha256:" and the hex digest.
func BlobHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hashPrefix + hex.EncodeToString(sum[:])
}

// validHash checks that h has the form BlobHash makes.
func validHash(h string) error {
	if len(h) != len(hashPrefix)+2*sha256.Size || h[:len(hashPrefix)] != hashPrefix {
		return badRecord("blob hash %.80q is not %s and %d hex digits", h, hashPrefix, 2*sha256.Size)
	}
	for i := len(hashPrefix); i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return badRecord("blob hash %.80q is not lower-case hex", h)
		}
	}
	return nil
}

// prepare turns the payloads and results of recs at or above threshold into blob
// references, hashing them here, on the caller's goroutine, rather than on the
// committer's. It returns recs itself when nothing changes; otherwise a copy (the
// caller's records and specs are never modified).
func prepare(recs []Record, threshold int) []Record {
	out := recs
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Kind == KindSubmitted && r.Spec != nil && r.Spec.PayloadRef == "" && len(r.Spec.Payload) >= threshold:
			if &out[0] == &recs[0] {
				out = append([]Record(nil), recs...)
			}
			spec := *r.Spec
			spec.PayloadRef = BlobHash(spec.Payload)
			out[i].Spec, out[i].hashed = &spec, true
		case r.Kind == KindResolved && r.Outcome != nil && r.Outcome.ResultRef == "" && len(r.Outcome.Result) >= threshold:
			if &out[0] == &recs[0] {
				out = append([]Record(nil), recs...)
			}
			o := *r.Outcome
			o.ResultRef = BlobHash(o.Result)
			out[i].Outcome, out[i].hashed = &o, true
		}
	}
	return out
}
