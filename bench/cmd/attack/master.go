package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The target: a real cmd/master process, one per attack, watched from outside. Its
// heap figures come from the runtime itself (GODEBUG=gctrace=1 on its stderr), its
// RSS and CPU time from /proc, and everything else it writes to stderr is counted
// as log output.

// gcLine is one GC cycle as gctrace reports it (sizes in MiB, as the runtime
// prints them).
type gcLine struct {
	at                        time.Time // when the harness read the line
	start, marked, live, goal int       // A->B->C MB, D MB goal
}

// gcFigures finds the sizes of a gctrace line. It is searched for anywhere in a
// line because the runtime prints a trace line in pieces, and a log line written
// meanwhile can split it.
var gcFigures = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// traceWord is one word of a gctrace line, or a piece of one ("gc", "@", "4.488",
// "s", "1%:", "%:", "0.01+1.2", "300->301->12", "MB", "(forced)", …).
var traceWord = regexp.MustCompile(`^(gc|ms|clock|cpu|MB|goal|stacks|globals|P|\(forced\)|@|s|:|@?[\d.]+s?|[\d.]*%:?|[\d.+/>-]+)$`)

// traceVocabulary is the words of a gctrace line.
var traceVocabulary = []string{"gc", "ms", "clock", "cpu", "MB", "goal", "stacks", "globals", "P", "(forced)"}

// isTraceText reports whether line is a GC trace line or a piece of one: a log
// line written meanwhile can cut a trace line anywhere, even inside a word, so
// the first word may be the end of a trace word and the last the start of one.
func isTraceText(line string) bool {
	words := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	for i, w := range words {
		if traceWord.MatchString(w) {
			continue
		}
		cut := false
		for _, v := range traceVocabulary {
			if i == 0 && strings.HasSuffix(v, w) || i == len(words)-1 && strings.HasPrefix(v, w) {
				cut = true
			}
		}
		if !cut {
			return false
		}
	}
	return true
}

// logMsg picks the message of a slog text or JSON line, for the summary of what was logged.
var logMsg = regexp.MustCompile(`msg="([^"]*)"|msg=(\S+)|"msg":"([^"]*)"`)

