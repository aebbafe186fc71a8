package btjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/backtest/engine"
	"github.com/banfleet/banfleet/worker"
)

// Type is the job type of a backtest.
const Type = "backtest"

// Error codes a backtest job fails with (dispatch.RemoteError.Code).
const (
	CodeBadPayload = "bad_payload" // the payload is not a Payload
	CodeBadData    = "bad_data"    // the blob is not valid encoded bars
	CodeBadParams  = "bad_params"  // the engine refused the parameter set
)

// Payload is a backtest job's payload (JSON): which bars, which parameter set.
type Payload struct {
	Data   string        `json:"data"`   // hash of the engine.EncodeBars blob
	Params engine.Params `json:"params"` // the parameter set to run
}

// defaultHandler backs Handler; it is shared by every worker of the process.
var defaultHandler = NewHandler()

// Handler runs a backtest job: it fetches the bars blob named in the payload
// (downloaded once per worker), decodes it (once per process, see NewHandler),
// runs engine.Run and returns the engine.Result, which travels as JSON. Bad input
// fails the job with a non-retryable *worker.Error carrying one of the Code
// constants; a blob that cannot be fetched is retryable (another worker may reach
// the master).
func Handler(ctx context.Context, job *worker.Job) (any, error) {
	return defaultHandler(ctx, job)
}

// NewHandler returns a backtest handler with its own cache of decoded bars (the
// 4 most recently used data sets). Handler shares one for the whole process; a
// separate one isolates tests.
func NewHandler() worker.Handler {
	cache := newBarsCache(4)
	return func(ctx context.Context, job *worker.Job) (any, error) {
		var p Payload
		if err := json.Unmarshal(job.Payload, &p); err != nil {
			return nil, &worker.Error{Code: CodeBadPayload, Err: fmt.Errorf("backtest payload: %w", err)}
		}
		if p.Data == "" {
			return nil, &worker.Error{Code: CodeBadPayload, Err: errors.New("backtest payload: no data hash")}
		}
		// Always ask the worker for the blob, even when the decoded bars are cached:
		// it is a map lookup after the first download, and it keeps "one download per
		// worker" true when several workers share this handler in one process.
		raw, err := job.Blob(ctx, p.Data)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, worker.Retryable(fmt.Errorf("backtest data: %w", err))
		}
		bars, err := cache.get(ctx, p.Data, func() ([]engine.Bar, error) { return engine.DecodeBars(raw) })
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &worker.Error{Code: CodeBadData, Err: fmt.Errorf("backtest data %s: %w", p.Data, err)}
		}
		res, err := engine.Run(bars, p.Params)
		if err != nil {
			return nil, &worker.Error{Code: CodeBadParams, Err: err}
		}
		return res, nil
	}
}

// JobID is the stable ID of the job that runs p over the data with hash dataHash,
// for example "bt-3f9a0c1b22de-ema-12-26-4-2". The same data and parameters always
// give the same ID, which is what lets a sweep journal replay finished jobs; the
// hash prefix keeps a journal from replaying results computed on other data.
func JobID(dataHash string, p engine.Params) string {
	h := dataHash
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[i+1:]
	}
	if len(h) > 12 {
		h = h[:12]
	}
	return "bt-" + h + "-" + p.Kind + "-" + strconv.Itoa(p.Fast) + "-" + strconv.Itoa(p.Slow) +
		"-" + strconv.FormatFloat(p.FeeBps, 'g', -1, 64) + "-" + strconv.FormatFloat(p.SlippageBps, 'g', -1, 64)
}

// Jobs builds one backtest job per parameter set, in the order given, with stable
// IDs (JobID). Each job's timeout is timeout (0: the master's default). It fails on
// a parameter set that cannot be encoded (a NaN cost, say) or that repeats an
// earlier one, since two jobs may not share an ID.
func Jobs(dataHash string, params []engine.Params, timeout time.Duration) ([]dispatch.Job, error) {
	jobs := make([]dispatch.Job, len(params))
	seen := make(map[string]int, len(params))
	for i, p := range params {
		payload, err := json.Marshal(Payload{Data: dataHash, Params: p})
		if err != nil {
			return nil, fmt.Errorf("backtest job %d (%s): %w", i, p, err)
		}
		id := JobID(dataHash, p)
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("backtest jobs %d and %d have the same parameters (%s)", j, i, p)
		}
		seen[id] = i
		jobs[i] = dispatch.Job{ID: id, Type: Type, Payload: payload, Timeout: timeout}
	}
	return jobs, nil
}
