package sweep_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/sweep"
	"github.com/banfleet/banfleet/worker"
)

// A sweep fans many jobs out and gathers the results as they finish.
func ExampleStart() {
	// A master on loopback with one worker that upper-cases its payload.
	srv := banio.NewBanServer("", "example")
	master := dispatch.NewMaster(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	defer master.Close()
	w := worker.New(ln.Addr().String())
	w.Handle("upper", func(ctx context.Context, job *worker.Job) (any, error) {
		return strings.ToUpper(string(job.Payload)), nil
	})
	ctx, stopWorker := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = w.Run(ctx) }()
	defer func() { stopWorker(); <-stopped }()
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := master.WaitWorkers(wctx, 1); err != nil {
		panic(err)
	}

	jobs := []dispatch.Job{{Type: "upper", Payload: "a"}, {Type: "upper", Payload: "b"}, {Type: "upper", Payload: "c"}}
	s, err := sweep.Start(context.Background(), master, jobs, sweep.Options{MaxInFlight: 2})
	if err != nil {
		panic(err)
	}
	results := make([]string, len(jobs))
	for r := range s.Results() {
		results[r.Index] = string(r.Result)
	}
	fmt.Println(results, s.Progress().Done)
	// Output: [A B C] 3
}
