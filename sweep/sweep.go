package sweep

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/banfleet/banfleet/dispatch"
)

// DefaultMaxInFlight is Options.MaxInFlight's default.
const DefaultMaxInFlight = 256

// Options configures a sweep.
type Options struct {
	// MaxInFlight bounds the jobs submitted and not yet finished (default
	// DefaultMaxInFlight), so a sweep of a million jobs does not flood the master's
	// queue.
	MaxInFlight int
	// Journal, if set, is a file to which every finished job's result is appended. A
	// sweep started again with the same journal and jobs replays those results instead
	// of running the jobs again; a journal written for other jobs is refused with
	// ErrJournalMismatch. Jobs need stable IDs for that; jobs without one get
	// "sweep-<index>".
	Journal string
	// Description, if set, names the sweep in its journal's header: what the job set's
	// hash cannot tell, such as the data source or the version of the code. A journal
	// whose description differs is refused as one of another sweep, so describe what
	// identifies the work, not when it ran.
	Description string
	// StopOnError ends the sweep at the first failed job.
	StopOnError bool
}

// Result is one finished job of a sweep.
type Result struct {
	Index    int    // position in the jobs given to Start
	ID       string // the job's ID
	Result   []byte
	Err      error
	Replayed bool // read back from the journal, not run now
}

// Progress is a snapshot of a sweep's advance.
type Progress struct {
	Total, Done, Failed, Replayed int
	Elapsed, ETA                  time.Duration
	Rate                          float64 // jobs finished per second in this run
}

// Sweep fans jobs out over the fleet and gathers their results as they finish.
type Sweep struct {
	sub     dispatch.Submitter
	jobs    []dispatch.Job
	opts    Options
	results chan Result
	ctx     context.Context
	stop    context.CancelFunc
	start   time.Time

	// mu protects the following fields.
	mu       sync.Mutex
	done     int
	failed   int
	replayed int
	err      error
	journal  *journalWriter
}

// queueFullPause is how long a sweep waits before resubmitting after
// dispatch.ErrQueueFull.
const queueFullPause = 20 * time.Millisecond

// Start starts submitting jobs through sub (a *dispatch.Master in-process, or a
// *dispatch.Client of a remote master) and returns at once. Read Results until it is closed.
// Cancelling ctx or calling Stop ends the sweep early: jobs in flight are cancelled
// and nothing more is submitted. With a journal, Start fails with an error wrapping
// ErrJournalMismatch when the journal is another sweep's.
func Start(ctx context.Context, sub dispatch.Submitter, jobs []dispatch.Job, opts Options) (*Sweep, error) {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	s := &Sweep{sub: sub, jobs: make([]dispatch.Job, len(jobs)), opts: opts, results: make(chan Result, opts.MaxInFlight), start: time.Now()}
	copy(s.jobs, jobs)
	for i := range s.jobs {
		if s.jobs[i].ID == "" {
			s.jobs[i].ID = "sweep-" + strconv.Itoa(i)
		}
	}
	var finished map[string][]byte
	if opts.Journal != "" {
		h, err := newHeader(s.jobs, opts.Description)
		if err != nil {
			return nil, err
		}
		if s.journal, finished, err = openJournal(opts.Journal, h); err != nil {
			return nil, err
		}
	}
	s.ctx, s.stop = context.WithCancel(ctx)
	go s.run(finished)
	return s, nil
}

// Results delivers each job's outcome as it finishes (replayed ones first). It is
// closed when every job has finished or the sweep was stopped.
func (s *Sweep) Results() <-chan Result { return s.results }

// Stop ends the sweep early.
func (s *Sweep) Stop() { s.stop() }

// Err is why the sweep ended early (a failed job with StopOnError, the context, a
// journal write error), or nil. Read it after Results is closed.
func (s *Sweep) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Progress reports how far the sweep got, with its rate and the estimated time left.
func (s *Sweep) Progress() Progress {
	s.mu.Lock()
	p := Progress{Total: len(s.jobs), Done: s.done, Failed: s.failed, Replayed: s.replayed}
	s.mu.Unlock()
	p.Elapsed = time.Since(s.start)
	if ran := p.Done + p.Failed - p.Replayed; ran > 0 && p.Elapsed > 0 {
		p.Rate = float64(ran) / p.Elapsed.Seconds()
		left := p.Total - p.Done - p.Failed
		p.ETA = time.Duration(float64(left) / p.Rate * float64(time.Second))
	}
	return p
}

func (s *Sweep) run(finished map[string][]byte) {
	defer close(s.results)
	defer s.stop()
	defer s.closeJournal()
	var wg sync.WaitGroup
	slots := make(chan struct{}, s.opts.MaxInFlight)
	for i, job := range s.jobs {
		if res, ok := finished[job.ID]; ok {
			s.record(Result{Index: i, ID: job.ID, Result: res, Replayed: true})
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-s.ctx.Done():
		}
		if s.ctx.Err() != nil {
			s.fail(s.ctx.Err())
			break
		}
		t, err := s.submit(job)
		if err != nil {
			<-slots
			s.record(Result{Index: i, ID: job.ID, Err: err})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			res, err := t.Wait(context.Background())
			s.record(Result{Index: i, ID: job.ID, Result: res, Err: err})
		}()
	}
	wg.Wait()
}

// submit submits one job, waiting while the master's queue is full.
func (s *Sweep) submit(job dispatch.Job) (*dispatch.Ticket, error) {
	for {
		t, err := s.sub.Submit(s.ctx, job)
		if !errors.Is(err, dispatch.ErrQueueFull) {
			return t, err
		}
		select {
		case <-time.After(queueFullPause):
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		}
	}
}

// record counts a result, journals it, and delivers it.
func (s *Sweep) record(r Result) {
	s.mu.Lock()
	switch {
	case r.Replayed:
		s.done++
		s.replayed++
	case r.Err != nil:
		s.failed++
		if s.opts.StopOnError && s.err == nil {
			s.err = fmt.Errorf("sweep: stopped: job %s: %w", r.ID, r.Err)
		}
	default:
		s.done++
		if s.journal != nil {
			if err := s.journal.append(r.ID, r.Result); err != nil && s.err == nil {
				s.err = err
				s.stop()
			}
		}
	}
	s.mu.Unlock()
	// Delivered before the sweep stops: the jobs the stop cancels must not reach the
	// reader ahead of the failure that caused it.
	s.results <- r
	if r.Err != nil && s.opts.StopOnError {
		s.stop()
	}
}

// fail records why the sweep ended early and stops it.
func (s *Sweep) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.stop()
}

func (s *Sweep) closeJournal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil {
		if err := s.journal.close(); err != nil && s.err == nil {
			s.err = err
		}
		s.journal = nil
	}
}
