package sweep

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/banfleet/banfleet/dispatch"
)

// ErrJournalMismatch is wrapped by Start's error when Options.Journal names a file
// that is not this sweep's journal: one written for other jobs (other data, another
// grid) or with another description, one from a banfleet too old to say which sweep
// it belongs to, or no journal at all. Its message says what differs; use another
// journal file, or remove the old one to run the sweep from the start.
var ErrJournalMismatch = errors.New("sweep: the journal belongs to another sweep")

// journalFormat is the version of the journal's format, in its header.
const journalFormat = 1

// header is a journal's first line: what identifies the sweep that wrote it. The
// hashes are over the jobs in the order of their ids, so a sweep whose jobs come in
// another order is the same sweep (results are matched by id).
type header struct {
	Format      int    `json:"banfleet_sweep"` // journalFormat
	Jobs        int    `json:"jobs"`
	IDs         string `json:"ids"`      // sha256 of the job ids
	Types       string `json:"types"`    // sha256 of the job types
	Payloads    string `json:"payloads"` // sha256 of the sha256 of each job's payload
	Description string `json:"description,omitempty"`
}

// newHeader identifies jobs (whose IDs are set) and description.
func newHeader(jobs []dispatch.Job, description string) (header, error) {
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(jobs[a].ID, jobs[b].ID) })
	ids, types, payloads := sha256.New(), sha256.New(), sha256.New()
	for _, i := range order {
		writeField(ids, []byte(jobs[i].ID))
		writeField(types, []byte(jobs[i].Type))
		p, err := dispatch.EncodePayload(jobs[i].Payload)
		if err != nil {
			return header{}, fmt.Errorf("sweep: job %s: %w", jobs[i].ID, err)
		}
		sum := sha256.Sum256(p)
		payloads.Write(sum[:])
	}
	return header{
		Format: journalFormat, Jobs: len(jobs), Description: description,
		IDs: hexSum(ids), Types: hexSum(types), Payloads: hexSum(payloads),
	}, nil
}

// writeField writes b with its length in front, so that fields cannot run together.
func writeField(h hash.Hash, b []byte) {
	h.Write(binary.AppendUvarint(nil, uint64(len(b))))
	h.Write(b)
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// differences says in words how the journal's header got differs from this sweep's,
// or "" if it does not.
func (want header) differences(got header) string {
	var d []string
	if got.Format != want.Format {
		return fmt.Sprintf("its format is version %d, this banfleet writes and reads version %d", got.Format, want.Format)
	}
	if got.Jobs != want.Jobs {
		d = append(d, fmt.Sprintf("it is for %d jobs, this sweep has %d", got.Jobs, want.Jobs))
	}
	if got.IDs != want.IDs {
		d = append(d, "the job ids differ (another grid?)")
	}
	if got.Types != want.Types {
		d = append(d, "the job types differ")
	}
	if got.Payloads != want.Payloads {
		d = append(d, "the job payloads differ (other data or other parameters?)")
	}
	if got.Description != want.Description {
		d = append(d, fmt.Sprintf("it describes the sweep as %q, this one is %q", got.Description, want.Description))
	}
	return strings.Join(d, "; ")
}
