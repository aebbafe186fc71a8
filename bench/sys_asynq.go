package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
)

// asynqSystem is asynq-redis: the durable task queue github.com/hibiken/asynq
// on a redis-server that the system starts itself (loopback, a free port,
// a temp dir, append-only file with fsync every second, no RDB snapshots).
// A call does dispatch-w4's job the way an asynq user gets a result back:
// Client.Enqueue of a task with a unique TaskID and a Retention (so the
// result is kept) → one of `servers` asynq.Servers runs the echo handler,
// which writes the payload with ResultWriter().Write → the caller polls
// Inspector.GetTaskInfo until the task is completed (asynq has no push
// notification of results) and returns its Result.
type asynqSystem struct {
	servers     int
	concurrency int

	redis *redisProc
	srvs  []*asynq.Server
	cli   *asynq.Client
	insp  *asynq.Inspector
	ids   uint64 // callers handed out
}

const (
	// asynqQueue is the one queue every task goes to.
	asynqQueue = "echo"
	// asynqTaskType is the type of every task.
	asynqTaskType = "echo"
	// asynqRetention keeps a completed task, and so its result, for
	// longer than any caller polls for it; a fresh redis per repeat keeps
	// them from piling up across windows.
	asynqRetention = time.Minute
	// asynqTaskCheckInterval is how long (±50 %) a server's dequeue loop
	// sleeps when it finds the queue empty. asynq's default of 1 s stalls
	// a lone caller for a second a call; of 200 µs, 1 ms, 5 ms, 20 ms,
	// 100 ms and 1 s, 200 µs gave asynq the most throughput at 64 callers
	// (by a little) and at 1 caller (by far). The empty polls it costs
	// are counted, in CPU per op, against asynq.
	asynqTaskCheckInterval = 200 * time.Microsecond
	// asynqPollFirst and asynqPollMax bound the caller's wait between two
	// GetTaskInfo polls: 200 µs after the enqueue, doubling up to 5 ms.
	asynqPollFirst = 200 * time.Microsecond
	asynqPollMax   = 5 * time.Millisecond
	// asynqClientPool is the connection pool of the shared Client and of
	// the shared Inspector, so that 64 callers never wait for a connection
	// (go-redis' default is 10 per GOMAXPROCS).
	asynqClientPool = 128
)

// newAsynq returns asynq-redis with `servers` asynq.Servers of
// `concurrency` handler slots each.
func newAsynq(servers, concurrency int) *asynqSystem {
	return &asynqSystem{servers: servers, concurrency: concurrency}
}

// Start starts redis-server, the asynq servers, and the shared Client and
// Inspector. Without redis-server on PATH it reports the system as
// unavailable, so that the harness skips it.
func (a *asynqSystem) Start(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return unavailable("redis-server is not on PATH: install the Debian package redis-server (apt-get install -y redis-server)")
	}
	a.redis, err = startRedis(ctx, bin)
	if err != nil {
		return err
	}
	addr := a.redis.addr
	for i := 0; i < a.servers; i++ {
		srv := asynq.NewServer(asynq.RedisClientOpt{Addr: addr, PoolSize: a.concurrency + 8}, asynq.Config{
			Concurrency:       a.concurrency,
			Queues:            map[string]int{asynqQueue: 1},
			TaskCheckInterval: asynqTaskCheckInterval,
			LogLevel:          asynq.WarnLevel,
			ShutdownTimeout:   2 * time.Second,
		})
		if err := srv.Start(asynq.HandlerFunc(asynqEcho)); err != nil {
			return fmt.Errorf("asynq server %d: %w", i+1, err)
		}
		a.srvs = append(a.srvs, srv)
	}
	opt := asynq.RedisClientOpt{Addr: addr, PoolSize: asynqClientPool}
	a.cli = asynq.NewClient(opt)
	a.insp = asynq.NewInspector(opt)
	return nil
}

// asynqEcho is the handler: the task's result is its payload.
func asynqEcho(_ context.Context, t *asynq.Task) error {
	_, err := t.ResultWriter().Write(t.Payload())
	return err
}

// NewCaller returns a Caller on the shared Client and Inspector.
func (a *asynqSystem) NewCaller() (Caller, error) {
	if a.cli == nil {
		return nil, errors.New("asynq: not started")
	}
	a.ids++
	return &asynqCaller{cli: a.cli, insp: a.insp, prefix: "c" + strconv.FormatUint(a.ids, 10) + "-"}, nil
}