// stdLogDate is the standard logger's date prefix.
var stdLogDate = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)? `)

// target is one running master.
type target struct {
	bin     string
	token   string
	args    []string // the attack's own flags (after -listen, -http, -token)
	addr    string   // banio address
	httpURL string   // "http://host:port/"
	pid     int

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has ended
	exit   error

	// mu protects the following fields, filled from stderr.
	mu       sync.Mutex
	gcs      []gcLine
	logLines int
	logBytes int64
	msgs     map[string]int // log lines by message
	lastLogs []string       // the latest few, for diagnostics
}

// startSpec says how to start a target.
type startSpec struct {
	args   []string // after -listen/-http
	token  string   // passed as -token when set
	nofile int      // RLIMIT_NOFILE for the master (through sh's ulimit); 0 keeps ours
}

// startTarget starts bin and waits until it has printed its addresses.
func startTarget(ctx context.Context, bin string, spec startSpec) (*target, error) {
	// In memory: the attacks measure the transport and the dispatch bounds, and a
	// binary that predates -in-memory is attacked as it is.
	args := []string{"-listen", "127.0.0.1:0", "-http", "127.0.0.1:0"}
	if supportsInMemory(bin) {
		args = append(args, "-in-memory")
	}
	if spec.token != "" {
		args = append(args, "-token", spec.token)
	}
	args = append(args, spec.args...)
	var cmd *exec.Cmd
	if spec.nofile > 0 {
		// exec keeps the pid: /proc/PID is the master's own.
		script := fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, spec.nofile)
		cmd = exec.Command("sh", append([]string{"-c", script, bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Env = masterEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	t := &target{bin: bin, token: spec.token, args: spec.args, pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{}), msgs: map[string]int{}}
	running.add(t)
	addrs := make(chan [2]string, 1)
	go t.readStdout(stdout, addrs)
	stderrDone := make(chan struct{})
	go func() { t.readStderr(stderr); close(stderrDone) }()
	go func() {
		<-stderrDone
		t.exit = cmd.Wait()
		close(t.exited)
	}()
	select {
	case a := <-addrs:
		t.addr, t.httpURL = a[0], a[1]
		return t, nil
	case <-t.exited:
		return nil, fmt.Errorf("master exited before listening: %v; stderr: %s", t.exit, strings.Join(t.lastLogs, " | "))
	case <-time.After(10 * time.Second):
		t.kill()
		return nil, errors.New("master printed no addresses within 10 s")
	case <-ctx.Done():
		t.kill()
		return nil, ctx.Err()
	}
}

// masterEnv is our environment without BANFLEET_* (which would configure the
// master behind the harness's back), with gctrace on.
func masterEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BANFLEET_") || strings.HasPrefix(kv, "GODEBUG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GODEBUG=gctrace=1")
}

func (t *target) readStdout(r io.Reader, addrs chan<- [2]string) {
	sc := bufio.NewScanner(r)
	var listen string
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if a, ok := strings.CutPrefix(line, "banfleet master listening on "); ok {
			listen = strings.TrimSpace(a)
		}
		if u, ok := strings.CutPrefix(line, "banfleet master status on "); ok && !sent {
			addrs <- [2]string{listen, strings.TrimSpace(u)}
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// readStderr sorts stderr into GC trace lines and log lines. A line longer than the
// reader's buffer (a log line listing 300,000 job types) counts once.
func (t *target) readStderr(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		size := len(line)
		head := string(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			size += len(line)
		}
		if size > 0 {
			t.noteLine(strings.TrimRight(head, "\n"), size)
		}
		if err != nil {
			return
		}
	}
}

func (t *target) noteLine(line string, size int) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := gcFigures.FindStringSubmatch(line); m != nil {
		n := func(s string) int { v, _ := strconv.Atoi(s); return v }
		t.gcs = append(t.gcs, gcLine{at: now, start: n(m[1]), marked: n(m[2]), live: n(m[3]), goal: n(m[4])})
	}
	if isTraceText(line) {
		return
	}
	t.logLines++
	t.logBytes += int64(size)
	var msg string
	if m := logMsg.FindStringSubmatch(line); m != nil {
		msg = m[1] + m[2] + m[3]
	} else {
		// Not slog: the standard logger (net/http's errors) or the runtime.
		msg = stdLogDate.ReplaceAllString(line, "")
		if i := strings.IndexAny(msg[min(len(msg), 12):], ":;"); i >= 0 && i+12 < 60 {
			msg = msg[:i+12]
		} else if len(msg) > 60 {
			msg = msg[:60]
		}
	}
	t.msgs[msg]++
	if len(t.lastLogs) >= 5 {
		t.lastLogs = t.lastLogs[1:]
	}
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	t.lastLogs = append(t.lastLogs, line)
}

// logCount is the number of log lines and bytes so far.
func (t *target) logCount() (int, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.logLines, t.logBytes
}

// msgCounts is a copy of the log lines counted by message so far.
func (t *target) msgCounts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.msgs))
	for m, c := range t.msgs {
		out[m] = c
	}
	return out
}

// topMessages are the most frequent log messages since the counts in before.
func (t *target) topMessages(n int, before map[string]int) []string {
	type kv struct {
		msg string
		n   int
	}
	var all []kv
	for m, c := range t.msgCounts() {
		if c -= before[m]; c > 0 {
			all = append(all, kv{m, c})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].msg < all[j].msg })
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, fmt.Sprintf("%d× %s", all[i].n, all[i].msg))
	}
	return out
}

// gcCount is the number of GC cycles seen.
func (t *target) gcCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.gcs)
}

// lastGC is the latest cycle, ok false if none.
func (t *target) lastGC() (gcLine, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.gcs) == 0 {
		return gcLine{}, false
	}
	return t.gcs[len(t.gcs)-1], true
}

// peakHeap is the largest heap any GC cycle saw (its start or marked size), MiB.
func (t *target) peakHeap() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := 0
	for _, g := range t.gcs {
		p = max(p, g.start, g.marked)
	}
	return p
}

// alive reports whether the process still runs.
func (t *target) alive() bool {
	select {
	case <-t.exited:
		return false
	default:
		return true
	}
}

// procStatus reads kB fields of /proc/PID/status (VmHWM, VmRSS), in bytes.
func (t *target) procStatus(field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds is the master's user + system CPU time so far.
func (t *target) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", t.pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	// Fields after the command: state is field 3, utime 14, stime 15.
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / clockTicks
}

// openFDs counts the master's open file descriptors.
func (t *target) openFDs() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", t.pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// status fetches /status (2 s bound).
func (t *target) status() (map[string]any, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(t.httpURL + "status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// statusNumber is a number field of /status, -1 when unreadable.
func (t *target) statusNumber(field string) float64 {
	doc, err := t.status()
	if err != nil {
		return -1
	}
	v, ok := doc[field].(float64)
	if !ok {
		return -1
	}
	return v
}

// kill ends the process (SIGKILL: the figures were read already) and waits for it,
// at most 5 s.
func (t *target) kill() {
	if t.alive() {
		_ = t.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-t.exited:
	case <-time.After(5 * time.Second):
	}
	running.remove(t)
}

// processes is the set of masters alive, killed on the way out whatever happens.
type processes struct {
	mu  sync.Mutex
	all map[*target]struct{}
}

var running = &processes{all: map[*target]struct{}{}}

func (p *processes) add(t *target) {
	p.mu.Lock()
	p.all[t] = struct{}{}
	p.mu.Unlock()
}

func (p *processes) remove(t *target) {
	p.mu.Lock()
	delete(p.all, t)
	p.mu.Unlock()
}

// killAll kills every master still running, each by its own pid.
func (p *processes) killAll() {
	p.mu.Lock()
	ts := make([]*target, 0, len(p.all))
	for t := range p.all {
		ts = append(ts, t)
	}
	p.mu.Unlock()
	for _, t := range ts {
		t.kill()
	}
}

// supportsInMemory reports whether the master binary knows -in-memory (a durable
// master would otherwise keep its jobs in the invoking user's state directory).
func supportsInMemory(bin string) bool {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	return strings.Contains(string(out), "-in-memory")
}
