// Command memscale measures the memory a banfleet master needs at scale: idle
// connections (raw hello-only peers or real workers) and queued jobs. It is run
// by hand, never by tests:
//
//	go run ./cmd/memscale -mode conns -n 10000 -clients raw
//	go run ./cmd/memscale -mode conns -n 10000 -clients worker
//	go run ./cmd/memscale -mode queue -n 100000 -size 1024 -via local
//	go run ./cmd/memscale -mode queue -n 100000 -size 1024 -via remote
//
// The master (banio.ServerIO + dispatch.Master) runs in this process; every
// client runs in a child process (this same program with -role), so the
// master's figures contain nothing of the clients' side. The child reports its
// own memory too, which is what the clients would have cost in-process.
//
// Memory is read after runtime.GC and debug.FreeOSMemory: VmRSS from
// /proc/self/status (what the kernel charges the process), and the Go
// runtime's HeapInuse and StackInuse (live objects and goroutine stacks).
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/worker"
)

func main() {
	mode := flag.String("mode", "conns", "conns: idle connections; queue: queued jobs")
	n := flag.Int("n", 10000, "connections or jobs")
	clients := flag.String("clients", "raw", "conns mode: raw (net.Dial + hello, wait for the welcome) or worker (worker.Worker, registered)")
	size := flag.Int("size", 1024, "queue mode: payload bytes per job")
	via := flag.String("via", "local", "queue mode: local (Master.Submit in this process) or remote (dispatch.Client in a child process)")
	role := flag.String("role", "", "internal: child process role")
	addr := flag.String("addr", "", "internal: master address for a child")
	flag.StringVar(&heapProfile, "heapprofile", "", "write the master's heap profile (inuse) here after the measurement")
	flag.Parse()
	if heapProfile != "" {
		runtime.MemProfileRate = 4096
	}

	raiseNoFile()
	var err error
	switch {
	case *role != "":
		err = child(*role, *addr, *n, *size)
	case *mode == "conns":
		err = conns(*n, *clients)
	case *mode == "queue":
		err = queue(*n, *size, *via)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "memscale:", err)
		os.Exit(1)
	}
}

// raiseNoFile lifts RLIMIT_NOFILE as far as the kernel allows (as root, past
// the hard limit), so that 10,000 connections fit.
func raiseNoFile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	want := uint64(200_000)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && v < want {
			want = v
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err != nil {
		// Not root: as far as the hard limit goes.
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: lim.Max, Max: lim.Max})
	}
}

// heapProfile is where -heapprofile writes the master's heap profile.
var heapProfile string

