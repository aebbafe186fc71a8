package dispatch_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

// startExampleFleet serves a master on loopback and runs one worker with an "upper"
// handler. It returns the master, its address and a function that stops everything.
func startExampleFleet() (*dispatch.Master, string, func()) {
	srv := banio.NewBanServer("", "example")
	master := dispatch.NewMaster(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)

	w := worker.New(ln.Addr().String(), worker.WithConcurrency(4))
	w.Handle("upper", func(ctx context.Context, job *worker.Job) (any, error) {
		job.Progress(1, 1, "converting")
		return strings.ToUpper(string(job.Payload)), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = w.Run(ctx)
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := master.WaitWorkers(wctx, 1); err != nil { // the worker has registered
		panic(err)
	}
	return master, ln.Addr().String(), func() {
		cancel()
		<-stopped
		master.Close()
		srv.Close()
	}
}

// A master and a worker in one process: Call routes the job to the worker and
// returns its result.
func ExampleMaster_Call() {
	master, _, stop := startExampleFleet()
	defer stop()

	res, err := master.Call(context.Background(), "upper", "hello fleet")
	fmt.Println(string(res), err)
	// Output: HELLO FLEET <nil>
}

// Submit returns a Ticket at once; its Progress channel carries the handler's reports
// and is closed when the job ends.
func ExampleMaster_Submit() {
	master, _, stop := startExampleFleet()
	defer stop()

	ticket, err := master.Submit(context.Background(), dispatch.Job{ID: "job-1", Type: "upper", Payload: "abc", Timeout: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	res, err := ticket.Wait(context.Background())
	fmt.Println(ticket.ID(), string(res), err)
	// Output: job-1 ABC <nil>
}

// A remote program calls through the master: client → master → worker → back.
func ExampleClient_Call() {
	_, addr, stop := startExampleFleet()
	defer stop()

	client, err := dispatch.NewClient(addr)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	res, err := client.Call(context.Background(), "upper", []byte("remote"))
	fmt.Println(string(res), err)
	// Output: REMOTE <nil>
}
