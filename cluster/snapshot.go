package cluster

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/hashicorp/raft"

	"github.com/banfleet/banfleet/store"
)

// A snapshot of the cluster's state machine, as raft's FileSnapshotStore keeps it:
//
//	magic "BFCS", snapshot version, member count, (id, banio address) byte strings,
//	the store state's snapshot (store.State.Snapshot, with its own CRC) as a byte string
//
// Integers are unsigned varints.

const (
	snapshotMagic   = "BFCS"
	snapshotVersion = 1
	// maxSnapshotMembers bounds what a damaged snapshot can make Restore allocate.
	maxSnapshotMembers = 1 << 16
)

// snapshot is a point-in-time copy of the state machine (fsm.Snapshot).
type snapshot struct {
	st    *store.State
	addrs map[string]string
}

// Persist writes the snapshot to sink; raft calls it off the FSM goroutine.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("cluster: write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) write(w io.Writer) error {
	ids := slices.Sorted(maps.Keys(s.addrs))
	head := append([]byte(snapshotMagic), snapshotVersion)
	head = binary.AppendUvarint(head, uint64(len(ids)))
	for _, id := range ids {
		head = appendString(head, id)
		head = appendString(head, s.addrs[id])
	}
	body := s.st.Snapshot()
	head = binary.AppendUvarint(head, uint64(len(body)))
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// Release is called when raft is done with the snapshot.
func (s *snapshot) Release() {}

// readSnapshot decodes what snapshot.write wrote.
func readSnapshot(r io.Reader) (*store.State, map[string]string, error) {
	br := bufio.NewReader(r)
	bad := func(what string, err error) (*store.State, map[string]string, error) {
		return nil, nil, fmt.Errorf("cluster: restore snapshot: %s: %w (the snapshot is damaged: remove this member's data directory and add it to the cluster again, which sends it the leader's)", what, err)
	}
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return bad("header", err)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return bad("header", errMalformedEntry)
	}
	if v := head[len(snapshotMagic)]; v != snapshotVersion {
		return nil, nil, fmt.Errorf("cluster: restore snapshot: version %d, want %d (written by a newer banfleet? run the same version on every master)", v, snapshotVersion)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return bad("member count", err)
	}
	if n > maxSnapshotMembers {
		return bad("member count", fmt.Errorf("%d members", n))
	}
	addrs := make(map[string]string, n)
	for range n {
		id, err := readString(br)
		if err != nil {
			return bad("member id", err)
		}
		addr, err := readString(br)
		if err != nil {
			return bad("member address", err)
		}
		addrs[id] = addr
	}
	size, err := binary.ReadUvarint(br)
	if err != nil {
		return bad("state size", err)
	}
	// Read through a LimitReader rather than allocating size bytes up front: a
	// damaged size fails at the end of the data, not with an enormous allocation.
	body, err := io.ReadAll(io.LimitReader(br, int64(min(size, 1<<62))))
	if err != nil {
		return bad("state", err)
	}
	if uint64(len(body)) != size {
		return bad("state", io.ErrUnexpectedEOF)
	}
	st := store.NewState()
	if err := st.Restore(body); err != nil {
		return bad("state", err)
	}
	return st, addrs, nil
}

// maxMemberString bounds a member id or address in a snapshot.
const maxMemberString = 1 << 12

func readString(br *bufio.Reader) (string, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return "", err
	}
	if n > maxMemberString {
		return "", fmt.Errorf("a string of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return "", err
	}
	return string(b), nil
}
