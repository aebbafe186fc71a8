package sharpe

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/banfleet/banfleet/worker"
)

func TestHandler(t *testing.T) {
	job := &worker.Job{Type: Type, Payload: []byte(`{"returns":[0.01,-0.02,0.03]}`)}
	res, err := Handler(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	// mean 0.00667, sample standard deviation 0.02517
	if got := res.(Result).Sharpe; math.Abs(got-0.2649) > 1e-4 {
		t.Errorf("Sharpe = %.4f, want 0.2649", got)
	}
	// What the caller receives is the result as JSON.
	b, _ := json.Marshal(res)
	if string(b) != `{"sharpe":0.2649064714130087}` {
		t.Errorf("JSON %s", b)
	}

	for _, bad := range []string{`not json`, `{"returns":[0.01]}`, `{"returns":[0.01,0.01]}`} {
		_, err := Handler(context.Background(), &worker.Job{Type: Type, Payload: []byte(bad)})
		var werr *worker.Error
		if !errors.As(err, &werr) || werr.Code != "bad_payload" {
			t.Errorf("payload %s: %v, want a bad_payload error", bad, err)
		}
	}
}
