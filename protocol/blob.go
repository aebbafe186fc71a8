package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Blobs: content-addressed inputs that workers download from the master once and
// cache, and that remote clients upload and delete.

// Blob actions (docs/protocol.md §13).
const (
	// ActionBlobGet (worker → master, JSON BlobRequest): the master answers the reply
	// key with a status byte followed by the blob's bytes (BlobFound), nothing
	// (BlobMissing), or why it cannot send the blob (BlobUnsendable).
	ActionBlobGet = "fleet.blob.get"
	// ActionBlobPut (client → master, raw bytes; reply key in the action after a '|'):
	// store a blob; the master answers with its hash, or with a refusal (BlobRefused,
	// an error code, a space and the reason) when it refuses the blob.
	ActionBlobPut = "fleet.blob.put|"
	// ActionBlobDelete (client → master, the hash; reply key in the action after a
	// '|'): forget a blob; the master answers "1" if it held it, "0" if not.
	ActionBlobDelete = "fleet.blob.delete|"
)

// Status bytes of the master's answer to ActionBlobGet. banio delivers an empty message
// as nil, so emptiness cannot say "missing".
const (
	BlobMissing    byte = 0 // the master does not hold the blob
	BlobFound      byte = 1 // the blob's bytes follow
	BlobUnsendable byte = 2 // the blob does not fit a frame; the reason follows as text
)

// BlobRequest (ActionBlobGet) asks the master for a blob.
type BlobRequest struct {
	Hash  string `json:"hash"`
	Reply string `json:"reply"` // the requester's wait key
}

// BlobHash is the content address of data: "sha256:" and the hex digest.
func BlobHash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// BlobRefused starts the master's answer to an ActionBlobPut it refused: a hash never
// does.
const BlobRefused = "!"

// BlobPutRefusal is the master's answer to an ActionBlobPut it refuses with err:
// BlobRefused, the code err stands for (CodeBlobStoreFull for ErrBlobStoreFull), a
// space and err's text.
func BlobPutRefusal(err error) string {
	code := ""
	if errors.Is(err, ErrBlobStoreFull) {
		code = CodeBlobStoreFull
	}
	return BlobRefused + code + " " + err.Error()
}

// BlobPutResult reads the master's answer to ActionBlobPut: the blob's hash, or the
// error of a refusal (BlobPutRefusal), with its reason as the text, matching
// ErrBlobStoreFull with errors.Is when its code is CodeBlobStoreFull.
func BlobPutResult(answer []byte) (string, error) {
	refusal, refused := strings.CutPrefix(string(answer), BlobRefused)
	if !refused {
		return string(answer), nil
	}
	code, reason, _ := strings.Cut(refusal, " ")
	var kind error
	if code == CodeBlobStoreFull {
		kind = ErrBlobStoreFull
	}
	return "", &failure{msg: reason, kind: kind}
}
