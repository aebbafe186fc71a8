// Command btworker is the backtest example's worker: cmd/worker's daemon (every
// flag, BANFLEET_* variable, TLS, token, tracing, metrics and drain, through package
// daemon/workerd) serving the "backtest" job type of package btjob.
//
//	go run ./examples/backtest/cmd/btworker -master host:6789 -token "$TOKEN"
//
// It is also the template for a worker of your own: register your job types
// instead (docs/guide.md).
package main

import (
	"github.com/banfleet/banfleet/daemon/workerd"
	"github.com/banfleet/banfleet/examples/backtest/btjob"
)

func main() {
	d := workerd.New("btworker")
	d.Handle(btjob.Type, btjob.NewHandler())
	d.Main()
}
