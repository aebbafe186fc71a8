package engine

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var progressStart = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// at returns the start time plus d, standing in for a clock.
func at(d time.Duration) time.Time { return progressStart.Add(d) }

func TestProgressLine(t *testing.T) {
	p := NewProgress(nil, 100, false, progressStart)
	for _, tc := range []struct {
		done    int
		elapsed time.Duration
		want    string
	}{
		{0, 0, "[------------------------------] 0/100   0.0% -- jobs/s elapsed 0s ETA --"},
		{50, 10 * time.Second, "[###############---------------] 50/100  50.0% 5.0 jobs/s elapsed 10s ETA 10s"},
		{10, 90 * time.Second, "[###---------------------------] 10/100  10.0% 0.1 jobs/s elapsed 1m30s ETA 13m30s"},
		{100, 20 * time.Second, "[##############################] 100/100 100.0% 5.0 jobs/s elapsed 20s ETA 0s"},
		{3, 1000 * time.Hour, "[------------------------------] 3/100   3.0% 0.0 jobs/s elapsed >100h ETA >100h"},
		{1, time.Second, "[------------------------------] 1/100   1.0% 1.0 jobs/s elapsed 1s ETA --"},       // too few for an ETA
		{250, time.Second, "[##############################] 100/100 100.0% 100.0 jobs/s elapsed 1s ETA 0s"}, // clamped
	} {
		if got := p.Line(tc.done, at(tc.elapsed)); got != tc.want {
			t.Errorf("Line(%d, +%v) =\n%q\nwant\n%q", tc.done, tc.elapsed, got, tc.want)
		}
	}
}

func TestProgressPlainModeThrottles(t *testing.T) {
	var sb strings.Builder
	p := NewProgress(&sb, 200, false, progressStart)
	steps := []struct {
		done      int
		elapsed   time.Duration
		wantPrint bool
	}{
		{1, 1 * time.Second, true},    // first update always prints
		{10, 2 * time.Second, false},  // +4.5%, 1s later
		{21, 3 * time.Second, true},   // +10% since the last line
		{22, 12 * time.Second, false}, // 9s since the last line
		{23, 13 * time.Second, true},  // 10s since the last line
		{23, 40 * time.Second, false}, // nothing new
		{20, 41 * time.Second, false}, // going backwards is ignored
		{200, 50 * time.Second, true}, // completion always prints
	}
	lines := 0
	for _, s := range steps {
		if err := p.Update(s.done, at(s.elapsed)); err != nil {
			t.Fatal(err)
		}
		got := strings.Count(sb.String(), "\n")
		if printed := got > lines; printed != s.wantPrint {
			t.Errorf("Update(%d, +%v): printed=%v, want %v\n%s", s.done, s.elapsed, printed, s.wantPrint, sb.String())
		}
		lines = got
	}
	if err := p.Finish(at(51 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sb.String(), "\r") || strings.Count(sb.String(), "\n") != 4 {
		t.Errorf("plain output should be 4 lines without carriage returns:\n%q", sb.String())
	}
	if !strings.HasSuffix(sb.String(), "200/200 100.0% 4.0 jobs/s elapsed 50s ETA 0s\n") {
		t.Errorf("last line is not the final state:\n%s", sb.String())
	}
}

func TestProgressTerminalModeRedrawsOneLine(t *testing.T) {
	var sb strings.Builder
	p := NewProgress(&sb, 100, true, progressStart)
	p.Width = 10
	_ = p.Update(1, at(10*time.Second))
	_ = p.Update(2, at(10*time.Second+50*time.Millisecond)) // within RedrawInterval: skipped
	_ = p.Update(50, at(150*time.Second))
	_ = p.Update(100, at(150*time.Second)) // completion: drawn at once
	if err := p.Finish(at(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_ = p.Finish(at(4 * time.Second)) // idempotent
	out := sb.String()
	if n := strings.Count(out, "\r"); n != 3 {
		t.Errorf("got %d redraws, want 3 (1, 50, 100):\n%q", n, out)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("terminal output must end with exactly one newline:\n%q", out)
	}
	redraws := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	if len(redraws) != 3 {
		t.Fatalf("redraws = %q", redraws)
	}
	// A shorter line must blank out the tail of the longer one before it.
	for i := 1; i < len(redraws); i++ {
		if previous := strings.TrimRight(redraws[i-1], " "); len(redraws[i]) < len(previous) {
			t.Errorf("redraw %q does not cover previous %q", redraws[i], previous)
		}
	}
	if want := "[##########] 100/100 100.0% 0.7 jobs/s elapsed 2m30s ETA 0s"; strings.TrimRight(redraws[2], " ") != want {
		t.Errorf("final redraw = %q, want %q", redraws[2], want)
	}
	if len(strings.TrimRight(redraws[1], " ")) <= len(strings.TrimRight(redraws[2], " ")) {
		t.Error("scenario no longer exercises padding: the second line is not longer than the last")
	}
}

func TestProgressIsSafeForConcurrentIncrements(t *testing.T) {
	var sb strings.Builder
	p := NewProgress(&sb, 400, false, progressStart)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				_ = p.Increment(at(time.Duration(g*100+i) * time.Millisecond))
			}
		})
	}
	wg.Wait()
	// Completion is always printed, so a lost increment shows up here.
	if !strings.Contains(sb.String(), "400/400") {
		t.Errorf("not all increments were counted; output:\n%s", sb.String())
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(nil) {
		t.Error("nil file reported as terminal")
	}
	regular, err := os.Create(filepath.Join(t.TempDir(), "log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	if IsTerminal(regular) {
		t.Error("regular file reported as terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Error("pipe reported as terminal")
	}
	// The null device is a character device, as a terminal is; once
	// closed it can no longer be inspected and must not count.
	device, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if !IsTerminal(device) {
		t.Skip("os.DevNull is not a character device here")
	}
	device.Close()
	if IsTerminal(device) {
		t.Error("closed file reported as terminal")
	}
}

// TestProgressETAWaitsForAMeaningfulRate: the first result carries the start-up
// (uploading the data, workers connecting), so an ETA from it is noise. The ETA
// stays "--" until 2% of the work (and at least 3 jobs) finished after the first,
// and its rate counts from the first result.
func TestProgressETAWaitsForAMeaningfulRate(t *testing.T) {
	var sb strings.Builder
	p := NewProgress(&sb, 1000, false, progressStart)
	p.LogStepPercent = 0.1                // a line for every update
	_ = p.Update(1, at(30*time.Second))   // start-up took 30 s
	_ = p.Update(10, at(31*time.Second))  // 9 after the first: under 2%
	_ = p.Update(101, at(40*time.Second)) // 100 in 10 s after the first: 10 jobs/s
	lines := strings.Split(strings.TrimSuffix(sb.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines = %q", lines)
	}
	for _, l := range lines[:2] {
		if !strings.HasSuffix(l, "ETA --") {
			t.Errorf("an ETA before the rate means anything: %q", l)
		}
	}
	// 899 left at 10 jobs/s: 1m30s (from the start it would say 5m57s).
	if !strings.HasSuffix(lines[2], "ETA 1m30s") {
		t.Errorf("ETA from the rate since the first result: %q, want ETA 1m30s", lines[2])
	}
}
