package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/internal/jobspan"
	"github.com/banfleet/banfleet/internal/monoclock"
	"github.com/banfleet/banfleet/protocol"
	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Worker connects to a master, announces the job types it handles and its capacity, and
// runs jobs. Configure it with Handle before Run.
//
// When the connection to the master is lost (the master restarts, the network blips,
// or the leader of a cluster of masters changes) the worker reconnects by itself, to
// the leader if it was given every master's address, and its jobs keep running. Replies that
// cannot be delivered meanwhile are held, within protocol.MaxHeldAttempts and
// WithHeldReplyBytes, as are the replies sent within the last WithReplyLinger (they
// may not have reached the master). On registering again the worker lists what it
// holds (protocol.WorkerInfo.Held: jobs still running, replies held) and sends the held
// replies right after the registration. The master re-adopts what it still waits for
// and cancels the running attempts it does not want; a reply dropped past the bounds
// (logged once per outage) leaves its job to be run again by the master.
type Worker struct {
	addr           string
	id, name       string
	capacity       int
	labels         map[string]string
	grace          time.Duration
	banioOpts      []banio.Option
	newBackoff     func() backoff.BackOff
	log            *slog.Logger
	tracerProvider trace.TracerProvider
	propagator     propagation.TextMapPropagator
	tracer         *jobspan.Tracer
	meterProvider  metric.MeterProvider
	metrics        *workerMetrics

	heldBytes   int           // WithHeldReplyBytes
	linger      time.Duration // WithReplyLinger
	lingerBytes int           // WithReplyLingerBytes

	handlers    map[string]*jobKind
	inline      bool      // WithInlineJobs
	okHeads     [4][]byte // headers of OK replies to attempts 1 to 4 (replyHead)
	blobs       blobCache
	tooLargeLog sync.Once     // the first reply that did not fit a frame
	regMu       sync.Mutex    // serialises register
	regQueued   atomic.Bool   // a register is waiting for regMu: another need not
	delivered   chan struct{} // cap 1: a registration is done sending held replies

	// mu protects the following fields.
	mu         sync.Mutex
	conn       *banio.ClientIO
	running    map[jobKey]*runningJob // until its reply is sent or held
	generation int                    // counts connections to the master; see register
	link       linkState              // lost, and how often; down: replies are held
	held       heldSet                // replies for the next registration
	flushing   bool                   // register is sending replies it took from held
	recent     sentRing               // replies sent within the linger window
	// draining is set once, under mu, by drain; read under mu where what else mu
	// guards must agree with it, and without it by isDraining.
	draining atomic.Bool
	slots    chan struct{} // capacity semaphore
	jobs     sync.WaitGroup
	pool     runPool // the goroutines jobs run on
}

// New makes a worker for the master at masterAddr. masterAddr may list the masters of
// a cluster separated by commas ("a:1,b:2,c:3"): the worker connects to the leader
// (a follower answers with where it is, and the worker goes there), and after a
// failover registers with the new leader as it does with a restarted master, claiming
// the attempts it holds.
func New(masterAddr string, opts ...Option) *Worker {
	host, _ := os.Hostname()
	w := &Worker{
		addr:     masterAddr,
		id:       uuid.NewString(),
		name:     host,
		capacity: defaultCapacity(),
		grace:    DefaultDrainGrace,
		log:      slog.New(slog.DiscardHandler),
		handlers: make(map[string]*jobKind),
		inline:   true,
		running:  make(map[jobKey]*runningJob),
		blobs:    blobCache{limit: DefaultBlobCacheBytes},

		heldBytes:   DefaultHeldReplyBytes,
		lingerBytes: DefaultReplyLingerBytes,
		linger:      DefaultReplyLinger,
		delivered:   make(chan struct{}, 1),
	}
	for _, o := range opts {
		if o != nil {
			o(w)
		}
	}
	if w.tracerProvider == nil {
		w.tracerProvider = otel.GetTracerProvider()
	}
	if w.propagator == nil {
		w.propagator = protocol.DefaultPropagator()
	}
	w.tracer = jobspan.New(w.tracerProvider, trace.SpanKindConsumer)
	if w.meterProvider == nil {
		w.meterProvider = otel.GetMeterProvider()
	}
	w.metrics = newWorkerMetrics(w.meterProvider)
	w.slots = make(chan struct{}, w.capacity)
	w.pool = runPool{exec: w.execute, max: w.capacity}
	w.held.maxBytes = w.heldBytes
	w.recent = sentRing{maxN: protocol.MaxHeldAttempts, maxBytes: min(w.lingerBytes, w.heldBytes), linger: w.linger}
	for i := range w.okHeads {
		w.okHeads[i] = protocol.ReplyHeader(&protocol.Reply{Attempt: i + 1, Kind: protocol.KindOK, WorkerID: w.id})
	}
	return w
}

// now is the worker's clock, for the linger window.
func (w *Worker) now() time.Duration { return monoclock.Now() }

// ID returns the worker's id as the master knows it.
func (w *Worker) ID() string { return w.id }

// Handle registers h for jobType. Call it before Run.
func (w *Worker) Handle(jobType string, h Handler) { w.handlers[jobType] = &jobKind{h: h} }

// Run connects (retrying until ctx ends), serves jobs until ctx ends, then drains: it
// tells the master to send nothing more, lets running jobs finish within the grace
// period, hands the rest back to the master, and closes the connection. It returns nil
// after a drain, or the error that ended the connection for good (a refused token, or
// reconnection given up by the banio backoff policy), which cancels the running jobs.
// A connection lost and regained meanwhile does not end Run (see Worker).
func (w *Worker) Run(ctx context.Context) error {
	if len(w.handlers) == 0 {
		return errors.New("worker: no handlers registered")
	}
	defer w.metrics.start(w)()
	defer w.pool.stop()
	conn, err := w.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // shut down before the master answered: nothing to drain
		}
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- conn.RunForever() }()
	select {
	case <-ctx.Done():
		w.drain(conn)
		<-runErr
		return nil
	case err := <-runErr:
		w.cancelAll()
		w.jobs.Wait()
		return fmt.Errorf("worker: connection ended: %w", err)
	}
}

// connect dials the master until it answers or ctx ends.
func (w *Worker) connect(ctx context.Context) (*banio.ClientIO, error) {
	var b backoff.BackOff = backoff.NewExponentialBackOff(backoff.WithMaxInterval(10*time.Second), backoff.WithMaxElapsedTime(0))
	if w.newBackoff != nil {
		b = w.newBackoff()
	}
	b = backoff.WithContext(b, ctx)
	var conn *banio.ClientIO
	err := backoff.RetryNotify(func() error {
		c, err := banio.NewClientIO(w.addr, w.banioOpts...)
		if errors.Is(err, banio.ErrAuthFailed) || errors.Is(err, banio.ErrInvalidAESKey) {
			return backoff.Permanent(err)
		}
		conn = c
		return err
	}, b, func(err error, d time.Duration) {
		w.log.Warn("worker: cannot reach master, retrying", "addr", w.addr, "err", err, "in", d)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("worker: connect to %s: %w", w.addr, err)
	}
	w.mu.Lock()
	w.conn = conn
	w.mu.Unlock()
	for typ := range w.handlers {
		conn.ListenInlineView(protocol.JobAction(typ), w.onJob)
	}
	conn.Listen(protocol.ActionCancel, w.onCancel)
	conn.ReInitConn = w.register
	conn.OnConnLost = w.connLost
	w.register()
	return conn, nil
}