// writeHeapProfile writes the master's in-use heap profile, if asked.
func writeHeapProfile() error {
	if heapProfile == "" {
		return nil
	}
	f, err := os.Create(heapProfile)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// mem is one memory reading.
type mem struct {
	rss, heap, stack uint64
	goroutines       int
}

// readMem collects garbage, returns freed pages to the kernel and reads.
func readMem() mem {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{rss: vmRSS(), heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// vmRSS reads VmRSS from /proc/self/status, in bytes.
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func (m mem) String() string {
	return fmt.Sprintf("RSS %.1f MiB, heap in use %.1f MiB, stacks %.1f MiB, %d goroutines",
		mib(m.rss), mib(m.heap), mib(m.stack), m.goroutines)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// perItem prints the difference between two readings per item.
func perItem(what string, n int, before, after mem) {
	d := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	fmt.Printf("%s: per item: RSS %.0f B, heap %.0f B, stacks %.0f B, goroutines %.2f\n",
		what, d(after.rss, before.rss), d(after.heap, before.heap), d(after.stack, before.stack),
		float64(after.goroutines-before.goroutines)/float64(n))
}

// startMaster starts a ServerIO + dispatch.Master on 127.0.0.1:0. The
// server's silence check is off so that hello-only peers, which never ping,
// are not closed while idle (memory is unaffected by it). Every peer dials from
// 127.0.0.1, so the per-address connection cap and the queued-bytes budgets are
// lifted: this measures memory at scale, not the limits.
func startMaster(opts ...dispatch.Option) (*banio.ServerIO, *dispatch.Master, string, error) {
	srv := banio.NewBanServer("127.0.0.1:0", "memscale", banio.WithHeartbeat(banio.DefaultHeartbeatInterval, 0),
		banio.WithMaxConns(1<<20, 1<<20))
	opts = append([]dispatch.Option{dispatch.WithQueueBytesPerType(1 << 40), dispatch.WithQueueBytesTotal(1 << 40)}, opts...)
	m := dispatch.NewMaster(srv, opts...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, "", err
	}
	go func() { _ = srv.Serve(ln) }()
	return srv, m, ln.Addr().String(), nil
}

// spawn starts this program as a child with role and returns it once the
// child printed "ready"; the child lives until its stdin is closed, and
// prints its own memory reading before "ready".
func spawn(role, addr string, n, size int) (stop func(), err error) {
	cmd := exec.Command(os.Args[0], "-role", role, "-addr", addr, "-n", strconv.Itoa(n), "-size", strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop = func() { _ = stdin.Close(); _ = cmd.Wait() }
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return stop, nil
		}
		fmt.Println("  child:", line)
	}
	stop()
	return nil, fmt.Errorf("child %s ended before it was ready", role)
}

// conns measures the master with n idle connections.
func conns(n int, kind string) error {
	srv, m, addr, err := startMaster()
	if err != nil {
		return err
	}
	defer srv.Close()
	defer m.Close()
	before := readMem()
	fmt.Printf("master, no connections: %v\n", before)

	role := map[string]string{"raw": "raw-clients", "worker": "workers"}[kind]
	if role == "" {
		return fmt.Errorf("unknown -clients %q", kind)
	}
	t0 := time.Now()
	stop, err := spawn(role, addr, n, 0)
	if err != nil {
		return err
	}
	defer stop()
	for {
		got := len(srv.Conns())
		if kind == "worker" {
			got = m.Stats().Workers
		}
		if got >= n {
			break
		}
		if time.Since(t0) > 5*time.Minute {
			return fmt.Errorf("only %d of %d connections after 5 minutes", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("%d %s connections up in %v\n", n, kind, time.Since(t0).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let registrations and first pings settle
	after := readMem()
	fmt.Printf("master, %d idle %s connections: %v\n", n, kind, after)
	perItem(fmt.Sprintf("master per idle %s connection", kind), n, before, after)
	return writeHeapProfile()
}

// queue measures the master holding n queued jobs of size bytes each.
func queue(n, size int, via string) error {
	srv, m, addr, err := startMaster(dispatch.WithQueueLimit(n + 1))
	if err != nil {
		return err
	}
	defer srv.Close()
	defer m.Close()
	before := readMem()
	fmt.Printf("master, empty queue: %v\n", before)
	t0 := time.Now()
	switch via {
	case "local":
		for i := 0; i < n; i++ {
			p := make([]byte, size) // each job its own payload, as if decoded from a submission
			p[0] = byte(i)
			if _, err := m.Submit(context.Background(), dispatch.Job{Type: "echo", Payload: p}); err != nil {
				return fmt.Errorf("submit %d: %w", i+1, err)
			}
		}
	case "remote":
		// The child stays connected until we end: the master cancels a
		// remote caller's jobs once its connection has been closed for the
		// caller grace (dispatch.WithCallerGrace).
		stop, err := spawn("submit-jobs", addr, n, size)
		if err != nil {
			return err
		}
		defer stop()
	default:
		return fmt.Errorf("unknown -via %q", via)
	}
	for m.Stats().Queued < n {
		if time.Since(t0) > 5*time.Minute {
			return fmt.Errorf("only %d of %d jobs queued after 5 minutes", m.Stats().Queued, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Printf("%d jobs of %d B queued (%s) in %v\n", n, size, via, time.Since(t0).Round(time.Millisecond))
	after := readMem()
	fmt.Printf("master, %d queued jobs: %v\n", n, after)
	perItem(fmt.Sprintf("master per queued %d B job (%s)", size, via), n, before, after)
	return writeHeapProfile()
}

// child runs a client role until stdin closes.
func child(role, addr string, n, size int) error {
	base := readMem()
	var keep any
	switch role {
	case "raw-clients":
		cs, err := rawClients(addr, n)
		if err != nil {
			return err
		}
		keep = cs
	case "workers":
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := 0; i < n; i++ {
			w := worker.New(addr, worker.WithName(fmt.Sprintf("idle-%d", i+1)), worker.WithConcurrency(1))
			w.Handle("echo", func(ctx context.Context, j *worker.Job) (any, error) { return j.Payload, nil })
			go func() { _ = w.Run(ctx) }()
			if i%200 == 199 {
				time.Sleep(20 * time.Millisecond) // stay under the listen backlog
			}
		}
	case "submit-jobs":
		c, err := dispatch.NewClient(addr)
		if err != nil {
			return err
		}
		keep = c
		ctx := context.Background()
		p := make([]byte, size)
		for i := 0; i < n; i++ {
			p[0] = byte(i)
			if _, err := c.Submit(ctx, dispatch.Job{Type: "echo", Payload: p}); err != nil {
				return fmt.Errorf("submit %d: %w", i+1, err)
			}
		}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	if n > 0 && role != "submit-jobs" {
		time.Sleep(time.Second)
		after := readMem()
		fmt.Printf("client side (%s, this child process): %v\n", role, after)
		d := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
		fmt.Printf("client side per connection: RSS %.0f B, heap %.0f B, stacks %.0f B\n",
			d(after.rss, base.rss), d(after.heap, base.heap), d(after.stack, base.stack))
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(keep)
	return nil
}

// rawClients opens n raw TCP connections, each sending the hello frame a
// ClientIO sends and reading the server's welcome: the smallest peer a
// banfleet master treats as a live, handshaken connection.
func rawClients(addr string, n int) ([]net.Conn, error) {
	hello, err := captureHello()
	if err != nil {
		return nil, err
	}
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	next := make(chan int)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := dialHello(addr, hello)
				if err != nil {
					select {
					case errs <- fmt.Errorf("connection %d: %w", i+1, err):
					default:
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return conns, nil
}

func dialHello(addr string, hello []byte) (net.Conn, error) {
	var c net.Conn
	var err error
	for try := 0; try < 20; try++ {
		if c, err = net.DialTimeout("tcp", addr, 10*time.Second); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(hello); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := readFrame(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("reading the welcome: %w", err)
	}
	return c, nil
}

// captureHello returns the first frame a banio.ClientIO sends: its hello.
func captureHello() ([]byte, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		f, _ := readFrame(c)
		got <- f
	}()
	cli, err := banio.NewClientIO(ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	f := <-got
	if f == nil {
		return nil, errors.New("no hello captured")
	}
	return f, nil
}

// readFrame reads one banio frame: a 4-byte little-endian length and the
// body; it returns both.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	f := make([]byte, 4+n)
	copy(f, hdr[:])
	_, err := io.ReadFull(r, f[4:])
	return f, err
}
