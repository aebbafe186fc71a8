// Command worker is the worker of docs/guide.md: cmd/worker's daemon, with every
// flag and BANFLEET_* variable, serving the "sharpe" job type.
package main

import (
	"github.com/banfleet/banfleet/daemon/workerd"
	"github.com/banfleet/banfleet/examples/guide/sharpe"
)

func main() {
	d := workerd.New("sharpe-worker")
	d.Handle(sharpe.Type, sharpe.Handler)
	d.Main()
}
