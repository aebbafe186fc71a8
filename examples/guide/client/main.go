// Command client is the caller of docs/guide.md: it submits "sharpe" jobs through
// a master and prints their results.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/banfleet/banfleet/banio"
	"github.com/banfleet/banfleet/dispatch"
	"github.com/banfleet/banfleet/examples/guide/sharpe"
)

func main() {
	master := flag.String("master", "127.0.0.1:6789", "master host:port")
	token := flag.String("token", os.Getenv("BANFLEET_TOKEN"), "the master's token (default $BANFLEET_TOKEN)")
	flag.Parse()
	client, err := dispatch.NewClient(*master, dispatch.WithBanIO(banio.WithToken(*token)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	strategies := map[string][]float64{
		"steady": {0.010, 0.012, 0.008, 0.011},
		"wild":   {0.050, -0.040, 0.060, -0.030},
	}
	names := slices.Sorted(maps.Keys(strategies))
	tickets := make([]*dispatch.Ticket, len(names))
	for i, name := range names { // all submitted at once: they run in parallel
		payload := sharpe.Payload{Returns: strategies[name]}
		tickets[i], err = client.Submit(ctx, dispatch.Job{Type: sharpe.Type, Payload: payload})
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
	}
	for i, name := range names {
		res, err := tickets[i].Wait(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "client:", name, err)
			os.Exit(1)
		}
		var r sharpe.Result
		_ = json.Unmarshal(res, &r)
		fmt.Printf("%s: sharpe %.3f\n", name, r.Sharpe)
	}
}
