package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/fleettest"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/sweep"
	"github.com/banfleet/banfleet/worker"
)

func TestSweepJournalSkipsFinishedJobs(t *testing.T) {
	leakcheck.Check(t)
	// No retained outcomes: the rerun submits the failed job's id again, which within
	// the retention period would collect its failure rather than run it.
	f := fleettest.New(t, nil, fleettest.WithMasterOptions(dispatch.WithResultRetention(0)))
	var runs atomic.Int64
	f.StartWorker(map[string]worker.Handler{"sq": func(ctx context.Context, j *worker.Job) (any, error) {
		runs.Add(1)
		n, _ := strconv.Atoi(string(j.Payload))
		if n == 7 {
			return nil, errors.New("seven fails")
		}
		return strconv.Itoa(n * n), nil
	}}, worker.WithConcurrency(4))
	jobs := make([]dispatch.Job, 50)
	for i := range jobs {
		jobs[i] = dispatch.Job{ID: fmt.Sprintf("sq-%d", i), Type: "sq", Payload: strconv.Itoa(i)}
	}
	journal := filepath.Join(t.TempDir(), "sweep.journal")
	collect := func() (map[int]string, int, sweep.Progress) {
		s, err := sweep.Start(context.Background(), f.Master(), jobs, sweep.Options{MaxInFlight: 8, Journal: journal})
		if err != nil {
			t.Fatal(err)
		}
		got, replayed := map[int]string{}, 0
		for r := range s.Results() {
			if r.Err == nil {
				got[r.Index] = string(r.Result)
			}
			if r.Replayed {
				replayed++
			}
		}
		return got, replayed, s.Progress()
	}
	first, replayed, p := collect()
	if len(first) != 49 || replayed != 0 || p.Done != 49 || p.Failed != 1 || p.Total != 50 || runs.Load() != 50 {
		t.Fatalf("first run: %d results, %d replayed, progress %+v, %d runs", len(first), replayed, p, runs.Load())
	}
	second, replayed, _ := collect()
	if replayed != 49 || runs.Load() != 51 { // only the failed job runs again
		t.Fatalf("rerun: %d replayed, %d runs in all", replayed, runs.Load())
	}
	for i, v := range first {
		if second[i] != v {
			t.Fatalf("job %d: %q then %q", i, v, second[i])
		}
	}
}

func TestSweepStopsEarly(t *testing.T) {
	leakcheck.Check(t)
	f := fleettest.New(t, nil)
	f.StartWorker(map[string]worker.Handler{"fail": func(context.Context, *worker.Job) (any, error) {
		return nil, errors.New("bad")
	}}, worker.WithConcurrency(1))
	jobs := make([]dispatch.Job, 1000)
	for i := range jobs {
		jobs[i] = dispatch.Job{Type: "fail"}
	}
	s, err := sweep.Start(context.Background(), f.Master(), jobs, sweep.Options{MaxInFlight: 2, StopOnError: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range s.Results() {
		n++
	}
	if n >= len(jobs) || s.Err() == nil {
		t.Fatalf("StopOnError: %d results, err %v", n, s.Err())
	}
}

// A journal is refused by a sweep of other data (payloads), with a message that says
// so and what to do, and nothing runs; the journal is left as it was. The sweep it
// belongs to still replays it.
func TestSweepRefusesAnotherSweepsJournal(t *testing.T) {
	leakcheck.Check(t)
	var runs atomic.Int64
	f := fleettest.New(t, map[string]worker.Handler{"sq": func(ctx context.Context, j *worker.Job) (any, error) {
		runs.Add(1)
		n, _ := strconv.Atoi(string(j.Payload))
		return strconv.Itoa(n * n), nil
	}})
	jobs := func(offset int) []dispatch.Job {
		js := make([]dispatch.Job, 10)
		for i := range js {
			js[i] = dispatch.Job{ID: fmt.Sprintf("sq-%d", i), Type: "sq", Payload: strconv.Itoa(i + offset)}
		}
		return js
	}
	journal := filepath.Join(t.TempDir(), "sweep.journal")
	run := func(js []dispatch.Job) (int, error) {
		s, err := sweep.Start(context.Background(), f.Master(), js, sweep.Options{Journal: journal, Description: "squares"})
		if err != nil {
			return 0, err
		}
		n := 0
		for r := range s.Results() {
			if r.Err != nil {
				t.Fatalf("job %s: %v", r.ID, r.Err)
			}
			if r.Replayed {
				n++
			}
		}
		return n, s.Err()
	}
	if _, err := run(jobs(0)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(journal)
	ran := runs.Load()
	_, err := run(jobs(100)) // the same ids over other data
	if !errors.Is(err, sweep.ErrJournalMismatch) || !strings.Contains(err.Error(), "payloads differ") || !strings.Contains(err.Error(), "use another journal file") {
		t.Fatalf("a sweep of other data on the journal: %v, want ErrJournalMismatch saying the payloads differ", err)
	}
	if after, _ := os.ReadFile(journal); runs.Load() != ran || string(after) != string(before) {
		t.Fatalf("the refused sweep ran %d jobs or changed the journal", runs.Load()-ran)
	}
	// The results are greppable text, not base64.
	if !strings.Contains(string(before), `{"id":"sq-3","result":9}`) {
		t.Fatalf("journal:\n%s", before)
	}
	if replayed, err := run(jobs(0)); err != nil || replayed != 10 || runs.Load() != ran {
		t.Fatalf("the journal's own sweep: %d replayed, %v, %d runs", replayed, err, runs.Load()-ran)
	}
}
