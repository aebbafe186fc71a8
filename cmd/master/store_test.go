package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/worker"
)

// TestRunKeepsJobsAcrossRestart: a job submitted while no worker serves its type is in
// the data dir when the master shuts down; the next master on the same dir runs it, and
// the Client that submitted it, reconnected, gets the result.
func TestRunKeepsJobsAcrossRestart(t *testing.T) {
	leakcheck.Check(t)
	dir := t.TempDir()
	addr, url, stop, _ := startRun(t, true, "-listen", "127.0.0.1:0", "-http", "127.0.0.1:0", "-data-dir", dir, "-log-level", "error")
	client, err := dispatch.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	tk, err := client.Submit(context.Background(), dispatch.Job{ID: "survivor", Type: "echo", Payload: "still here"})
	if err != nil {
		t.Fatal(err)
	}
	// A durable master queues a job once its store has it.
	waitQueued(t, url, 1)
	if code := stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	addr2, _, _, _ := startRun(t, false, "-listen", addr, "-http", "", "-data-dir", dir, "-log-level", "error")
	w := worker.New(addr2)
	w.Handle("echo", func(_ context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- w.Run(wctx) }()
	defer func() { wcancel(); <-wdone }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res, err := tk.Wait(ctx); err != nil || string(res) != "still here" {
		t.Fatalf("after the restart: %q %v", res, err)
	}
}

// waitQueued polls /status until it shows n jobs queued, for 10 s at most.
func waitQueued(t *testing.T, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "status")
		if err != nil {
			t.Fatal(err)
		}
		var st status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status shows %d jobs queued, want %d", st.Queued, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunRefusesDamagedStore: a master whose store file is damaged does not start
// empty over it: it exits with an error that names the file.
func TestRunRefusesDamagedStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a store "), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-http", "", "-data-dir", dir}, env(), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), path) {
		t.Fatalf("exit %d, stderr %q; want 1 and an error naming %s", code, &stderr, path)
	}
	if strings.Contains(stdout.String(), "listening") {
		t.Fatalf("the master started on a damaged store:\n%s", &stdout)
	}
}
