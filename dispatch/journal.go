package dispatch

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/banfleet/banfleet/store"
)

// journal is how a durable Master (OpenMaster) tells its store.Store every change of a
// job's state. The master appends records under its lock, in the order the changes
// happen, with store.ApplyThen: nothing waits for a commit except what must not go
// ahead of one (a job's acceptance, an attempt's envelope, a blob's upload), and those
// continue from the commit's callback. A Master made with NewMaster has no journal: it
// is the same state machine without the log.
type journal struct {
	st  store.Store
	log *slog.Logger

	failed   atomic.Pointer[error] // the first error the store gave: it takes nothing more
	failOnce sync.Once
}

func newJournal(st store.Store, log *slog.Logger) *journal {
	return &journal{st: st, log: log}
}

// record appends recs; a failure is logged once and makes the master refuse new jobs
// (err). It never blocks.
func (jn *journal) record(recs ...store.Record) {
	jn.recordThen(nil, recs...)
}

// recordThen appends recs and calls then with the store's verdict once they are
// durable, or at once (on a goroutine of its own) when the store takes nothing more.
// then may be nil.
func (jn *journal) recordThen(then func(error), recs ...store.Record) {
	jn.append(false, then, recs)
}

// laterStore is a store that can hold records nobody waits for until a commit that
// somebody does (store.Bolt.ApplyLater).
type laterStore interface {
	ApplyLater(then func(error), recs ...store.Record) error
}

// recordLater is record for records nobody waits for: a store that can (laterStore)
// commits them with the next commit a caller waits for, sparing them a sync of their
// own. Order is kept with every other record.
func (jn *journal) recordLater(recs ...store.Record) {
	jn.append(true, nil, recs)
}

// append hands recs to the store, lazily if asked and the store can; a failure is
// noted (fail) before then hears of it.
func (jn *journal) append(lazy bool, then func(error), recs []store.Record) {
	cb := func(err error) {
		if err != nil {
			jn.fail(err, recs)
		}
		if then != nil {
			then(err)
		}
	}
	var err error
	if ls, ok := jn.st.(laterStore); lazy && ok {
		err = ls.ApplyLater(cb, recs...)
	} else {
		err = jn.st.ApplyThen(cb, recs...)
	}
	if err != nil {
		go cb(err)
	}
}

// fail notes the store's first failure. A record the state machine refused is a bug
// of the master's (it applies only transitions it made); a fenced store means another
// master leads now (logged at Info); any other failure is the store's (a full disk, a
// closed store) and is as fatal for durability.
func (jn *journal) fail(err error, recs []store.Record) {
	jn.failed.CompareAndSwap(nil, &err)
	jn.failOnce.Do(func() {
		if errors.Is(err, store.ErrFenced) {
			// A leadership that ended, not a fault: the next leader has the jobs.
			jn.log.Info("dispatch: the job store is fenced (another master leads now); this master records nothing more", "err", err)
			return
		}
		what := "the job store failed; the master accepts no new jobs (restart it once the store is fixed)"
		if errors.Is(err, store.ErrInvalid) {
			what = "the job store refused a record (a bug in the master: please report it); the master accepts no new jobs"
		}
		jn.log.Error("dispatch: "+what, "records", fmt.Sprint(recs), "err", err)
	})
}

// errStoreFailed is wrapped by the journal's err: a refusal because the store
// failed, not because of the job.
var errStoreFailed = errors.New("the master's job store failed")

// err is why the journal takes no more records, nil while it does.
func (jn *journal) err() error {
	if p := jn.failed.Load(); p != nil {
		return fmt.Errorf("dispatch: %w, so it accepts no new jobs: %w", errStoreFailed, *p)
	}
	return nil
}
