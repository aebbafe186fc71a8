package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Helpers of the end-to-end test that read the master's /status (the processes run
// through internal/proctest).

// masterStatus is the part of /status the test reads.
type masterStatus struct {
	Workers []struct {
		Name string `json:"name"`
	} `json:"workers"`
	Done    uint64 `json:"done"`
	Retried uint64 `json:"retried"`
}

func getStatus(ctx context.Context, url string) (masterStatus, error) {
	var st masterStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// awaitStatus polls the master's /status until cond holds: registration happens in
// another process, so there is no event to wait on.
func awaitStatus(t *testing.T, url, what string, cond func(masterStatus) bool) masterStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := getStatus(ctx, url)
		if err == nil && cond(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last status %+v, err %v", what, st, err)
		case <-tick.C:
		}
	}
}
