package dispatch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Submitter is what a sweep submits through: a *Master in-process, or a *Client of a
// remote master.
type Submitter interface {
	Submit(ctx context.Context, job Job) (*Ticket, error)
}

// SweepOptions configures a sweep.
type SweepOptions struct {
	// MaxInFlight bounds the jobs submitted and not yet finished (default 256), so a
	// sweep of a million jobs does not flood the master's queue.
	MaxInFlight int
	// Journal, if set, is a file to which every finished job's result is appended. A
	// sweep started again with the same journal and jobs replays those results instead
	// of running the jobs again. Jobs need stable IDs for that; jobs without one get
	// "sweep-<index>".
	Journal string
	// StopOnError ends the sweep at the first failed job.
	StopOnError bool
}

// SweepResult is one finished job of a sweep.
type SweepResult struct {
	Index    int    // position in the jobs given to StartSweep
	ID       string // the job's ID
	Result   []byte
	Err      error
	Replayed bool // read back from the journal, not run now
}

// SweepProgress is a snapshot of a sweep's advance.
type SweepProgress struct {
	Total, Done, Failed, Replayed int
	Elapsed, ETA                  time.Duration
	Rate                          float64 // jobs finished per second in this run
}

// Sweep fans jobs out over the fleet and gathers their results as they finish.
type Sweep struct {
	sub     Submitter
	jobs    []Job
	opts    SweepOptions
	results chan SweepResult
	ctx     context.Context
	stop    context.CancelFunc
	start   time.Time

	// mu protects the following fields.
	mu       sync.Mutex
	done     int
	failed   int
	replayed int
	err      error
	journal  *os.File
}

// queueFullPause is how long a sweep waits before resubmitting after ErrQueueFull.
const queueFullPause = 20 * time.Millisecond

// StartSweep starts submitting jobs and returns at once. Read Results until it is
// closed. Cancelling ctx or calling Stop ends the sweep early: jobs in flight are
// cancelled and nothing more is submitted.
func StartSweep(ctx context.Context, sub Submitter, jobs []Job, opts SweepOptions) (*Sweep, error) {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 256
	}
	s := &Sweep{sub: sub, jobs: make([]Job, len(jobs)), opts: opts, results: make(chan SweepResult, opts.MaxInFlight), start: time.Now()}
	copy(s.jobs, jobs)
	for i := range s.jobs {
		if s.jobs[i].ID == "" {
			s.jobs[i].ID = "sweep-" + strconv.Itoa(i)
		}
	}
	finished := map[string][]byte{}
	if opts.Journal != "" {
		var err error
		if finished, err = readJournal(opts.Journal); err != nil {
			return nil, err
		}
		if s.journal, err = os.OpenFile(opts.Journal, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("dispatch: sweep journal: %w", err)
		}
	}
	s.ctx, s.stop = context.WithCancel(ctx)
	go s.run(finished)
	return s, nil
}

// Results delivers each job's outcome as it finishes (replayed ones first). It is
// closed when every job has finished or the sweep was stopped.
func (s *Sweep) Results() <-chan SweepResult { return s.results }

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
func (s *Sweep) Progress() SweepProgress {
	s.mu.Lock()
	p := SweepProgress{Total: len(s.jobs), Done: s.done, Failed: s.failed, Replayed: s.replayed}
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
			s.record(SweepResult{Index: i, ID: job.ID, Result: res, Replayed: true})
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
			s.record(SweepResult{Index: i, ID: job.ID, Err: err})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			res, err := t.Wait(context.Background())
			s.record(SweepResult{Index: i, ID: job.ID, Result: res, Err: err})
		}()
	}
	wg.Wait()
}

// submit submits one job, waiting while the master's queue is full.
func (s *Sweep) submit(job Job) (*Ticket, error) {
	for {
		t, err := s.sub.Submit(s.ctx, job)
		if !errors.Is(err, ErrQueueFull) {
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
func (s *Sweep) record(r SweepResult) {
	s.mu.Lock()
	switch {
	case r.Replayed:
		s.done++
		s.replayed++
	case r.Err != nil:
		s.failed++
		if s.opts.StopOnError && s.err == nil {
			s.err = fmt.Errorf("dispatch: sweep stopped: job %s: %w", r.ID, r.Err)
		}
	default:
		s.done++
		if err := s.writeJournalLocked(r); err != nil && s.err == nil {
			s.err = err
			s.stop()
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

// journalEntry is one line of the journal.
type journalEntry struct {
	ID     string `json:"id"`
	Result []byte `json:"result"`
}

func (s *Sweep) writeJournalLocked(r SweepResult) error {
	if s.journal == nil {
		return nil
	}
	line, err := json.Marshal(journalEntry{ID: r.ID, Result: r.Result})
	if err != nil {
		return err
	}
	if _, err := s.journal.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("dispatch: sweep journal: %w", err)
	}
	return nil
}

func (s *Sweep) closeJournal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil {
		_ = s.journal.Close()
		s.journal = nil
	}
}

// readJournal loads finished results. A torn last line (a crash mid-write) is ignored.
func readJournal(path string) (map[string][]byte, error) {
	out := map[string][]byte{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dispatch: sweep journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var e journalEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.ID != "" {
			out[e.ID] = e.Result
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dispatch: sweep journal %s: %w", path, err)
	}
	return out, nil
}
