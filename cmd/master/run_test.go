package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// syncBuffer is a bytes.Buffer safe for concurrent use that tells readers when it
// grows.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
	return s.b.Write(p)
}

// snapshot returns the contents and a channel closed at the next write.
func (s *syncBuffer) snapshot() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.changed
}

func (s *syncBuffer) String() string {
	out, _ := s.snapshot()
	return out
}

// startRun runs the master in-process with args; it returns the banio address, the
// status URL (when withHTTP) and a function that stops it and returns its exit code.
func startRun(t *testing.T, withHTTP bool, args ...string) (addr, url string, stop func() int, stdout *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	code := make(chan int, 1)
	if !slices.Contains(args, "-data-dir") && !slices.Contains(args, "-in-memory") {
		args = append([]string{"-data-dir", t.TempDir()}, args...)
	}
	go func() { code <- run(ctx, args, env(), stdout, stderr) }()
	timeout := time.After(10 * time.Second)
	for addr == "" || (withHTTP && url == "") {
		out, changed := stdout.snapshot()
		for l := range strings.Lines(out) {
			if a, ok := strings.CutPrefix(l, "banfleet master listening on "); ok {
				addr = strings.TrimSpace(a)
			}
			if u, ok := strings.CutPrefix(l, "banfleet master status on "); ok {
				url = strings.TrimSpace(u)
			}
		}
		if addr != "" && (!withHTTP || url != "") {
			break
		}
		select {
		case <-changed:
		case c := <-code:
			t.Fatalf("master exited with %d:\n%s", c, stderr)
		case <-timeout:
			t.Fatalf("master printed no address:\n%s", out)
		}
	}
	var once sync.Once
	var exit int
	stop = func() int {
		once.Do(func() {
			cancel()
			exit = <-code
		})
		return exit
	}
	t.Cleanup(func() { stop() })
	return addr, url, stop, stdout
}

func TestRunServesWorkersAndStatus(t *testing.T) {
	leakcheck.Check(t)
	addr, url, stop, _ := startRun(t, true, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-token", "s3cret", "-log-level", "error")

	w := worker.New(addr, worker.WithName("probe"), worker.WithLabels(map[string]string{"zone": "a"}),
		worker.WithBanIO(banio.WithToken("s3cret")))
	w.Handle("echo", func(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	defer func() { wcancel(); <-wdone }()

	client, err := dispatch.NewClient(addr, dispatch.WithBanIO(banio.WithToken("s3cret")))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	res, err := client.Call(context.Background(), "echo", "ping")
	if err != nil || string(res) != "ping" {
		t.Fatalf("echo through the master: %q %v", res, err)
	}
	if _, err := dispatch.NewClient(addr, dispatch.WithBanIO(banio.WithToken("wrong"))); err == nil {
		t.Error("a wrong token must be refused")
	}

	resp, err := http.Get(url + "status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Listen != addr || st.Done != 1 || len(st.Workers) != 1 || st.Workers[0].Name != "probe" || st.Workers[0].Labels["zone"] != "a" {
		t.Fatalf("/status after one job:\n%s", body)
	}

	if code := stop(); code != 0 {
		t.Fatalf("exit code %d after cancel", code)
	}
	if _, err := http.Get(url + "healthz"); err == nil {
		t.Error("the status server still answers after shutdown")
	}
}

func TestRunWithoutHTTP(t *testing.T) {
	leakcheck.Check(t)
	addr, _, stop, stdout := startRun(t, false, "-listen", "127.0.0.1:0", "-http", "", "-log-level", "error")
	if addr == "" {
		t.Fatal("no address")
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if out := stdout.String(); strings.Contains(out, "status on") {
		t.Errorf("-http \"\" still started the status server:\n%s", out)
	}
}

func TestRunFailsCleanly(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int // 2: refused while parsing; 1: failed while starting
	}{
		{"bad AES key", []string{"-aes-key", "abc"}, 2},
		{"bad heartbeat", []string{"-heartbeat", "10s", "-heartbeat-timeout", "5s"}, 2},
		{"bad http address", []string{"-http", "256.0.0.1:1"}, 1},
		{"missing cert", []string{"-tls-cert", "/nonexistent.pem", "-tls-key", "/nonexistent.key"}, 1},
		{"bad listen", []string{"-listen", "not an address"}, 1},
		{"pprof without a status server", []string{"-pprof"}, 2},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		args := append([]string{"-listen", "127.0.0.1:0", "-http", "", "-log-level", "error", "-in-memory"}, c.args...)
		if code := run(context.Background(), args, env(), &stdout, &stderr); code != c.code || stderr.Len() == 0 {
			t.Errorf("%s: exit %d (want %d), stderr %q", c.name, code, c.code, &stderr)
		}
	}
}

// TestRunAtConnectionCap: past -max-conns new connections are refused with a reason,
// and the status server keeps answering (the cap leaves descriptors for it).
func TestRunAtConnectionCap(t *testing.T) {
	leakcheck.Check(t)
	addr, url, _, _ := startRun(t, true, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-max-conns", "2", "-log-level", "error")
	var held []*banio.ClientIO
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	// A client with a token waits for the master's welcome (a tokenless master sends
	// one too), so each NewClientIO returns once the master has admitted or refused it.
	for range 2 {
		c, err := banio.NewClientIO(addr, banio.WithToken("unused"))
		if err != nil {
			t.Fatalf("connection under the cap: %v", err)
		}
		held = append(held, c)
	}
	if _, err := banio.NewClientIO(addr, banio.WithToken("unused")); !errors.Is(err, banio.ErrRefused) {
		t.Fatalf("connection past -max-conns 2: %v, want ErrRefused", err)
	}
	resp, err := http.Get(url + "healthz")
	if err != nil {
		t.Fatalf("/healthz at the cap: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz at the cap: %s", resp.Status)
	}
}
