package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the end-to-end test: build the daemons, run them as processes, read
// what they print.

// buildDaemons builds cmd/master and cmd/worker into dir (with -race when the test
// runs under it) and returns their paths.
func buildDaemons(t *testing.T, dir string) (master, worker string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool on PATH to build the daemons: %v", err)
	}
	// One go build for both: the linker runs in parallel.
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/banfleet/banfleet/cmd/master", "github.com/banfleet/banfleet/cmd/worker")
	if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "master"+exeSuffix()), filepath.Join(dir, "worker"+exeSuffix())
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// proc is a daemon started by a test; it is killed when the test ends.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *watchedBuffer
	stderr *watchedBuffer
	exited chan struct{} // closed when the process has been waited for
	err    error         // Wait's error, once exited is closed
}

// startProc runs bin with args; its output is kept and logged if the test fails.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: newWatchedBuffer(), stderr: newWatchedBuffer(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = cleanEnv()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race", name)
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.stdout, name, p.stderr)
		}
	})
	return p
}

// cleanEnv is the test's environment without BANFLEET_* variables, so a developer's
// settings cannot change what the daemons do.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BANFLEET_") {
			out = append(out, kv)
		}
	}
	return out
}

// kill kills the process and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// wait waits for the process to exit by itself.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.name, timeout)
		return nil
	}
}

// watchedBuffer is an io.Writer that keeps everything written and lets a reader
// wait for a line with a given prefix.
type watchedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newWatchedBuffer() *watchedBuffer { return &watchedBuffer{changed: make(chan struct{})} }

func (b *watchedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *watchedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// line returns the rest of the first complete line starting with prefix.
func (b *watchedBuffer) line(prefix string) (string, bool, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for l := range strings.Lines(b.buf.String()) {
		if rest, ok := strings.CutPrefix(l, prefix); ok && strings.HasSuffix(rest, "\n") {
			return strings.TrimSpace(rest), true, nil
		}
	}
	return "", false, b.changed
}

// awaitLine waits until p prints a line starting with prefix on stdout and returns
// the rest of it.
func (p *proc) awaitLine(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		rest, ok, changed := p.stdout.line(prefix)
		if ok {
			return rest
		}
		select {
		case <-changed:
		case <-p.exited:
			t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, prefix)
		case <-timeout:
			t.Fatalf("%s did not print %q within 30s", p.name, prefix)
		}
	}
}

// masterStatus is the part of /status the test reads.
type masterStatus struct {
	Workers []struct {
		Name string `json:"name"`
	} `json:"workers"`
	Done    uint64 `json:"done"`
	Retried uint64 `json:"retried"`
}

func getStatus(ctx context.Context, url string) (masterStatus, error) {
	var st masterStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// awaitStatus polls the master's /status until cond holds: registration happens in
// another process, so there is no event to wait on.
func awaitStatus(t *testing.T, url, what string, cond func(masterStatus) bool) masterStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := getStatus(ctx, url)
		if err == nil && cond(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last status %+v, err %v", what, st, err)
		case <-tick.C:
		}
	}
}
