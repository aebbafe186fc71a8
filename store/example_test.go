package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/banfleet/banfleet/store"
)

// A master's life with a durable store: apply each change before acting on it, and
// after a restart rebuild the queues from Load, the running job coming back as an
// orphaned attempt of its worker.
func Example() {
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "jobs.db")
	ctx := context.Background()

	s, err := store.OpenBolt(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	_ = s.Apply(ctx, store.Submitted(store.Spec{ID: "j1", Type: "backtest", Payload: []byte(`{"fast":10}`), MaxAttempts: 3, SubmittedAt: now}))
	_ = s.Apply(ctx, store.Submitted(store.Spec{ID: "j2", Type: "backtest", Payload: []byte(`{"fast":20}`), MaxAttempts: 3, SubmittedAt: now}))
	_ = s.Apply(ctx, store.AttemptStarted("j1", 1, "worker-a"))
	s.Close() // the master dies here

	s, err = store.OpenBolt(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	st, _ := s.Load()
	for _, j := range st.Unresolved() {
		fmt.Printf("%s %s attempt=%d worker=%q\n", j.Spec.ID, j.Phase, j.Attempt, j.Worker)
	}
	// Output:
	// j1 running attempt=1 worker="worker-a"
	// j2 queued attempt=0 worker=""
}
