package main

import (
	"context"
	"io"

	"github.com/banfleet/banfleet/daemon"
)

// env is a fake environment.
var env = daemon.MapEnv

// run is the whole program, as main runs it.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	return newDaemon().Run(ctx, args, lookupEnv, stdout, stderr)
}
