package guide_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/guide/sharpe"
	"github.com/banfleet/banfleet/internal/leakcheck"
	"github.com/banfleet/banfleet/internal/proctest"
	"github.com/banfleet/banfleet/worker"
)

// TestGuideEndToEnd does what docs/guide.md tells a newcomer to do: build the
// guide's worker and client, run the worker against a master (here in the test's
// process, on loopback, with a token), and submit jobs from the client. The client's
// output must be the handler's results.
func TestGuideEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the guide's programs")
	}
	leakcheck.Check(t)
	bins := proctest.Build(t, t.TempDir(), false,
		"github.com/banfleet/banfleet/examples/guide/worker", "github.com/banfleet/banfleet/examples/guide/client")
	workerBin, clientBin := bins[0], bins[1]

	const token = "guide-secret"
	srv := banio.NewBanServer("", "guide-master", banio.WithToken(token))
	m := dispatch.NewMaster(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { _ = m.Close(); _ = srv.Close(); <-served }()
	addr := ln.Addr().String()

	wk := proctest.Start(t, "worker", workerBin, "-master", addr, "-token", token, "-concurrency", "2", "-log-level", "warn")
	// Wait for its registration, or for it to exit.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-wk.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := m.WaitWorkers(ctx, 1); err != nil {
		t.Fatalf("the guide's worker did not register (%v):\n%s", err, wk.Stderr)
	}
	if w := m.Workers()[0]; w.Capacity != 2 || len(w.Types) != 1 || w.Types[0] != sharpe.Type {
		t.Errorf("the worker registered as %+v", w)
	}

	client := proctest.Start(t, "client", clientBin, "-master", addr, "-token", token)
	if err := client.Wait(t, 60*time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, client.Stderr)
	}
	for name, returns := range map[string][]float64{
		"steady": {0.010, 0.012, 0.008, 0.011},
		"wild":   {0.050, -0.040, 0.060, -0.030},
	} {
		want := fmt.Sprintf("%s: sharpe %.3f\n", name, sharpeOf(t, returns))
		if !strings.Contains(client.Stdout.String(), want) {
			t.Errorf("client output lacks %q:\n%s", want, client.Stdout)
		}
	}
	if guide := readFile(t, "../../docs/guide.md"); !strings.Contains(guide, client.Stdout.String()) {
		t.Errorf("docs/guide.md does not show the client's output as it is:\n%s", client.Stdout)
	}
}

// sharpeOf runs the handler in-process, as the guide's handler test does.
func sharpeOf(t *testing.T, returns []float64) float64 {
	t.Helper()
	payload, _ := json.Marshal(sharpe.Payload{Returns: returns})
	res, err := sharpe.Handler(context.Background(), &worker.Job{Type: sharpe.Type, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return res.(sharpe.Result).Sharpe
}

// TestGuideQuotesTheCode: docs/guide.md shows the guide's programs; each quoted file
// must be there verbatim, so that the guide cannot drift from the code the test above
// builds and runs.
func TestGuideQuotesTheCode(t *testing.T) {
	guide := readFile(t, "../../docs/guide.md")
	for _, f := range []string{"worker/main.go", "sharpe/sharpe.go", "sharpe/sharpe_test.go", "client/main.go"} {
		if code := readFile(t, f); !strings.Contains(guide, code) {
			t.Errorf("docs/guide.md does not quote examples/guide/%s as it is; paste the file again", f)
		}
	}
}

// TestReadmeFirstContact checks two things the README tells a newcomer against what
// is true: the multi-host example keeps the unauthenticated status page on loopback
// (as docs/operations.md requires), and its description of CI names every command
// .ci/run runs.
func TestReadmeFirstContact(t *testing.T) {
	readme := readFile(t, "../../README.md")
	if strings.Contains(readme, "-http 0.0.0.0") {
		t.Error("README binds the status page to every interface; docs/operations.md says to keep it on loopback")
	}
	ci := readFile(t, "../../.ci/run")
	for l := range strings.Lines(ci) {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "go ") && !strings.Contains(readme, l) {
			t.Errorf("README does not say that CI runs %q", l)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