// ExternalCPU is redis-server's CPU time.
func (a *asynqSystem) ExternalCPU() (time.Duration, bool) {
	if a.redis == nil {
		return 0, false
	}
	return pidCPU(a.redis.cmd.Process.Pid)
}

// Close closes the client side, shuts the servers down (while redis still
// runs, so that they can deregister), then stops redis-server and removes
// its directory.
func (a *asynqSystem) Close() error {
	var errs []error
	if a.cli != nil {
		errs = append(errs, a.cli.Close())
	}
	if a.insp != nil {
		errs = append(errs, a.insp.Close())
	}
	for _, srv := range a.srvs {
		srv.Shutdown()
	}
	if a.redis != nil {
		errs = append(errs, a.redis.stop())
	}
	return errors.Join(errs...)
}

// asynqCaller is one caller; its task ids are prefix + a sequence number.
type asynqCaller struct {
	cli    *asynq.Client
	insp   *asynq.Inspector
	prefix string
	seq    uint64
	timer  *time.Timer
}

// Call enqueues one echo task and polls for its result.
func (c *asynqCaller) Call(ctx context.Context, payload []byte) ([]byte, error) {
	c.seq++
	id := c.prefix + strconv.FormatUint(c.seq, 10)
	task := asynq.NewTask(asynqTaskType, payload)
	if _, err := c.cli.EnqueueContext(ctx, task, asynq.Queue(asynqQueue), asynq.TaskID(id),
		asynq.Retention(asynqRetention), asynq.MaxRetry(0)); err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	for wait := asynqPollFirst; ; wait = min(2*wait, asynqPollMax) {
		if c.timer == nil {
			c.timer = time.NewTimer(wait)
		} else {
			c.timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			c.timer.Stop()
			return nil, ctx.Err()
		case <-c.timer.C:
		}
		info, err := c.insp.GetTaskInfo(asynqQueue, id)
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", id, err)
		}
		switch info.State {
		case asynq.TaskStateCompleted:
			return info.Result, nil
		case asynq.TaskStateArchived:
			return nil, fmt.Errorf("task %s failed: %s", id, info.LastErr)
		}
	}
}

// redisProc is a redis-server child process.
type redisProc struct {
	cmd    *exec.Cmd
	dir    string
	addr   string
	exited chan struct{} // closed when cmd.Wait has returned
}

// startRedis runs bin on 127.0.0.1 at a port that was free a moment before,
// in a fresh temp dir, with AOF persistence (appendfsync everysec) and no
// RDB snapshots, and waits until it answers PING. A port taken in between
// by someone else makes redis exit at once; then it tries another port.
func startRedis(ctx context.Context, bin string) (*redisProc, error) {
	var err error
	for try := 0; try < 3; try++ {
		var p *redisProc
		if p, err = startRedisOnce(ctx, bin); err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func startRedisOnce(ctx context.Context, bin string) (*redisProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bench-redis-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--protected-mode", "yes",
		"--dir", dir,
		"--appendonly", "yes",
		"--appendfsync", "everysec",
		"--save", "",
		"--daemonize", "no",
		"--logfile", logPath,
	)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	p := &redisProc{cmd: cmd, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // an exit before PING is reported below
		close(p.exited)
	}()
	for {
		if err := redisPing(p.addr); err == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			err := fmt.Errorf("redis-server exited at start: %s", logTail(logPath))
			os.RemoveAll(dir)
			return nil, err
		case <-ctx.Done():
			p.stop()
			return nil, fmt.Errorf("redis-server not answering PING: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// freePort returns a loopback TCP port that was free when asked.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", loopback)
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// redisPing sends one inline PING and expects +PONG.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// logTail returns the last lines of redis' log file, for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log: " + err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}

// stop ends redis-server (SIGTERM, then SIGKILL after 3 s), waits for it
// and removes its directory.
func (p *redisProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-p.exited:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		err = errors.New("redis-server ignored SIGTERM for 3s; killed it")
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}

// Interface checks.
var (
	_ System      = (*asynqSystem)(nil)
	_ ExternalCPU = (*asynqSystem)(nil)
)
