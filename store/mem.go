package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Mem is the in-memory Store: the state machine with no log. Apply applies at once and
// nothing survives the process. A Master given a Mem (dispatch.OpenMaster) runs every
// code path of a durable one, which is what tests use it for; a Master made with
// dispatch.NewMaster keeps no store at all, since the state machine's copy of every
// job would only cost it time.
type Mem struct {
	opts options

	// mu protects the following fields.
	mu       sync.RWMutex
	st       *State
	closed   bool
	records  uint64
	rejected uint64
}

var _ Store = (*Mem)(nil)

// NewMem returns an empty in-memory store. Of the options it uses WithBlobThreshold
// and WithRetention.
func NewMem(opts ...Option) *Mem {
	return &Mem{opts: buildOptions(opts), st: NewState()}
}

// Apply applies recs at once (see Store.Apply).
func (m *Mem) Apply(ctx context.Context, recs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	recs = prepare(recs, m.opts.blobThreshold)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applyLocked(recs)
}

// ApplyThen applies recs at once and calls then with the result on a goroutine of its
// own (see Store.ApplyThen).
func (m *Mem) ApplyThen(then func(error), recs ...Record) error {
	recs = prepare(recs, m.opts.blobThreshold)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	err := m.applyLocked(recs)
	m.mu.Unlock()
	if then != nil {
		go then(err)
	}
	return nil
}

func (m *Mem) applyLocked(recs []Record) error {
	if m.closed {
		return ErrClosed
	}
	if err := m.st.Apply(recs...); err != nil {
		m.rejected++
		return err
	}
	m.records += uint64(len(recs))
	return nil
}

// Load returns a copy of the state.
func (m *Mem) Load() (*State, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.st.Clone(), nil
}

// Lookup returns what the store holds about job id.
func (m *Mem) Lookup(id string) JobState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.Lookup(id)
}

// Blob returns blob hash's bytes.
func (m *Mem) Blob(hash string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return blobOf(m.st, hash)
}

func blobOf(st *State, hash string) ([]byte, error) {
	if b, ok := st.Blob(hash); ok {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownBlob, hash)
}

// Expire forgets the outcomes whose retention has passed by now.
func (m *Mem) Expire(ctx context.Context, now time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids, recs := expiry(m.st, now, m.opts.retention)
	if len(recs) == 0 {
		return nil, nil
	}
	if err := m.applyLocked(recs); err != nil {
		if errors.Is(err, ErrInvalid) {
			err = fmt.Errorf("store: expiry refused (a bug): %w", err)
		}
		return nil, err
	}
	return ids, nil
}

// Stats reports the records applied and the state held.
func (m *Mem) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := Stats{Records: m.records, Rejected: m.rejected}
	s.fromState(m.st)
	return s
}

// Close makes further Apply calls fail with ErrClosed.
func (m *Mem) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}
