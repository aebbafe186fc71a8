// Package proctest runs the daemons as real processes in tests: build them, start
// them with their output kept, wait for the lines they print, kill them with SIGKILL.
// A test that must show that nothing is lost when a process dies kills a process, not
// a goroutine.
package proctest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Build builds the packages (import paths of main packages) into dir, with -race
// when race is set, and returns the binaries' paths in the same order.
func Build(t testing.TB, dir string, race bool, pkgs ...string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool on PATH to build %v: %v", pkgs, err)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkgs...)
	if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bins := make([]string, len(pkgs))
	for i, p := range pkgs {
		bins[i] = filepath.Join(dir, filepath.Base(p)+exeSuffix())
	}
	return bins
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// Proc is a process started by a test; it is killed when the test ends.
type Proc struct {
	Name   string
	Cmd    *exec.Cmd
	Stdout *Buffer
	Stderr *Buffer
	exited chan struct{} // closed when the process has been waited for
	err    error         // Wait's error, once exited is closed
}

// Start runs bin with args, in an environment without BANFLEET_* variables (a
// developer's settings must not change what the daemon does). Its output is kept,
// and logged if the test fails; a data race it reports fails the test.
func Start(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Stdout: NewBuffer(), Stderr: NewBuffer(), exited: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	p.Cmd.Env = cleanEnv()
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Kill()
		if strings.Contains(p.Stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race", name)
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.Stdout, name, p.Stderr)
		}
	})
	return p
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BANFLEET_") {
			out = append(out, kv)
		}
	}
	return out
}

// Kill kills the process with SIGKILL (no chance to flush or close anything) and
// waits for it.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.exited
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Wait waits up to timeout for the process to exit by itself and returns Wait's
// error.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s", p.Name, timeout)
		return nil
	}
}

// AwaitLine waits up to 30 s until p prints a line starting with prefix on stdout and
// returns the rest of it.
func (p *Proc) AwaitLine(t testing.TB, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		rest, ok, changed := p.Stdout.Line(prefix)
		if ok {
			return rest
		}
		select {
		case <-changed:
		case <-p.exited:
			t.Fatalf("%s exited (%v) before printing %q", p.Name, p.err, prefix)
		case <-timeout:
			t.Fatalf("%s did not print %q within 30s", p.Name, prefix)
		}
	}
}

// Buffer is an io.Writer that keeps everything written and lets a reader wait for a
// line with a given prefix.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

// NewBuffer returns an empty Buffer.
func NewBuffer() *Buffer { return &Buffer{changed: make(chan struct{})} }

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Line returns the rest of the first complete line starting with prefix; when there
// is none yet, a channel closed at the next write.
func (b *Buffer) Line(prefix string) (rest string, ok bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for l := range strings.Lines(b.buf.String()) {
		if rest, ok := strings.CutPrefix(l, prefix); ok && strings.HasSuffix(rest, "\n") {
			return strings.TrimSpace(rest), true, nil
		}
	}
	return "", false, b.changed
}
