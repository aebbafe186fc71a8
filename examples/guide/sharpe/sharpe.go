// Package sharpe is the job type of docs/guide.md: the Sharpe ratio of a series of
// returns. The worker serves it and the client submits it; both import this package
// for the type's name and payload.
package sharpe

import (
	"context"
	"encoding/json"
	"errors"
	"math"

	"github.com/banfleet/banfleet/worker"
)

// Type is the job type's name.
const Type = "sharpe"

// Payload is what a job carries (as JSON).
type Payload struct {
	Returns []float64 `json:"returns"` // per-period returns: 0.01 is 1%
}

// Result is what a job answers (as JSON).
type Result struct {
	Sharpe float64 `json:"sharpe"` // mean return over its standard deviation
}

// Handler computes the Sharpe ratio of the job's returns.
func Handler(ctx context.Context, job *worker.Job) (any, error) {
	var p Payload
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return nil, &worker.Error{Code: "bad_payload", Err: err}
	}
	if len(p.Returns) < 2 {
		return nil, &worker.Error{Code: "bad_payload", Err: errors.New("need at least two returns")}
	}
	var sum, sq float64
	for _, r := range p.Returns {
		sum += r
	}
	mean := sum / float64(len(p.Returns))
	for _, r := range p.Returns {
		sq += (r - mean) * (r - mean)
	}
	sd := math.Sqrt(sq / float64(len(p.Returns)-1))
	if sd == 0 {
		return nil, &worker.Error{Code: "bad_payload", Err: errors.New("the returns do not vary")}
	}
	return Result{Sharpe: mean / sd}, nil
}
