package engine

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Default rendering settings of a Progress; see the fields of the same
// names. They aim at a readable terminal and a log of about a dozen lines.
const (
	// DefaultProgressWidth is the default bar width in characters.
	DefaultProgressWidth = 30
	// DefaultRedrawInterval caps terminal redraws at ten per second, which
	// looks live without flooding a slow terminal.
	DefaultRedrawInterval = 100 * time.Millisecond
	// DefaultLogInterval is the longest a plain log stays silent while
	// work progresses.
	DefaultLogInterval = 10 * time.Second
	// DefaultLogStepPercent prints a plain line every 10% of the work.
	DefaultLogStepPercent = 10.0

	// etaMinPercent and etaMinJobs: the ETA is shown only once this share of the
	// work, and at least this many jobs, finished after the first one. Before that
	// the rate is noise (the first result also carries the start-up: uploading the
	// bars, workers connecting, caches filling), and an ETA of "33s" at 1/2638 or
	// "4m32s" that falls to a minute misleads more than "ETA --".
	etaMinPercent = 2.0
	etaMinJobs    = 3
)

// Progress renders sweep progress as done/total, a bar, the rate in jobs
// per second, the elapsed time and an ETA. On a terminal it redraws a
// single line with '\r'; elsewhere (logs, CI) it prints a plain line only
// now and then, so log files stay readable. Time is never read from the
// system clock: every call takes the current time, which makes rendering
// deterministic and testable. Methods are safe for concurrent use.
//
// Change the exported fields before the first Update.
type Progress struct {
	// Width is the number of characters of the bar itself.
	Width int
	// RedrawInterval throttles terminal redraws; the final state is always
	// drawn.
	RedrawInterval time.Duration
	// LogInterval: in plain mode a line is printed once this much time has
	// passed since the previous line...
	LogInterval time.Duration
	// LogStepPercent: ...or once this many more percent of the work are
	// done, whichever comes first. The final state is always printed.
	LogStepPercent float64

	mu        sync.Mutex
	out       io.Writer
	total     int
	terminal  bool
	start     time.Time
	done      int
	drawn     bool      // something has been written
	drawnDone int       // done count of the last written line
	drawnAt   time.Time // time of the last written line
	drawnLen  int       // length of the last terminal line, for erasing
	finished  bool
	firstAt   time.Time // when the first job finished (Update or Increment); zero before
	firstDone int       // done count at firstAt
}

// NewProgress returns a Progress for total jobs writing to out. terminal
// selects redraw mode (see [IsTerminal]); start is the time the work
// began, from which rate and ETA are computed.
func NewProgress(out io.Writer, total int, terminal bool, start time.Time) *Progress {
	return &Progress{
		Width:          DefaultProgressWidth,
		RedrawInterval: DefaultRedrawInterval,
		LogInterval:    DefaultLogInterval,
		LogStepPercent: DefaultLogStepPercent,
		out:            out,
		total:          max(total, 0),
		terminal:       terminal,
		start:          start,
	}
}

// Update records that done jobs have finished as of now and writes output
// if it is due. A smaller done than previously seen is ignored, so callers
// reporting from several goroutines cannot make the bar go backwards.
func (p *Progress) Update(done int, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.advance(done, now)
}

// Increment records one more finished job as of now; see [Progress.Update].
func (p *Progress) Increment(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.advance(p.done+1, now)
}

// advance moves the done count forward and writes output if due; p.mu
// must be held.
func (p *Progress) advance(done int, now time.Time) error {
	p.done = max(p.done, min(done, p.total))
	if p.firstAt.IsZero() && p.done > 0 {
		p.firstAt, p.firstDone = now, p.done
	}
	if !p.due(now) {
		return nil
	}
	return p.draw(now)
}

// Finish writes the final state if it has not been written yet and, on a
// terminal, ends the redrawn line with a newline. Later calls do nothing.
func (p *Progress) Finish(now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return nil
	}
	p.finished = true
	if !p.drawn || p.drawnDone != p.done {
		if err := p.draw(now); err != nil {
			return err
		}
	}
	if p.terminal {
		_, err := io.WriteString(p.out, "\n")
		return err
	}
	return nil
}

// Line renders the progress line for done jobs at time now without
// writing it or changing any state.
func (p *Progress) Line(done int, now time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.render(min(max(done, 0), p.total), now)
}

// due reports whether the current state should be written at now.
func (p *Progress) due(now time.Time) bool {
	switch {
	case p.finished:
		return false
	case !p.drawn:
		return true
	case p.done == p.drawnDone:
		return false
	case p.done == p.total:
		return true
	case p.terminal:
		return now.Sub(p.drawnAt) >= p.RedrawInterval
	}
	stepped := percent(p.done, p.total)-percent(p.drawnDone, p.total) >= p.LogStepPercent
	return stepped || now.Sub(p.drawnAt) >= p.LogInterval
}

// draw writes the current state at now.
func (p *Progress) draw(now time.Time) error {
	line := p.render(p.done, now)
	var text string
	if p.terminal {
		// Pad with spaces to erase the tail of a longer previous line.
		text = "\r" + line + strings.Repeat(" ", max(p.drawnLen-len(line), 0))
		p.drawnLen = len(line)
	} else {
		text = line + "\n"
	}
	p.drawn, p.drawnDone, p.drawnAt = true, p.done, now
	_, err := io.WriteString(p.out, text)
	return err
}

// render formats one progress line.
func (p *Progress) render(done int, now time.Time) string {
	width := max(p.Width, 1)
	filled := width
	if p.total > 0 {
		filled = width * done / p.total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat("-", width-filled)
	elapsed := now.Sub(p.start)

	rate, eta := "-- jobs/s", "ETA --"
	if seconds := elapsed.Seconds(); seconds > 0 && done > 0 {
		rate = fmt.Sprintf("%.1f jobs/s", float64(done)/seconds)
	}
	// The ETA's rate counts from the first result when it was seen, so that start-up
	// does not weigh on it, and waits for enough results to mean something.
	since, sinceDone := p.start, 0
	if !p.firstAt.IsZero() && done >= p.firstDone {
		since, sinceDone = p.firstAt, p.firstDone
	}
	counted := done - sinceDone
	if seconds := now.Sub(since).Seconds(); seconds > 0 && counted >= etaMinJobs && percent(counted, p.total) >= etaMinPercent {
		eta = "ETA " + formatSeconds(float64(p.total-done)/(float64(counted)/seconds))
	}
	if done == p.total {
		eta = "ETA 0s"
	}
	return fmt.Sprintf("[%s] %d/%d %5.1f%% %s elapsed %s %s",
		bar, done, p.total, percent(done, p.total), rate, formatSeconds(elapsed.Seconds()), eta)
}

// percent returns done/total in percent; an empty job counts as complete.
func percent(done, total int) float64 {
	if total <= 0 {
		return 100
	}
	return 100 * float64(done) / float64(total)
}

// formatSeconds renders a duration in seconds rounded to whole seconds,
// e.g. "1m5s". Durations beyond 100 hours print as ">100h", which also
// keeps the float-to-Duration conversion in range.
func formatSeconds(seconds float64) string {
	const limit = 100 * 60 * 60
	switch {
	case !(seconds > 0):
		return "0s"
	case seconds > limit:
		return ">100h"
	}
	return time.Duration(seconds * float64(time.Second)).Round(time.Second).String()
}
